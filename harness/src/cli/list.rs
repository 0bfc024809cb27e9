//! `iscsi-chaos list`: each planned run's id, target and description.

use std::path::PathBuf;

use super::{load_all, parse_axis, with_conf, INPUT_ERROR};
use crate::parse::sweep::Axis;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Scenario files, or folders searched for *.toml.
    #[arg(default_value = "scenarios")]
    scenarios: Vec<PathBuf>,
    /// Sweep KEY over values, as for `run`.
    #[arg(long = "sweep", value_name = "KEY=V1,V2,...", value_parser = parse_axis)]
    sweeps: Vec<Axis>,
    /// Apply an iscsid.conf's node settings, as for `run`.
    #[arg(long)]
    iscsid_conf: Option<PathBuf>,
}

impl ListArgs {
    pub fn exec(self) -> u8 {
        let Some(axes) = with_conf(self.iscsid_conf.as_deref(), self.sweeps, true) else {
            return INPUT_ERROR;
        };
        let Ok(scenarios) = load_all(&self.scenarios, &axes) else {
            return INPUT_ERROR;
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
