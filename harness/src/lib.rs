//! iscsi-chaos: break the link between a real iSCSI target and the real
//! open-iscsi initiator on a timeline, and measure what the disk's users see.
//!
//! Pure modules (no root, no I/O): `scenario`, `oracle`, `tc`, `history`,
//! `checker`, `report`. Modules that touch the kernel are kept thin.

pub mod checker;
pub mod cleanup;
pub mod doctor;
pub mod firewall;
pub mod history;
pub mod initiator;
pub mod ledger;
pub mod monitor;
pub mod nemesis;
pub mod netns;
pub mod oracle;
pub mod report;
pub mod run;
pub mod scenario;
pub mod target;
pub mod tc;
pub mod topology;
