//! The typed model: what a scenario says (settings, lane, probes, faults,
//! expectations) and the names of what a run makes. Pure data.

pub mod names;
pub mod scenario;

pub use scenario::*;
