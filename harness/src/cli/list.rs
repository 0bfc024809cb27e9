//! `iscsi-chaos list`: each planned run's id, target and description.

use super::ScenarioSet;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    set: ScenarioSet,
}

impl ListArgs {
    pub fn exec(self) -> u8 {
        let scenarios = match self.set.load() {
            Ok((_, s)) => s,
            Err(code) => return code,
        };
        for planned in crate::plan::suite(&scenarios) {
            let description = planned
                .run
                .scenario
                .description
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let long = if planned.run.scenario.long {
                "(long) "
            } else {
                ""
            };
            println!(
                "{:<40} {:<4} {long}{description}",
                planned.id, planned.run.target
            );
        }
        0
    }
}
