//! The summary table on the terminal, when the suite ends.

use std::io::Write;
use std::path::PathBuf;

use super::events::{Reporter, RunEvent};
use super::SummaryTableExt;

/// Prints [`super::Report::summary_table`] and where the report is.
pub struct SummaryTable<W: Write> {
    pub out: W,
    /// The report file named under the table.
    pub report_path: PathBuf,
}

impl<W: Write> Reporter for SummaryTable<W> {
    fn event(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::SuiteFinished { report } = event {
            let _ = write!(self.out, "{}", report.summary_table());
            let _ = writeln!(self.out, "report: {}", self.report_path.display());
        }
    }
}
