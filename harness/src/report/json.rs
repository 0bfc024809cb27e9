//! `report.json`: written when the suite ends.

use std::path::PathBuf;

use super::events::{Reporter, RunEvent};

/// Writes the report's JSON to `path` at the end of the suite.
pub struct JsonReport {
    pub path: PathBuf,
}

impl Reporter for JsonReport {
    fn event(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::SuiteFinished { report } = event {
            if let Err(e) = std::fs::write(&self.path, report.to_json()) {
                eprintln!("iscsi-chaos: writing {}: {e}", self.path.display());
            }
        }
    }
}
