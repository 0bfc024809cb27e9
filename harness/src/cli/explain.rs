//! `iscsi-chaos explain [KIND]`: the scenario reference
//! (`docs/scenarios.md`) at the terminal: the fault kinds and sections, or
//! one kind's entry.

use super::INPUT_ERROR;
use crate::parse::reference;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// A fault kind (`mtu`, `netem`, ...); without one, the list.
    kind: Option<String>,
}

impl ExplainArgs {
    pub fn exec(self) -> u8 {
        let Some(kind) = self.kind else {
            print!("{}", reference::index());
            return 0;
        };
        match reference::explain(&kind) {
            Ok(entry) => {
                print!("{entry}");
                0
            }
            Err(e) => {
                eprintln!("iscsi-chaos: {e}");
                INPUT_ERROR
            }
        }
    }
}
