//! The typed model: what a scenario says (settings, lane, probes, faults,
//! expectations), the fault kinds (one file each), the nemesis's primitive
//! actions, the timing vocabulary, host needs, and the names of what a run
//! makes. Pure data and pure functions.

pub mod action;
pub mod fault;
pub mod keys;
pub mod multipath;
pub mod names;
pub mod needs;
pub mod profiles;
pub mod scenario;
pub mod settings;
pub mod timing;

pub use scenario::*;
