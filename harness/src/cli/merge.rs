//! `iscsi-chaos merge`: the shards' reports into one (as one unsharded run
//! would have written it), their histories beside it.

use std::path::PathBuf;

use super::compare::read_report;
use super::{file_reporters, INPUT_ERROR};
use crate::report::events::{Reporters, RunEvent};
use crate::report::out::OutDir;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' output folders.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Output folder for the merged report.
    #[arg(long)]
    out: PathBuf,
}

impl MergeArgs {
    pub fn exec(self) -> u8 {
        let (shards, out) = (&self.shards, &self.out);
        let mut reports = Vec::new();
        for dir in shards {
            let path = dir.join(crate::report::json::FILE);
            match read_report(&path) {
                Ok(r) => reports.push((path.display().to_string(), r)),
                Err(e) => {
                    eprintln!("iscsi-chaos: {e}");
                    return INPUT_ERROR;
                }
            }
        }
        let merged = match crate::report::merge::merge(&reports) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("iscsi-chaos: cannot merge: {e}");
                return INPUT_ERROR;
            }
        };
        let out_dir = match OutDir::prepare(out) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("iscsi-chaos: {e}");
                return INPUT_ERROR;
            }
        };
        for dir in shards {
            for entry in &merged.scenarios {
                let file = iscsi_chaos_formats::report::history_file(&entry.id);
                let Ok(bytes) = std::fs::read(dir.join(&file)) else {
                    continue;
                };
                if let Err(e) = out_dir.write(&file, &bytes) {
                    eprintln!("iscsi-chaos: writing {file}: {e}");
                    return 1;
                }
            }
        }
        let report_path = out.join(crate::report::json::FILE);
        let mut reporters = Reporters(file_reporters(out_dir, report_path));
        reporters.emit(RunEvent::SuiteFinished { report: &merged });
        merged.exit_status() as u8
    }
}
