//! The formats iscsi-chaos speaks, in a crate of their own (serde only) so
//! that probes, xtask and tests read them typed: probe events
//! ([`probe`]), the versioned history ([`history`]), `report.json`
//! ([`report`]) and exit statuses ([`exit`]) and
//! what the switch's capture decoded ([`wire`]).

pub mod exit;
pub mod history;
pub mod probe;
pub mod report;
pub mod wire;
