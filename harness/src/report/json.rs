//! `report.json`: written when the suite ends.

use super::events::{Reporter, RunEvent};
use super::out::OutDir;

/// The report's file name in the output folder.
pub const FILE: &str = "report.json";

/// Writes the report's JSON to `out/report.json` at the end of the suite.
pub struct JsonReport {
    pub out: OutDir,
}

impl Reporter for JsonReport {
    fn event(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::SuiteFinished { report } = event {
            self.out.write_or_say(FILE, report.to_json().as_bytes());
        }
    }
}
