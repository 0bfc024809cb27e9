//! `iscsi-chaos trace HISTORY --block N`: one block's story (see
//! `report::trace`).

use std::path::PathBuf;

use super::INPUT_ERROR;
use crate::history::History;
use crate::report::trace::{block_size, render, trace, window, SECTOR};

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct TraceArgs {
    /// A run's history (`<run>.history.jsonl` in the output folder).
    history: PathBuf,
    /// The probe's block number (as its reports name blocks).
    #[arg(long, conflicts_with = "lba", required_unless_present = "lba")]
    block: Option<u64>,
    /// A logical block address (512-byte sectors, as the CDBs say).
    #[arg(long)]
    lba: Option<u64>,
    /// Only what happened this many seconds after the first fault's begin
    /// or later (negative: before it).
    #[arg(long, allow_hyphen_values = true)]
    from: Option<f64>,
    /// Only what happened up to this many seconds after the first fault's
    /// begin.
    #[arg(long, allow_hyphen_values = true)]
    to: Option<f64>,
}

impl TraceArgs {
    pub fn exec(self) -> u8 {
        let text = match std::fs::read_to_string(&self.history) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("iscsi-chaos: {}: {e}", self.history.display());
                return INPUT_ERROR;
            }
        };
        let h = match History::from_json_lines(&text) {
            Ok(h) => h,
            Err(e) => {
                eprintln!(
                    "iscsi-chaos: {}: not a history: {e}",
                    self.history.display()
                );
                return INPUT_ERROR;
            }
        };
        let block_size = block_size(&h);
        let (lba, count) = match (self.block, self.lba) {
            (Some(b), _) => (b * block_size / SECTOR, block_size / SECTOR),
            (None, Some(l)) => (l, 1),
            (None, None) => unreachable!("clap requires one"),
        };
        let origin = h.first_fault_begin().unwrap_or(0.0);
        let lines = window(trace(&h, lba, count), origin, self.from, self.to);
        let text = if lines.is_empty() {
            format!(
                "nothing on LBA {lba}+{count} in {}\n",
                self.history.display()
            )
        } else {
            format!(
                "LBA {lba}+{count}, times from the first fault's begin:\n{}",
                render(&lines, origin)
            )
        };
        // A reader that stops early (`| head`) is no error.
        use std::io::Write;
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        0
    }
}
