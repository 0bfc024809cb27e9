//! The lab: a Debian VM with Debian's kernel (iscsi_tcp, LIO, netem,
//! dm-multipath) for hosts that cannot run the iSCSI stack themselves.
//!
//! `image` builds and caches the image from the recipe embedded here
//! (`recipe/recipe.toml`, `recipe/guest-init.sh`: the installed
//! `iscsi-chaos` carries them, so no checkout is needed); `vm` boots it for
//! one job; `glibc` says which guest release can run a given binary.
//! Used by `iscsi-chaos lab` / `run --lab` and by `cargo xtask`.

pub mod buildlog;
pub mod cli;
pub mod glibc;
pub mod host;
pub mod image;
pub mod interrupt;
pub mod vm;
