//! Wire formats we encode and decode ourselves: netlink tc messages and
//! nftables text/JSON. Pure: the sockets and processes are in `sys`.

pub mod nft;
pub mod tc;
