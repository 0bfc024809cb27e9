//! Kernel edges: thin wrappers of kernel interfaces and system tools
//! (namespaces, links, the tc socket, nft, iscsiadm, configfs, dm/loop, mounts).
//! Nothing here knows runs, ledgers or scenarios.

pub mod blocking;
pub mod cmd;
pub mod configfs;
pub mod dm;
pub mod ethtool;
pub mod iscsi;
pub mod link;
pub mod mount;
pub mod mpath;
pub mod netns;
pub mod nft;
pub mod packet;
pub mod pr;
pub mod tc;
