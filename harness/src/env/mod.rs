//! The environment a run builds and observes: its lane, the initiator's
//! node record and session, the target, and the monitors (sysfs, kmsg).
//! Every object is written in the ledger before it is made.

pub mod capture;
pub mod initiator;
pub mod lane;
pub mod monitor;
pub mod multipath;
pub mod target;
