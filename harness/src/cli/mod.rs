//! The `iscsi-chaos` command line: the top layer, above every other (it may
//! use them all; none uses it). [`Cli`] is what clap parses, [`Cli::exec`]
//! hands each command to its file: one file per command, holding its
//! arguments and what it does. A new command is its file, one variant of
//! [`Cmd`] and one arm in [`Cli::exec`].
//!
//! What the commands share is here: loading scenarios with the command
//! line's axes, the files a finished suite writes, handing the output folder
//! to the sudo user, and the tokio runtime of the commands that run things.

mod budget;
mod compare;
mod explain;
mod init;
mod lab;
mod list;
mod merge;
mod predict;
mod run;
mod trace;

use std::future::Future;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use iscsi_chaos_formats::exit;
use iscsi_chaos_lab::cli::LabCommand;

use crate::model::Scenario;
use crate::parse::sweep::Axis;
use crate::report::events::Reporter;
use crate::report::json::JsonReport;
use crate::report::out::OutDir;
use crate::report::table::SummaryTable;
use crate::runner::{cleanup, doctor};

/// Exit status for bad input (scenario files, arguments).
const INPUT_ERROR: u8 = exit::INPUT_ERROR as u8;

#[derive(Parser)]
#[command(
    name = "iscsi-chaos",
    version,
    about = "Break the link between a real iSCSI target and open-iscsi, and measure what the disk's users see"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run scenarios (files, or folders searched for *.toml) and write DIR/report.json.
    Run(run::RunArgs),
    /// Compare a report with a baseline, run id by run id: a verdict that stopped passing,
    /// a first error that appeared, vanished or moved, a stall or recovery that grew
    /// beyond tolerance, a baseline run missing, skipped or errored (unless
    /// --allow-missing). Lists the settings that differ. Exit 1 on any regression, 2 on
    /// reports of different schemas.
    Compare(compare::CompareArgs),
    /// Merge the output folders of shards (`run --shard`) into one report.json and their histories.
    Merge(merge::MergeArgs),
    /// List scenarios with their one-line description and target expansion.
    List(list::ListArgs),
    /// The ride-through budget: the longest value of KEY (an outage's length) the
    /// settings ride out without an I/O error. The oracle proposes the boundary, runs on
    /// both sides confirm it, bisecting to --resolution; per target of the scenario.
    /// Writes budget.json and the usual reports of every run; exit 1 when the measured
    /// boundary is further from the predicted one than its tolerance (1.5 s, plus half
    /// the span the oracle calls a race).
    Budget(budget::BudgetArgs),
    /// What the oracle expects of each run, without running anything: the settings that
    /// apply and where each came from (file, profile, iscsid.conf line, sweep), the
    /// predicted detection, first error, stall and recovery, and the model's reasoning.
    Predict(predict::PredictArgs),
    /// Start a project of your own in DIR: scenarios against your iscsid.conf (this
    /// host's /etc/iscsi/iscsid.conf, if there is one), a baseline-compare script and a
    /// GitHub workflow that calls the reusable suite workflow.
    Init(init::InitArgs),
    /// The scenario reference: the fault kinds and sections, or one kind's options,
    /// types, units, defaults and ranges (as in docs/scenarios.md).
    Explain(explain::ExplainArgs),
    /// One block's story from a run's history: the probe's operations on it and every
    /// SCSI command on the wire that covered it (path, connection, whether and when it
    /// reached the target, the status that answered it). Needs the run's capture.
    Trace(trace::TraceArgs),
    /// Check this host: root, kernel modules, tools, configfs.
    Doctor {
        /// Print only the first missing piece (for scripts choosing between this
        /// host and `run --lab`).
        #[arg(long)]
        brief: bool,
    },
    /// Remove what crashed or killed runs left behind (only objects carrying our marker).
    Cleanup,
    /// The lab VM: build its image, run a command in it, say where it is cached.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
}

impl Cli {
    /// Carries out the command; its exit status.
    pub fn exec(self) -> u8 {
        match self.command {
            // Under --lab the guest's run says what it did not apply.
            Cmd::Run(args) if args.lab => {
                let axes = with_conf(args.iscsid_conf.as_deref(), args.sweeps.clone(), false);
                lab::run_in_lab(&args, axes.as_deref())
            }
            Cmd::Run(args) => args.exec(),
            Cmd::Compare(args) => args.exec(),
            Cmd::Merge(args) => args.exec(),
            Cmd::List(args) => args.exec(),
            Cmd::Budget(args) => args.exec(),
            Cmd::Predict(args) => args.exec(),
            Cmd::Init(args) => args.exec(),
            Cmd::Explain(args) => args.exec(),
            Cmd::Trace(args) => args.exec(),
            Cmd::Doctor { brief } => doctor::command(brief),
            Cmd::Cleanup => block_on(2, cleanup::command()),
            Cmd::Lab { command } => lab::command(command),
        }
    }
}

/// Runs `future` to its end on a tokio runtime of `workers` threads (at
/// least 2: blocking calls happen on them).
fn block_on<F: Future>(workers: usize, future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(2))
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// The settings of `conf` (if given) ahead of the sweeps, saying what it
/// does not apply when `say_unapplied`; `None` when the conf cannot be read
/// (said on stderr).
fn with_conf(conf: Option<&Path>, sweeps: Vec<Axis>, say_unapplied: bool) -> Option<Vec<Axis>> {
    let Some(path) = conf else {
        return Some(sweeps);
    };
    match crate::parse::iscsid_conf::read(path) {
        Ok(c) => {
            if say_unapplied {
                for line in &c.not_applied {
                    eprintln!("iscsi-chaos: not applied: {line}");
                }
            }
            Some(c.settings.into_iter().chain(sweeps).collect())
        }
        Err(e) => {
            eprintln!("iscsi-chaos: --iscsid-conf {e}");
            None
        }
    }
}

fn parse_axis(spec: &str) -> Result<Axis, String> {
    crate::parse::sweep::parse_cli_axis(spec)
}

/// A `--set KEY=VALUE`, its messages naming `--set`.
fn parse_set(spec: &str) -> Result<Axis, String> {
    crate::parse::sweep::parse_option_axis("--set", spec)
}

/// The scenarios `list` and `predict` read: paths, sweeps, an iscsid.conf.
#[derive(clap::Args)]
struct ScenarioSet {
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

impl ScenarioSet {
    /// The axes given (the iscsid.conf's settings first, what it does not
    /// apply said) and every scenario loaded with them; the exit status on
    /// bad input (said on stderr).
    fn load(&self) -> Result<(Vec<Axis>, Vec<Scenario>), u8> {
        let axes =
            with_conf(self.iscsid_conf.as_deref(), self.sweeps.clone(), true).ok_or(INPUT_ERROR)?;
        let scenarios = load_all(&self.scenarios, &axes).map_err(|()| INPUT_ERROR)?;
        Ok((axes, scenarios))
    }
}

/// Loads every scenario (each sweep expanded, with the command line's
/// `axes`); prints every problem of every file.
fn load_all(paths: &[PathBuf], axes: &[Axis]) -> Result<Vec<Scenario>, ()> {
    let files = crate::parse::files::scenario_files(paths);
    if files.is_empty() {
        let named: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "iscsi-chaos: no scenario files (*.toml) found in {}",
            named.join(", ")
        );
        return Err(());
    }
    let mut scenarios = Vec::new();
    let mut bad = false;
    for file in files {
        match Scenario::load_swept(&file, axes) {
            Ok(s) => scenarios.extend(s),
            Err(e) => {
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    if bad {
        Err(())
    } else {
        Ok(scenarios)
    }
}

/// Under sudo, the output folder goes to the user who asked for it.
fn give_back(out: &Path) {
    if let Err(e) = crate::lab::give_to_sudo_user(out) {
        eprintln!(
            "iscsi-chaos: could not give {} to the sudo user: {e:#}",
            out.display()
        );
    }
}

/// What a finished suite writes (report.json, the outcome map, the
/// timelines, the summary table): the same for `run`, `budget` and `merge`.
fn file_reporters(out_dir: OutDir, report_path: PathBuf) -> Vec<Box<dyn Reporter>> {
    vec![
        Box::new(JsonReport {
            out: out_dir.clone(),
        }),
        Box::new(crate::report::outcome::OutcomeMap {
            out: out_dir.clone(),
        }),
        Box::new(crate::report::timeline::Timelines {
            out: out_dir.clone(),
        }),
        Box::new(crate::report::junit::Junit {
            out: out_dir.clone(),
        }),
        Box::new(crate::report::summary::Summary {
            out: out_dir.clone(),
            step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        }),
        Box::new(crate::report::html::Html {
            out: out_dir.clone(),
        }),
        Box::new(SummaryTable {
            out: std::io::stdout(),
            report_path,
        }),
    ]
}
