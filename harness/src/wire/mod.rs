//! Wire formats we encode and decode ourselves: netlink tc messages,
//! nftables text/JSON, and what the switch's capture saw (Ethernet/IPv4/TCP
//! frames, TCP streams, iSCSI PDUs, the pcapng file). Pure: the sockets and
//! processes are in `sys`.

pub mod decode;
pub mod frame;
pub mod iscsi;
pub mod nft;
pub mod pcapng;
pub mod pr;
pub mod stream;
pub mod tc;
