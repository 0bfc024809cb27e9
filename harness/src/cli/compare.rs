//! `iscsi-chaos compare`: a report against a baseline, run id by run id
//! (also `run --baseline`).

use std::path::{Path, PathBuf};

use super::INPUT_ERROR;
use crate::report::compare::Options;
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
    /// Baseline runs missing from the new report, skipped or errored in it are notes, not
    /// regressions (a partial run, another shard).
    #[arg(long)]
    allow_missing: bool,
}

impl CompareArgs {
    /// Exit 1 on any regression, 2 on reports that cannot be compared.
    pub fn exec(self) -> u8 {
        let (old, new) = match (read_report(&self.old), read_report(&self.new)) {
            (Ok(o), Ok(n)) => (o, n),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("iscsi-chaos: {e}");
                return INPUT_ERROR;
            }
        };
        if old.schema != new.schema {
            eprintln!(
                "iscsi-chaos: the reports have different schemas ({}: {}, {}: {}): they cannot be compared",
                self.old.display(),
                old.schema,
                self.new.display(),
                new.schema
            );
            return INPUT_ERROR;
        }
        let options = Options {
            tolerance_s: self.tolerance_s,
            allow_missing: self.allow_missing,
        };
        u8::from(print_comparison(&old, &new, options))
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
pub(super) fn print_comparison(old: &Report, new: &Report, options: Options) -> bool {
    let c = crate::report::compare::compare(old, new, options);
    for line in &c.regressions {
        println!("regression: {line}");
    }
    for line in &c.settings {
        println!("setting: {line}");
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
