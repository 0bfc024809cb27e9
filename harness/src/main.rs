//! The `iscsi-chaos` command: run, list, doctor, cleanup.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use iscsi_chaos::lab::LabJob;
use iscsi_chaos::ledger::host::IscsidUse;
use iscsi_chaos::model::Scenario;
use iscsi_chaos::parse::sweep::Axis;
use iscsi_chaos::plan::shard::Shard;
use iscsi_chaos::plan::PlannedRun;
use iscsi_chaos::report::events::{Reporter, Reporters, RunEvent};
use iscsi_chaos::report::json::JsonReport;
use iscsi_chaos::report::out::OutDir;
use iscsi_chaos::report::progress::Progress;
use iscsi_chaos::report::table::SummaryTable;
use iscsi_chaos::report::Report;
use iscsi_chaos::runner::{self as run, RunContext};
use iscsi_chaos::runner::{cleanup, doctor, suite};

/// Exit status for bad input (scenario files, arguments).
use iscsi_chaos_formats::exit;
use iscsi_chaos_lab::cli::{lab_command, ImageArgs, LabCommand, VmArgs};
use iscsi_chaos_lab::{glibc, image, interrupt, vm};

const INPUT_ERROR: u8 = exit::INPUT_ERROR as u8;
const INTERRUPTED: u8 = exit::INTERRUPTED as u8;
const TERMINATED: u8 = exit::TERMINATED as u8;

#[derive(Parser)]
#[command(
    name = "iscsi-chaos",
    version,
    about = "Break the link between a real iSCSI target and open-iscsi, and measure what the disk's users see"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run scenarios (files, or folders searched for *.toml) and write DIR/report.json.
    Run {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Output folder: report.json and one history per run.
        #[arg(long)]
        out: PathBuf,
        /// Runs at once, each on its own lane (default: from the host's CPUs and memory).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: Option<u16>,
        /// Run only shard K of N (K/N): a stable share of the runs, balanced by expected duration.
        #[arg(long)]
        shard: Option<Shard>,
        /// Sweep KEY over values: one run per point of the grid (repeat for more axes).
        /// KEY: target, replacement_timeout, noop_out_interval, noop_out_timeout, an
        /// iscsiadm node key, fault[N].field, or a path such as duration_s.
        #[arg(long = "sweep", value_name = "KEY=V1,V2,...", value_parser = parse_axis)]
        sweeps: Vec<Axis>,
        /// Apply the node settings of this iscsid.conf to every scenario (what it
        /// cannot apply is listed); a --sweep of the same key still varies it.
        #[arg(long)]
        iscsid_conf: Option<PathBuf>,
        /// Compare the results with this baseline report (a report.json or its folder):
        /// exit 1 on any regression, one line each (see `compare`).
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Also run the scenarios marked `long = true` found in folders (a file
        /// named on the command line always runs).
        #[arg(long)]
        long: bool,
        /// Run in the lab VM (Debian's kernel under QEMU) instead of on this host:
        /// this binary and every file the run reads are copied into the guest,
        /// the reports come back to --out.
        #[arg(long)]
        lab: bool,
        #[command(flatten, next_help_heading = "Lab (with --lab)")]
        image: ImageArgs,
        #[command(flatten, next_help_heading = "Lab (with --lab)")]
        vm: VmArgs,
    },
    /// Compare a report with a baseline, run id by run id: a verdict that stopped passing,
    /// a first error that appeared, vanished or moved, a stall or recovery that grew
    /// beyond tolerance. Exit 1 on any regression.
    Compare {
        /// The baseline: a report.json or the folder holding it.
        old: PathBuf,
        /// The new report (or its folder).
        new: PathBuf,
        /// Tolerance in seconds (default: each baseline run's oracle tolerance, at least 1 s).
        #[arg(long)]
        tolerance_s: Option<f64>,
    },
    /// Merge the output folders of shards (`run --shard`) into one report.json and their histories.
    Merge {
        /// The shards' output folders.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Output folder for the merged report.
        #[arg(long)]
        out: PathBuf,
    },
    /// List scenarios with their one-line description and target expansion.
    List {
        #[arg(default_value = "scenarios")]
        scenarios: Vec<PathBuf>,
        /// Sweep KEY over values, as for `run`.
        #[arg(long = "sweep", value_name = "KEY=V1,V2,...", value_parser = parse_axis)]
        sweeps: Vec<Axis>,
        /// Apply an iscsid.conf's node settings, as for `run`.
        #[arg(long)]
        iscsid_conf: Option<PathBuf>,
    },
    /// The ride-through budget: the longest value of KEY (an outage's length) the
    /// settings ride out without an I/O error. The oracle proposes the boundary, runs on
    /// both sides confirm it, bisecting to --resolution; per target of the scenario.
    /// Writes budget.json and the usual reports of every run; exit 1 when the measured
    /// boundary is further from the predicted one than its tolerance (1.5 s, plus half
    /// the span the oracle calls a race).
    Budget {
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
    },
    /// Start a project of your own in DIR: scenarios against your iscsid.conf (this
    /// host's /etc/iscsi/iscsid.conf, if there is one), a baseline-compare script and a
    /// GitHub workflow that calls the reusable suite workflow.
    Init { dir: PathBuf },
    /// Check this host: root, kernel modules, tools, configfs.
    Doctor {
        /// Print only the first missing piece (used by `cargo xtask chaos`).
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

fn main() -> ExitCode {
    // This binary is also the probe (an installed harness has no other).
    let arg0 = std::env::args_os().next().unwrap_or_default();
    if Path::new(&arg0).file_name() == Some(run::PROBE_NAME.as_ref()) {
        return guest_probes::blkprobe::main();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISCSI_CHAOS_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // A worker per lane at once (blocking calls happen on them), at least 2.
    let workers = match &cli.command {
        Cmd::Run { jobs, .. } => jobs.map_or_else(|| suite::default_jobs().0, usize::from),
        _ => 2,
    }
    .max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match cli.command {
        Cmd::Run {
            scenarios,
            out,
            jobs,
            shard,
            sweeps,
            iscsid_conf,
            baseline,
            long,
            lab,
            image,
            vm,
        } => {
            // Under --lab the guest's run says what it did not apply.
            let axes = with_conf(iscsid_conf.as_deref(), sweeps.clone(), !lab);
            if lab {
                let cli = LabRun {
                    sweeps: &sweeps,
                    iscsid_conf: iscsid_conf.as_deref(),
                    jobs,
                    shard,
                    baseline: baseline.as_deref(),
                    long,
                };
                run_in_lab(&scenarios, &axes, &out, &cli, image, &vm)
            } else {
                let code = runtime.block_on(run_command(
                    &scenarios,
                    &axes,
                    &out,
                    jobs,
                    shard,
                    baseline.as_deref(),
                    long,
                ));
                give_back(&out);
                code
            }
        }
        Cmd::Compare {
            old,
            new,
            tolerance_s,
        } => compare_command(&old, &new, tolerance_s),
        Cmd::Merge { shards, out } => merge_command(&shards, &out),
        Cmd::List {
            scenarios,
            sweeps,
            iscsid_conf,
        } => list(&scenarios, &with_conf(iscsid_conf.as_deref(), sweeps, true)),
        Cmd::Budget {
            scenario,
            vary,
            resolution,
            min,
            max,
            sets,
            iscsid_conf,
            out,
            predict_only,
        } => runtime.block_on(budget_command(
            &scenario,
            &vary,
            resolution,
            (min, max),
            &with_conf(iscsid_conf.as_deref(), sets, true),
            &out,
            predict_only,
        )),
        Cmd::Init { dir } => init_command(&dir),
        Cmd::Doctor { brief } => doctor::command(brief),
        Cmd::Cleanup => runtime.block_on(cleanup::command()),
        Cmd::Lab { command } => {
            interrupt::install();
            lab_status(lab_command(command, None, PathBuf::from("lab-out")))
        }
    };
    ExitCode::from(code)
}

/// Loads every scenario; prints every problem of every file.
/// The settings of `conf` (if given) ahead of the sweeps, saying what it
/// does not apply when `say_unapplied`; `None` when the conf cannot be read
/// (said on stderr).
fn with_conf(conf: Option<&Path>, sweeps: Vec<Axis>, say_unapplied: bool) -> Option<Vec<Axis>> {
    let Some(path) = conf else {
        return Some(sweeps);
    };
    match iscsi_chaos::parse::iscsid_conf::read(path) {
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

/// What `run --lab` passes on to the guest's `run` besides paths.
struct LabRun<'a> {
    sweeps: &'a [Axis],
    iscsid_conf: Option<&'a Path>,
    jobs: Option<u16>,
    shard: Option<Shard>,
    baseline: Option<&'a Path>,
    long: bool,
}

/// `run --lab`: checks every input here (so errors name the user's files),
/// picks the guest release this binary can run in, copies the binary and
/// the inputs into the job, boots, and hands the outputs to the sudo user.
fn run_in_lab(
    paths: &[PathBuf],
    axes: &Option<Vec<Axis>>,
    out: &Path,
    cli: &LabRun,
    image_args: ImageArgs,
    vm_args: &VmArgs,
) -> u8 {
    let Some(axes) = axes else {
        return INPUT_ERROR;
    };
    if load_all(paths, axes).is_err() {
        return INPUT_ERROR;
    }
    if let Some(Err(e)) = cli.baseline.map(read_report) {
        eprintln!("iscsi-chaos: --baseline {e}");
        return INPUT_ERROR;
    }
    interrupt::install();
    let job = || -> anyhow::Result<(LabJob, PathBuf, PathBuf, String)> {
        let exe = std::env::current_exe()?;
        let need = glibc::needed_by(&exe)?;
        let releases = image::releases()?;
        let release = glibc::choose(need, image_args.release.as_deref(), &releases, &exe)?;
        std::fs::create_dir_all(out)
            .map_err(|e| anyhow::anyhow!("--out {}: {e}", out.display()))?;
        let out = out.canonicalize()?;
        let mut job = LabJob::default();
        job.arg("run").arg("--out").arg(out.display().to_string());
        if let Some(j) = cli.jobs {
            job.arg("--jobs").arg(j.to_string());
        }
        if let Some(s) = cli.shard {
            job.arg("--shard").arg(s.to_string());
        }
        for a in cli.sweeps {
            let values: Vec<String> = a.values.iter().map(|v| v.to_string()).collect();
            job.arg("--sweep")
                .arg(format!("{}={}", a.key, values.join(",")));
        }
        if let Some(conf) = cli.iscsid_conf {
            job.arg("--iscsid-conf").file_arg(conf)?;
        }
        if let Some(b) = cli.baseline {
            job.arg("--baseline").file_arg(b)?;
        }
        if cli.long {
            job.arg("--long");
        }
        for p in paths {
            job.scenarios_arg(p)?;
        }
        Ok((job, exe, out, release.to_string()))
    };
    let (job, exe, out, release) = match job() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("iscsi-chaos: --lab: {e:#}");
            return INPUT_ERROR;
        }
    };
    eprintln!(
        "iscsi-chaos: in the lab ({release} guest): {} input file(s) copied in, reports to {}",
        job.files().count(),
        out.display()
    );
    let image_args = ImageArgs {
        release: Some(release),
        ..image_args
    };
    let status = lab_status(
        image::ensure(&image_args, false)
            .and_then(|img| vm::run(&img, vm_args, &job.into_job(&exe, out.clone()))),
    );
    give_back(&out);
    status
}

/// A lab command's exit status (its error said on stderr).
fn lab_status(result: anyhow::Result<i32>) -> u8 {
    match result {
        Ok(code) => code.clamp(0, 255) as u8,
        Err(e) => {
            eprintln!("iscsi-chaos: lab: {e:#}");
            if interrupt::requested() {
                INTERRUPTED
            } else {
                1
            }
        }
    }
}

/// Under sudo, the output folder goes to the user who asked for it.
fn give_back(out: &Path) {
    if let Err(e) = iscsi_chaos::lab::give_to_sudo_user(out) {
        eprintln!(
            "iscsi-chaos: could not give {} to the sudo user: {e:#}",
            out.display()
        );
    }
}

fn parse_axis(spec: &str) -> Result<Axis, String> {
    iscsi_chaos::parse::sweep::parse_cli_axis(spec)
}

/// Loads every scenario (each sweep expanded, with the command line's
/// `axes`); prints every problem of every file.
fn load_all(paths: &[PathBuf], axes: &[Axis]) -> Result<Vec<Scenario>, ()> {
    let files = iscsi_chaos::parse::files::scenario_files(paths);
    if files.is_empty() {
        eprintln!("iscsi-chaos: no scenario files (*.toml) found");
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

/// Whether `s` was read from a file named on the command line (not found
/// in a folder).
fn named_on_command_line(paths: &[PathBuf], s: &Scenario) -> bool {
    paths
        .iter()
        .any(|p| p.is_file() && p.display().to_string() == s.path)
}

fn list(paths: &[PathBuf], axes: &Option<Vec<Axis>>) -> u8 {
    let Some(axes) = axes else {
        return INPUT_ERROR;
    };
    let Ok(scenarios) = load_all(paths, axes) else {
        return INPUT_ERROR;
    };
    for planned in iscsi_chaos::plan::suite(&scenarios) {
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

fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // 32 random bits beside the time: two runs started in the same second
    // (a CI matrix, a sweep) do not share an id.
    let mut random = [0u8; 4];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random));
    let random = match got {
        Ok(()) => u32::from_le_bytes(random),
        Err(_) => std::process::id().rotate_left(16) ^ (secs as u32),
    };
    format!("r{:x}{random:08x}", secs & 0xffffff)
}

async fn run_command(
    paths: &[PathBuf],
    axes: &Option<Vec<Axis>>,
    out: &Path,
    jobs: Option<u16>,
    shard: Option<Shard>,
    baseline: Option<&Path>,
    long: bool,
) -> u8 {
    let Some(axes) = axes else {
        return INPUT_ERROR;
    };
    let Ok(mut scenarios) = load_all(paths, axes) else {
        return INPUT_ERROR;
    };
    if !long {
        let before = scenarios.len();
        scenarios.retain(|s| !s.long || named_on_command_line(paths, s));
        if scenarios.len() < before {
            eprintln!(
                "iscsi-chaos: {} long scenario point(s) left out (minutes each): add --long to run them",
                before - scenarios.len()
            );
        }
    }
    let baseline = match baseline.map(read_report).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("iscsi-chaos: --baseline {e}");
            return INPUT_ERROR;
        }
    };
    let full = iscsi_chaos::plan::suite(&scenarios);
    let plan: Vec<PlannedRun> = match shard {
        Some(s) => iscsi_chaos::plan::shard::select(&full, s)
            .into_iter()
            .map(|i| full[i].clone())
            .collect(),
        None => full.clone(),
    };
    let (jobs, mut why) = match jobs {
        Some(j) => (usize::from(j), format!("--jobs {j}")),
        None => {
            let (j, why) = suite::default_jobs();
            (j, format!("--jobs {j}: {why}"))
        }
    };
    if let Some(s) = shard {
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
    let report_path = out.join(iscsi_chaos::report::json::FILE);
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
    report.shard = shard.map(|s| s.to_string());
    let interrupted = host.close().await;
    reporters.emit(RunEvent::SuiteFinished { report: &report });
    if let Some(code) = interrupted {
        return code;
    }
    let status = report.exit_status() as u8;
    match baseline {
        Some(old) if print_comparison(&old, &report, None) && status == 0 => 1,
        _ => status,
    }
}

/// What a run of scenarios holds on this host while it runs: its registry
/// entry, the shared iscsid, the signal handler, and the context runs get.
struct Host {
    ctx: RunContext,
    iscsid: IscsidUse,
    live: iscsi_chaos::ledger::registry::LiveRun,
    signal: tokio::task::JoinHandle<u8>,
}

impl Host {
    /// Prepares the output folder `out`, checks the host, removes what
    /// crashed runs left, registers the run and takes iscsid; `Err(status)`
    /// when it cannot (said on stderr).
    async fn open(out: &Path) -> Result<Host, u8> {
        let out_dir = match OutDir::prepare(out) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("iscsi-chaos: {e}");
                return Err(INPUT_ERROR);
            }
        };
        if let Some(problem) = doctor::first_problem() {
            eprintln!("iscsi-chaos: this host cannot run scenarios: {problem}");
            eprintln!("iscsi-chaos: run `iscsi-chaos doctor` for the whole list, or `cargo xtask chaos` to use the lab VM");
            return Err(1);
        }
        let removed = cleanup::stale().await;
        if !removed.is_empty() {
            eprintln!(
                "iscsi-chaos: removed leftovers of earlier runs: {}",
                removed.join(", ")
            );
        }

        let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
        let signal = tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let code = tokio::select! {
                _ = int.recv() => INTERRUPTED,
                _ = term.recv() => TERMINATED,
            };
            eprintln!("iscsi-chaos: interrupted: tearing down (interrupt again to exit at once)");
            let _ = cancel_tx.send(true);
            // A second signal ends the process at once; what the teardown had
            // not removed yet stays in the ledger for `iscsi-chaos cleanup`.
            tokio::spawn(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                eprintln!(
                    "iscsi-chaos: interrupted again: exiting now; run `iscsi-chaos cleanup` to remove what is left"
                );
                std::process::exit(code.into());
            });
            code
        });

        let run_id = new_run_id();
        iscsi_chaos::sys::cmd::set_marker(&run_id);
        // Registered before anything is created: a later run can tell our
        // objects from a crashed run's.
        let live = match iscsi_chaos::ledger::registry::LiveRun::register(&run_id) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("iscsi-chaos: cannot register the run: {e}");
                return Err(1);
            }
        };
        doctor::load_modules();
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("iscsi-chaos"));
        let ctx = RunContext {
            run_id,
            out: out_dir,
            probe_binary: run::probe_binary_beside(&exe),
            cancel,
            phases: None,
        };
        // Shared with every other run on the host; the last user stops an
        // iscsid a run started.
        let iscsid = match IscsidUse::take().await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("iscsi-chaos: {e:#}");
                return Err(1);
            }
        };
        Ok(Host {
            ctx,
            iscsid,
            live,
            signal,
        })
    }

    /// Gives iscsid back and sweeps the run's ledger; the exit status of a
    /// signal that interrupted the run, if one did.
    async fn close(self) -> Option<u8> {
        self.iscsid.release().await;
        // The whole run's ledger: anything of any run still there goes now.
        let sweep = self.live.ledger().sweep().await;
        for r in &sweep.removed {
            eprintln!("iscsi-chaos: {r} was still there at the end; removed");
        }
        for f in &sweep.failed {
            eprintln!("iscsi-chaos: could not remove {f}");
        }
        drop(self.live);
        if self.signal.is_finished() {
            return Some(self.signal.await.unwrap_or(INTERRUPTED));
        }
        self.signal.abort();
        None
    }
}

/// The planned run of `path` at `vary = value` on `target`, with `axes`.
fn budget_point(
    text: &str,
    path: &Path,
    axes: &[Axis],
    vary: &str,
    value: f64,
    target: &str,
) -> Result<PlannedRun, String> {
    let point = |spec: String| iscsi_chaos::parse::sweep::parse_cli_axis(&spec);
    // The fixed settings set values; only the target and the varied key
    // name a run (and make the outcome map's axes).
    let mut all: Vec<Axis> = axes
        .iter()
        .cloned()
        .map(|mut a| {
            a.named = false;
            a
        })
        .collect();
    all.push(point(format!("target={target}"))?);
    all.push(point(format!("{vary}={value}"))?);
    let scenarios = Scenario::parse_swept(text, path, &all).map_err(|e| e.to_string())?;
    iscsi_chaos::plan::suite(&scenarios)
        .into_iter()
        .next()
        .ok_or_else(|| "no run at this point".to_string())
}

async fn budget_command(
    path: &Path,
    vary: &str,
    resolution: f64,
    range: (Option<f64>, Option<f64>),
    axes: &Option<Vec<Axis>>,
    out: &Path,
    predict_only: bool,
) -> u8 {
    use iscsi_chaos::plan::budget::{predicted_boundary, Bisect};
    let Some(axes) = axes else {
        return INPUT_ERROR;
    };
    if !(resolution >= 0.1 && resolution.is_finite()) {
        eprintln!("iscsi-chaos: --resolution must be at least 0.1 s, got {resolution}");
        return INPUT_ERROR;
    }
    let base = match Scenario::load_swept(path, axes) {
        Ok(mut s) if s.len() == 1 => s.remove(0),
        Ok(s) => {
            eprintln!(
                "iscsi-chaos: {}: a budget needs one scenario, the sweep makes {}",
                path.display(),
                s.len()
            );
            return INPUT_ERROR;
        }
        Err(e) => {
            eprintln!("{e}");
            return INPUT_ERROR;
        }
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("iscsi-chaos: {}: {e}", path.display());
            return INPUT_ERROR;
        }
    };
    let (lo, hi) = (range.0.unwrap_or(1.0), range.1.unwrap_or(base.duration_s));
    if let Err(e) = budget_point(&text, path, axes, vary, lo, base.lane.targets[0].as_str()) {
        eprintln!("iscsi-chaos: --vary {vary}: {e}");
        return INPUT_ERROR;
    }
    // The oracle's boundary per target, said before anything runs.
    let predictions: Vec<(&str, Option<iscsi_chaos::plan::budget::Boundary>)> = base
        .lane
        .targets
        .iter()
        .map(|t| {
            let target = t.as_str();
            let b = predicted_boundary(
                |v| {
                    budget_point(&text, path, axes, vary, v, target)
                        .ok()
                        .map(|p| p.prediction)
                },
                lo,
                hi,
                resolution,
            );
            match b {
                Some(b) if b.fail - b.ride > resolution / 5.0 => eprintln!(
                    "iscsi-chaos: budget on {target}: the oracle predicts {vary} up to {} rides through, from {} it fails, a race between: boundary {} ± {:.1}",
                    b.ride, b.fail, b.centre(), b.tolerance()
                ),
                Some(b) => eprintln!(
                    "iscsi-chaos: budget on {target}: the oracle predicts {vary} up to {} rides through: boundary {} ± {:.1}",
                    b.ride, b.centre(), b.tolerance()
                ),
                None => eprintln!(
                    "iscsi-chaos: budget on {target}: the oracle sees no boundary of {vary} in {lo}..{hi}"
                ),
            }
            (target, b)
        })
        .collect();
    if predict_only {
        return if predictions.iter().all(|(_, b)| b.is_some()) {
            0
        } else {
            1
        };
    }
    let host = match Host::open(out).await {
        Ok(h) => h,
        Err(code) => return code,
    };
    let out_dir = host.ctx.out.clone();
    let report_path = out.join(iscsi_chaos::report::json::FILE);
    let mut progress = Reporters(vec![Box::new(Progress::stderr())]);
    let mut report = Report::default();
    let mut results = Vec::new();
    let mut status = 0;
    'targets: for (target, predicted) in predictions {
        let Some(boundary) = predicted else {
            status = 1;
            continue;
        };
        let predicted = boundary.centre();
        let mut bisect = Bisect::new(predicted, resolution, lo, hi);
        let mut runs = Vec::new();
        while let Some(v) = bisect.next_value() {
            let planned = match budget_point(&text, path, axes, vary, v, target) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("iscsi-chaos: budget on {target}: at {v}: {e}");
                    status = 1;
                    continue 'targets;
                }
            };
            let plan = [planned];
            progress.emit(RunEvent::SuiteStarted {
                runs: &plan,
                jobs: 1,
                why: "budget",
            });
            let got = suite::run_all(host.ctx.clone(), &plan, 1, &mut progress).await;
            let Some(entry) = got.scenarios.into_iter().next() else {
                break 'targets; // interrupted
            };
            let measured = matches!(
                entry.verdict,
                iscsi_chaos::check::Verdict::Pass | iscsi_chaos::check::Verdict::Fail
            );
            let errored = entry.measured.first_error_s.is_some();
            runs.push(serde_json::json!({
                "value": v, "id": entry.id, "verdict": entry.verdict.as_str(),
                "first_error_s": entry.measured.first_error_s,
            }));
            report.push(entry);
            if !measured {
                eprintln!(
                    "iscsi-chaos: budget on {target}: the run at {v} measured nothing; stopping"
                );
                status = 1;
                continue 'targets;
            }
            bisect.record(v, errored);
        }
        let measured = bisect.measured();
        let line = match measured {
            Some(m) => format!(
                "budget of {} on {target}: {vary} up to {m} rides through (fails at {}), predicted {predicted} ± {:.1}: {:+.1} s{}",
                base.name,
                bisect.fail.unwrap_or(m),
                boundary.tolerance(),
                m - predicted,
                if (m - predicted).abs() > boundary.tolerance() { ", outside the tolerance" } else { "" }
            ),
            None => format!(
                "budget of {} on {target}: no boundary found in {lo}..{hi} (predicted {predicted}); longest ride-through {:?}, shortest failure {:?}",
                base.name, bisect.ride, bisect.fail
            ),
        };
        println!("{line}");
        if measured.is_none_or(|m| (m - predicted).abs() > boundary.tolerance()) {
            status = 1;
        }
        results.push(serde_json::json!({
            "scenario": base.name, "target": target, "vary": vary, "resolution_s": resolution,
            "predicted": predicted, "predicted_ride": boundary.ride, "predicted_fail": boundary.fail,
            "tolerance_s": boundary.tolerance(), "ride": bisect.ride, "fail": bisect.fail,
            "measured": measured, "runs": runs,
        }));
    }
    let interrupted = host.close().await;
    let json =
        serde_json::to_string_pretty(&serde_json::json!({ "budgets": results })).expect("json");
    out_dir.write_or_say("budget.json", json.as_bytes());
    Reporters(file_reporters(out_dir, report_path))
        .emit(RunEvent::SuiteFinished { report: &report });
    interrupted.unwrap_or(status)
}

fn init_command(dir: &Path) -> u8 {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        eprintln!(
            "iscsi-chaos: init: {} is not empty; give a new or empty folder",
            dir.display()
        );
        return INPUT_ERROR;
    }
    let host_conf = std::fs::read_to_string("/etc/iscsi/iscsid.conf").ok();
    let from = if host_conf.is_some() {
        "/etc/iscsi/iscsid.conf"
    } else {
        "open-iscsi's defaults"
    };
    for f in iscsi_chaos::template::files(host_conf.as_deref()) {
        let path = dir.join(f.path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &f.text))
            .and_then(|()| {
                if f.executable {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            eprintln!("iscsi-chaos: init: {}: {e}", path.display());
            return 1;
        }
        println!("{}", path.display());
    }
    eprintln!(
        "iscsi-chaos: init: iscsid.conf from {from}; next: `iscsi-chaos list {0}/scenarios`, then `sudo iscsi-chaos run {0}/scenarios --out {0}/out`",
        dir.display()
    );
    0
}

/// What a finished suite writes (report.json, the outcome map, the
/// timelines, the summary table): the same for `run` and `merge`.
fn file_reporters(out_dir: OutDir, report_path: PathBuf) -> Vec<Box<dyn Reporter>> {
    vec![
        Box::new(JsonReport {
            out: out_dir.clone(),
        }),
        Box::new(iscsi_chaos::report::outcome::OutcomeMap {
            out: out_dir.clone(),
        }),
        Box::new(iscsi_chaos::report::timeline::Timelines {
            out: out_dir.clone(),
        }),
        Box::new(iscsi_chaos::report::junit::Junit {
            out: out_dir.clone(),
        }),
        Box::new(iscsi_chaos::report::summary::Summary {
            out: out_dir.clone(),
            step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        }),
        Box::new(iscsi_chaos::report::html::Html {
            out: out_dir.clone(),
        }),
        Box::new(SummaryTable {
            out: std::io::stdout(),
            report_path,
        }),
    ]
}

/// A report.json, or the one in folder `path`.
fn read_report(path: &Path) -> Result<Report, String> {
    let file = if path.is_dir() {
        path.join(iscsi_chaos::report::json::FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    Report::from_json(&text).map_err(|e| format!("{}: not a report: {e}", file.display()))
}

/// Prints the comparison of `new` with the baseline `old`; true when it
/// found a regression.
fn print_comparison(old: &Report, new: &Report, tolerance_s: Option<f64>) -> bool {
    let c = iscsi_chaos::report::compare::compare(old, new, tolerance_s);
    for line in &c.regressions {
        println!("regression: {line}");
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

/// `compare`: exit 1 on any regression.
fn compare_command(old: &Path, new: &Path, tolerance_s: Option<f64>) -> u8 {
    let (old, new) = match (read_report(old), read_report(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("iscsi-chaos: {e}");
            return INPUT_ERROR;
        }
    };
    u8::from(print_comparison(&old, &new, tolerance_s))
}

/// `merge`: the shards' reports into one (as one unsharded run would have
/// written it), their histories beside it.
fn merge_command(shards: &[PathBuf], out: &Path) -> u8 {
    let mut reports = Vec::new();
    for dir in shards {
        let path = dir.join(iscsi_chaos::report::json::FILE);
        match read_report(&path) {
            Ok(r) => reports.push((path.display().to_string(), r)),
            Err(e) => {
                eprintln!("iscsi-chaos: {e}");
                return INPUT_ERROR;
            }
        }
    }
    let merged = match iscsi_chaos::report::merge::merge(&reports) {
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
    let report_path = out.join(iscsi_chaos::report::json::FILE);
    let mut reporters = Reporters(file_reporters(out_dir, report_path));
    reporters.emit(RunEvent::SuiteFinished { report: &merged });
    merged.exit_status() as u8
}
