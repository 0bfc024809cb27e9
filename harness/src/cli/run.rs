//! `iscsi-chaos run`: load, plan (and shard), run the suite on this host
//! (or hand it to the lab with `--lab`), emit the run events, compare with
//! a baseline.

use std::path::PathBuf;

use iscsi_chaos_lab::cli::{ImageArgs, VmArgs};

use super::compare::{print_comparison, read_report};
use super::{file_reporters, give_back, load_all, parse_axis, with_conf, INPUT_ERROR};
use crate::model::CaptureMode;
use crate::model::Scenario;
use crate::parse::sweep::Axis;
use crate::plan::shard::Shard;
use crate::plan::PlannedRun;
use crate::report::events::{Reporter, Reporters, RunEvent};
use crate::report::progress::Progress;
use crate::runner::host::Host;
use crate::runner::suite;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario files, or folders searched for *.toml.
    #[arg(required = true)]
    pub(super) scenarios: Vec<PathBuf>,
    /// Output folder: report.json and one history per run.
    #[arg(long)]
    pub(super) out: PathBuf,
    /// Runs at once, each on its own lane (default: from the host's CPUs and memory).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(super) jobs: Option<u16>,
    /// Run only shard K of N (K/N): a stable share of the runs, balanced by expected duration.
    #[arg(long)]
    pub(super) shard: Option<Shard>,
    /// Sweep KEY over values: one run per point of the grid (repeat for more axes).
    /// KEY: target, replacement_timeout, noop_out_interval, noop_out_timeout, an
    /// iscsiadm node key, fault[N].field, or a path such as duration_s.
    #[arg(long = "sweep", value_name = "KEY=V1,V2,...", value_parser = parse_axis)]
    pub(super) sweeps: Vec<Axis>,
    /// Apply the node settings of this iscsid.conf to every scenario (what it
    /// cannot apply is listed); a --sweep of the same key still varies it.
    #[arg(long)]
    pub(super) iscsid_conf: Option<PathBuf>,
    /// Compare the results with this baseline report (a report.json or its folder):
    /// exit 1 on any regression, one line each (see `compare`).
    #[arg(long)]
    pub(super) baseline: Option<PathBuf>,
    /// Also run the scenarios marked `long = true` found in folders (a file
    /// named on the command line always runs).
    #[arg(long)]
    pub(super) long: bool,
    /// Run each scenario (each point of a sweep) this many times, as
    /// `<name>#1`, `<name>#2`, ...: how often an outcome comes back.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::plan::MAX_REPEAT)))]
    pub(super) repeat: u32,
    /// The switch's capture for every run, whatever `[capture] mode` says:
    /// off, faults (a window around each fault) or all (the whole run).
    #[arg(long, value_parser = parse_capture)]
    pub(super) capture: Option<CaptureMode>,
    /// Run in the lab VM (Debian's kernel under QEMU) instead of on this host:
    /// this binary and every file the run reads are copied into the guest,
    /// the reports come back to --out.
    #[arg(long)]
    pub(super) lab: bool,
    #[command(flatten, next_help_heading = "Lab (with --lab)")]
    pub(super) image: ImageArgs,
    #[command(flatten, next_help_heading = "Lab (with --lab)")]
    pub(super) vm: VmArgs,
}

fn parse_capture(s: &str) -> Result<CaptureMode, String> {
    CaptureMode::ALL
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| format!("`{s}`: expected off, faults or all"))
}

impl RunArgs {
    /// Runs the suite on this host (`--lab` is dispatched to
    /// [`super::lab::run_in_lab`] before this).
    pub fn exec(self) -> u8 {
        let axes = with_conf(self.iscsid_conf.as_deref(), self.sweeps.clone(), true);
        // A worker per lane at once (blocking calls happen on them).
        let workers = self
            .jobs
            .map_or_else(|| suite::default_jobs().0, usize::from);
        let code = match axes {
            Some(axes) => super::block_on(workers, self.run_here(&axes)),
            None => INPUT_ERROR,
        };
        give_back(&self.out);
        code
    }

    /// The suite on this host.
    async fn run_here(&self, axes: &[Axis]) -> u8 {
        let (paths, out) = (&self.scenarios, &self.out);
        let Ok(mut scenarios) = load_all(paths, axes) else {
            return INPUT_ERROR;
        };
        if let Some(mode) = self.capture {
            for s in &mut scenarios {
                s.capture.mode = mode;
            }
        }
        if !self.long {
            let before = scenarios.len();
            scenarios.retain(|s| !s.long || named_on_command_line(paths, s));
            if scenarios.len() < before {
                eprintln!(
                    "iscsi-chaos: {} long scenario point(s) left out (minutes each): add --long to run them",
                    before - scenarios.len()
                );
            }
        }
        let scenarios = crate::plan::repeat(scenarios, self.repeat);
        let baseline = match self.baseline.as_deref().map(read_report).transpose() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("iscsi-chaos: --baseline {e}");
                return INPUT_ERROR;
            }
        };
        let full = crate::plan::suite(&scenarios);
        let plan: Vec<PlannedRun> = match self.shard {
            Some(s) => crate::plan::shard::select(&full, s)
                .into_iter()
                .map(|i| full[i].clone())
                .collect(),
            None => full.clone(),
        };
        let (jobs, mut why) = match self.jobs {
            Some(j) => (usize::from(j), format!("--jobs {j}")),
            None => {
                let (j, why) = suite::default_jobs();
                (j, format!("--jobs {j}: {why}"))
            }
        };
        if let Some(s) = self.shard {
            why.push_str(&format!(
                "; shard {s}: {} of {} runs",
                plan.len(),
                full.len()
            ));
        }
        let host = match Host::open(out).await {
            Ok(h) => h,
            Err(code) => return code,
        };
        let out_dir = host.ctx.out.clone();
        let report_path = out.join(crate::report::json::FILE);
        let mut reporters = Reporters(
            std::iter::once(Box::new(Progress::stderr()) as Box<dyn Reporter>)
                .chain(file_reporters(out_dir, report_path))
                .collect(),
        );
        reporters.emit(RunEvent::SuiteStarted {
            runs: &plan,
            jobs,
            why: &why,
        });
        let mut report = suite::run_all(host.ctx.clone(), &plan, jobs, &mut reporters).await;
        report.plan = full.iter().map(|p| p.id.clone()).collect();
        report.shard = self.shard.map(|s| s.to_string());
        let interrupted = host.close().await;
        reporters.emit(RunEvent::SuiteFinished { report: &report });
        if let Some(code) = interrupted {
            return code;
        }
        let status = report.exit_status() as u8;
        match baseline {
            // A run of part of the baseline (a shard, a filter) is no regression.
            Some(old) if print_comparison(&old, &report, baseline_options()) && status == 0 => 1,
            _ => status,
        }
    }
}

/// Whether `s` was read from a file named on the command line (not found
/// in a folder).
fn named_on_command_line(paths: &[PathBuf], s: &Scenario) -> bool {
    paths
        .iter()
        .any(|p| p.is_file() && p.display().to_string() == s.path)
}

/// How `run --baseline` compares: each run's own tolerance, runs of the
/// baseline not run this time told as notes (as before `--allow-missing`).
fn baseline_options() -> crate::report::compare::Options {
    crate::report::compare::Options {
        tolerance_s: None,
        allow_missing: true,
    }
}
