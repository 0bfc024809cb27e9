//! The plan: a scenario expanded into planned runs and their fault steps.
//! Pure.

pub mod steps;

pub use steps::*;
