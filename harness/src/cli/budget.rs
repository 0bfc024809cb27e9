//! `iscsi-chaos budget`: the ride-through budget of one scenario. The
//! search is [`crate::plan::budget`], its runs [`crate::runner::budget`];
//! this checks the input, holds the host and writes the outputs.

use std::path::PathBuf;

use super::{file_reporters, parse_axis, with_conf, INPUT_ERROR};
use crate::model::Scenario;
use crate::parse::sweep::Axis;
use crate::plan::budget::Search;
use crate::report::events::{Reporters, RunEvent};
use crate::runner::budget::{measure, predictions};
use crate::runner::host::Host;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct BudgetArgs {
    scenario: PathBuf,
    /// The parameter to vary (any sweep key).
    #[arg(long, default_value = "fault[0].duration_s")]
    vary: String,
    /// Bisect until the bracket is this narrow (seconds).
    #[arg(long, default_value_t = 1.0)]
    resolution: f64,
    /// The search's range of KEY (default: 1 to the scenario's duration_s).
    #[arg(long)]
    min: Option<f64>,
    #[arg(long)]
    max: Option<f64>,
    /// Fix KEY=VALUE for every run (repeat; any sweep key), e.g. replacement_timeout=20.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_axis)]
    sets: Vec<Axis>,
    /// Apply an iscsid.conf's node settings, as for `run`.
    #[arg(long)]
    iscsid_conf: Option<PathBuf>,
    /// Output folder: budget.json, report.json and the runs' histories.
    #[arg(long)]
    out: PathBuf,
    /// Only say the oracle's boundary; run nothing (needs no root).
    #[arg(long)]
    predict_only: bool,
}

impl BudgetArgs {
    pub fn exec(self) -> u8 {
        let axes = with_conf(self.iscsid_conf.as_deref(), self.sets.clone(), true);
        super::block_on(2, self.run(axes))
    }

    async fn run(self, axes: Option<Vec<Axis>>) -> u8 {
        let Some((base, search)) = self.search(axes) else {
            return INPUT_ERROR;
        };
        // The oracle's boundary per target, said before anything runs.
        let predictions = predictions(&search, base.lane.targets.iter().map(|t| t.as_str()));
        if self.predict_only {
            return if predictions.iter().all(|(_, b)| b.is_some()) {
                0
            } else {
                1
            };
        }
        let host = match Host::open(&self.out).await {
            Ok(h) => h,
            Err(code) => return code,
        };
        let out_dir = host.ctx.out.clone();
        let report_path = self.out.join(crate::report::json::FILE);
        let measured = measure(&host.ctx, &search, &base.name, predictions).await;
        let interrupted = host.close().await;
        let json =
            serde_json::to_string_pretty(&serde_json::json!({ "budgets": measured.budgets }))
                .expect("json");
        out_dir.write_or_say("budget.json", json.as_bytes());
        Reporters(file_reporters(out_dir, report_path)).emit(RunEvent::SuiteFinished {
            report: &measured.report,
        });
        interrupted.unwrap_or(measured.status)
    }

    /// The scenario (one, after the command line's axes) and the search
    /// over it; `None` on bad input (said on stderr).
    fn search(&self, axes: Option<Vec<Axis>>) -> Option<(Scenario, Search)> {
        let (path, vary, resolution) = (&self.scenario, &self.vary, self.resolution);
        let axes = axes?;
        if !(resolution >= 0.1 && resolution.is_finite()) {
            eprintln!("iscsi-chaos: --resolution must be at least 0.1 s, got {resolution}");
            return None;
        }
        let base = match Scenario::load_swept(path, &axes) {
            Ok(mut s) if s.len() == 1 => s.remove(0),
            Ok(s) => {
                eprintln!(
                    "iscsi-chaos: {}: a budget needs one scenario, the sweep makes {}",
                    path.display(),
                    s.len()
                );
                return None;
            }
            Err(e) => {
                eprintln!("{e}");
                return None;
            }
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("iscsi-chaos: {}: {e}", path.display());
                return None;
            }
        };
        let search = Search {
            text,
            path: path.clone(),
            axes,
            vary: vary.clone(),
            lo: self.min.unwrap_or(1.0),
            hi: self.max.unwrap_or(base.duration_s),
            resolution,
        };
        if let Err(e) = search.point(search.lo, base.lane.targets[0].as_str()) {
            eprintln!("iscsi-chaos: --vary {vary}: {e}");
            return None;
        }
        Some((base, search))
    }
}
