//! `iscsi-chaos compare`: a report against a baseline, run id by run id
//! (also `run --baseline`).

use std::path::{Path, PathBuf};

use super::INPUT_ERROR;
use crate::report::Report;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// The baseline: a report.json or the folder holding it.
    old: PathBuf,
    /// The new report (or its folder).
    new: PathBuf,
    /// Tolerance in seconds (default: each baseline run's oracle tolerance, at least 1 s).
    #[arg(long)]
    tolerance_s: Option<f64>,
}

impl CompareArgs {
    /// Exit 1 on any regression.
    pub fn exec(self) -> u8 {
        let (old, new) = match (read_report(&self.old), read_report(&self.new)) {
            (Ok(o), Ok(n)) => (o, n),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("iscsi-chaos: {e}");
                return INPUT_ERROR;
            }
        };
        u8::from(print_comparison(&old, &new, self.tolerance_s))
    }
}

/// A report.json, or the one in folder `path`.
pub(super) fn read_report(path: &Path) -> Result<Report, String> {
    let file = if path.is_dir() {
        path.join(crate::report::json::FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    Report::from_json(&text).map_err(|e| format!("{}: not a report: {e}", file.display()))
}

/// Prints the comparison of `new` with the baseline `old`; true when it
/// found a regression.
pub(super) fn print_comparison(old: &Report, new: &Report, tolerance_s: Option<f64>) -> bool {
    let c = crate::report::compare::compare(old, new, tolerance_s);
    for line in &c.regressions {
        println!("regression: {line}");
    }
    for line in &c.notes {
        println!("note: {line}");
    }
    println!(
        "compared {} run(s) with the baseline: {} regression(s)",
        c.compared,
        c.regressions.len()
    );
    !c.regressions.is_empty()
}
