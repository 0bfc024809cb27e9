//! The history (one timeline of a run): its format lives in the formats
//! crate, which xtask and the tests read typed.

pub use iscsi_chaos_formats::history::*;
