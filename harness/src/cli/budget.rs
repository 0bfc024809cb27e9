//! `iscsi-chaos budget`: the ride-through budget of one scenario. The
//! search is [`crate::plan::budget`], its runs [`crate::runner::budget`];
//! this checks the input, holds the host and writes the outputs.

use std::path::PathBuf;

use super::{file_reporters, parse_set, with_conf, INPUT_ERROR};
use crate::model::Scenario;
use crate::parse::sweep::Axis;
use crate::plan::budget::{load_stretched, Answer, Search};
use crate::report::events::{Reporters, RunEvent};
use crate::runner::budget::{measure, predictions};
use crate::runner::host::Host;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct BudgetArgs {
    /// The scenario file (one scenario after --set and --iscsid-conf).
    scenario: PathBuf,
    /// The parameter to vary (any numeric sweep key: a fault's length, a timer such as
    /// replacement_timeout). Whole-number keys are stepped by whole numbers.
    #[arg(long, default_value = "fault[0].duration_s")]
    vary: String,
    /// Bisect until the bracket is this narrow (seconds).
    #[arg(long, default_value_t = 1.0)]
    resolution: f64,
    /// The low end of the search's range of KEY (default 1).
    #[arg(long)]
    min: Option<f64>,
    /// The high end of the search's range of KEY (default: the scenario's duration_s,
    /// at least twice its longest fault and twice noop_out_interval + noop_out_timeout +
    /// replacement_timeout). Runs are stretched to hold their faults.
    #[arg(long)]
    max: Option<f64>,
    /// Fix KEY=VALUE for every run (repeat; any sweep key), e.g. replacement_timeout=20.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    sets: Vec<Axis>,
    /// Apply an iscsid.conf's node settings, as for `run`.
    #[arg(long)]
    iscsid_conf: Option<PathBuf>,
    /// Output folder: budget.json, report.json and the runs' histories (not needed with
    /// --predict-only).
    #[arg(long, required_unless_present = "predict_only")]
    out: Option<PathBuf>,
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
        // A boundary, or the same outcome over the whole range: answers.
        let answered = predictions.iter().all(|(_, a)| *a != Answer::Unknown);
        let Some(out) = self.out.as_deref().filter(|_| !self.predict_only) else {
            return u8::from(!answered);
        };
        let host = match Host::open(out).await {
            Ok(h) => h,
            Err(code) => return code,
        };
        let out_dir = host.ctx.out.clone();
        let report_path = out.join(crate::report::json::FILE);
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
        let text = match crate::parse::files::read_scenario(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                return None;
            }
        };
        let base = match load_stretched(&text, path, &axes) {
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
        let (lo, hi) = (
            self.min.unwrap_or(1.0),
            self.max.unwrap_or(default_max(&base)),
        );
        if lo > hi || !(lo.is_finite() && hi.is_finite()) {
            eprintln!("iscsi-chaos: the range {lo}..{hi} is empty: give --min below --max");
            return None;
        }
        let target = base.lane.targets[0].as_str();
        let search = Search {
            text,
            path: path.clone(),
            axes,
            vary: vary.clone(),
            lo,
            hi,
            resolution,
            grain: 0.1,
        };
        if let Err(e) = search.point(search.lo, target) {
            eprintln!("iscsi-chaos: --vary {vary}: {e}");
            return None;
        }
        Some((base, search.with_grain(target)))
    }
}

/// The default high end of a budget's range: the scenario's run, and room
/// on the far side of the boundaries a fault's length and the timers make:
/// twice the longest fault, twice noop_out_interval + noop_out_timeout +
/// replacement_timeout.
fn default_max(s: &Scenario) -> f64 {
    let i = &s.initiator;
    let timers = f64::from(i.noop_out_interval)
        + f64::from(i.noop_out_timeout)
        + i.replacement_timeout.max(0) as f64;
    let longest = s.faults.iter().map(|f| f.duration_s).fold(0.0, f64::max);
    s.duration_s.max(2.0 * longest).max(2.0 * timers).ceil()
}
