//! The orchestrator: one scenario run end to end.
//!
//! setup (lane, target, node record, login, nemesis) -> probe + observers ->
//! fault timeline -> probe verifies and ends -> teardown (always, in reverse)
//! -> checker -> report entry.
//!
//! Invariants: every object a run creates is torn down by [`Setup::teardown`]
//! whatever happened before it (error, hung probe, Ctrl-C); the fault
//! timeline's clock is the probe's own CLOCK_MONOTONIC, so fault steps, probe
//! operations and kernel lines share one timeline.

pub mod budget;
pub mod cleanup;
pub mod doctor;
pub mod host;
pub mod suite;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use guest_probes::{monotonic_now, ProbeEvent};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::watch;

use crate::check::{self, Verdict};
use crate::env::initiator::{Node, Session};
use crate::env::lane::Lane;
use crate::env::monitor::Monitor;
use crate::env::multipath::MultipathMap;
use crate::env::target::slow_store::SlowStore;
use crate::env::target::{InitiatorAllow, LunSpec, StopMode, Target, Unsupported};
use crate::history::{Effect, Event, FaultPhase, History};
use crate::ledger::Ledger;
use crate::model::{Initiator, Run};
use crate::nemesis::{self, Action, Nemesis, Step};
use crate::oracle::{self, Prediction};
use crate::plan::PlannedRun;
use crate::report::events::Phase;
use crate::report::{Entry, EntryExt, Timings};

// The probe's deadline (verify + slack after the I/O phase) is the
// scenario's `[expect] deadline_s`. Past it, or after any other error of the
// timeline, the wind-down below is bounded at every step:
/// After SIGKILL: how long the probe may take to exit before it is taken for
/// blocked in the kernel (D state: the signal waits for the I/O to end).
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Bound on iscsiadm's logout of the session (in recovery, it only stops it).
const LOGOUT_DEADLINE: Duration = Duration::from_secs(30);
// The parser bounds a scenario's logout_timeout below it.
const _: () =
    assert!((crate::model::settings::MAX_LOGOUT_TIMEOUT_S as u64) < LOGOUT_DEADLINE.as_secs());
/// After the logout failed the queued I/O: how long the probe may take to exit.
const RELEASE_GRACE: Duration = Duration::from_secs(10);
/// After the probe exited, or was given up on: how long its output may take
/// to drain into the history.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What every run of one `iscsi-chaos run` shares.
#[derive(Clone)]
pub struct RunContext {
    pub run_id: String,
    pub out: crate::report::out::OutDir,
    pub probe_binary: PathBuf,
    /// Flips to true on Ctrl-C/SIGTERM: the current run stops and tears down.
    pub cancel: watch::Receiver<bool>,
    /// Where runs say which phase they are in (`None`: nobody listens).
    pub phases: Option<PhaseSender>,
}

impl RunContext {
    fn phase(&self, planned: &PlannedRun, phase: Phase) {
        if let Some(tx) = &self.phases {
            let _ = tx.send((planned.id.clone(), phase));
        }
    }
}

/// How a run tells the suite where it is (the suite turns it into
/// [`crate::report::events::RunEvent::RunPhase`]): the run's id and its new
/// phase.
pub type PhaseSender = tokio::sync::mpsc::UnboundedSender<(String, Phase)>;

/// A further path of a lane (path 1 or more).
struct ExtraPath {
    lane: Lane,
    nemesis: Option<Nemesis>,
    node: Option<Node>,
    session: Option<Session>,
}

/// Everything a run created, torn down in reverse order of creation.
#[derive(Default)]
struct Setup {
    lane: Option<Lane>,
    /// The LUN's delayable store, when a `slow_store` fault needs it.
    store: Option<SlowStore>,
    target: Option<Target>,
    node: Option<Node>,
    session: Option<Session>,
    nemesis: Option<Nemesis>,
    /// A lane of several paths: paths 1.. (their switches and subnets),
    /// each one's nemesis, node record and session, and the map over all
    /// the sessions' disks.
    paths: Vec<ExtraPath>,
    map: Option<MultipathMap>,
    /// The undo steps of faults in place now (begun, not yet ended), in
    /// the order they began: the wind-down carries them out, newest first.
    in_place: Vec<Step>,
}

impl Setup {
    async fn create(ctx: &RunContext, planned: &PlannedRun, setup: &mut Setup) -> Result<()> {
        let run = &planned.run;
        let lane = Lane::create(&ctx.run_id, planned.lane)
            .await
            .context("creating the lane")?;
        let lane = setup.lane.insert(lane);
        if let Some(mtu) = run.scenario.lane.mtu {
            lane.set_mtu(mtu)
                .await
                .with_context(|| format!("setting the lane's MTU to {mtu}"))?;
        }
        let spec = LunSpec {
            size_bytes: run.scenario.lane.lun_size_mib * 1024 * 1024,
            allow: InitiatorAllow::Address(lane.initiator_addr()),
        };
        if run.scenario.needs_slow_store() {
            setup.store = Some(SlowStore::create(lane, spec.size_bytes).await?);
        }
        let store = setup.store.as_ref().map(|s| s.device().to_path_buf());
        let target = Target::setup_on(run.target, lane, spec, store.as_deref()).await?;
        allow_digests(&target, &run.scenario.initiator).await?;
        let portal = target.portal().clone();
        setup.target = Some(target);
        let nemesis = Nemesis::new(lane, portal.addr)?;
        let nemesis = setup.nemesis.insert(nemesis);
        let mut rules = Vec::new();
        for step in &planned.steps {
            if let Action::Firewall { rule } = &step.action {
                if !rules.contains(rule) {
                    rules.push(*rule);
                }
            }
        }
        for rule in rules {
            nemesis
                .firewall()
                .warm_up(rule)
                .context("trying the firewall rule before the run")?;
        }
        let settings = run.scenario.initiator.iscsiadm_settings();
        let node = Node::create(lane.ledger(), &portal.iqn, portal.addr, &settings).await?;
        let node = setup.node.insert(node);
        // The scenario's login wait (bounded by the parser), and slack for
        // iscsiadm itself.
        let login_bound = Duration::from_secs(run.scenario.initiator.login_wait_s() + 15);
        setup.session = Some(node.login(login_bound).await.context("logging in")?);
        if run.scenario.lane.paths > 1 {
            Self::create_paths(ctx, planned, setup, login_bound).await?;
        }
        Ok(())
    }

    /// Paths 1.. of a multipath lane (each a switch, a subnet, a portal of
    /// the one target, a node record and a session), then the map.
    async fn create_paths(
        ctx: &RunContext,
        planned: &PlannedRun,
        setup: &mut Setup,
        login_bound: Duration,
    ) -> Result<()> {
        let run = &planned.run;
        let settings = run.scenario.initiator.iscsiadm_settings();
        for p in 1..run.scenario.lane.paths {
            let first = setup.lane.as_ref().context("no lane")?;
            let lane = Lane::create_path(first, p)
                .await
                .with_context(|| format!("creating path {p}"))?;
            setup.paths.push(ExtraPath {
                lane,
                nemesis: None,
                node: None,
                session: None,
            });
            let path = setup.paths.last_mut().context("no path")?;
            let target = setup.target.as_mut().context("no target")?;
            let addr = target
                .add_portal(&path.lane)
                .await
                .with_context(|| format!("the target's portal on path {p}"))?;
            path.nemesis = Some(Nemesis::new(&path.lane, addr)?);
            let iqn = target.portal().iqn.clone();
            let node = Node::create(path.lane.ledger(), &iqn, addr, &settings).await?;
            let node = path.node.insert(node);
            path.session = Some(
                node.login(login_bound)
                    .await
                    .with_context(|| format!("logging in on path {p}"))?,
            );
        }
        let mut disks = vec![setup.session.as_ref().context("no session")?.disk.clone()];
        for path in &setup.paths {
            disks.push(path.session.as_ref().context("no session")?.disk.clone());
        }
        let lane = setup.lane.as_ref().context("no lane")?;
        let mp = run.scenario.multipath.clone().unwrap_or_default();
        setup.map = Some(
            MultipathMap::create(lane.ledger(), &ctx.run_id, planned.lane, &mp, &disks)
                .await
                .context("the multipath map")?,
        );
        Ok(())
    }

    /// Removes everything, in reverse order, then walks the lane's ledger;
    /// reports the first failure but always tries every step.
    async fn teardown(&mut self, ledger: &Ledger) -> Result<()> {
        let mut first_error: Option<anyhow::Error> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                tracing::warn!("teardown: {e:#}");
                first_error.get_or_insert(e);
            }
        };
        if let Some(nemesis) = self.nemesis.as_mut() {
            note(nemesis.clear_all());
        }
        for path in &mut self.paths {
            if let Some(nemesis) = path.nemesis.as_mut() {
                note(nemesis.clear_all());
            }
            path.nemesis = None;
        }
        self.nemesis = None;
        // The map before its paths' sessions.
        if let Some(mut map) = self.map.take() {
            note(map.teardown().await);
        }
        for path in &mut self.paths {
            path.session = None;
            if let Some(node) = path.node.take() {
                note(node.logout().await);
                note(node.delete().await);
            }
        }
        self.session = None;
        if let Some(node) = self.node.take() {
            note(node.logout().await);
            note(node.delete().await);
        }
        if let Some(mut target) = self.target.take() {
            note(target.teardown().await);
        }
        // After the target let go of it, before the lane.
        if let Some(mut store) = self.store.take() {
            note(store.teardown().await);
        }
        // Further paths before the lane whose namespace they share.
        while let Some(mut path) = self.paths.pop() {
            note(path.lane.destroy().await);
        }
        if let Some(mut lane) = self.lane.take() {
            note(lane.destroy().await);
        }
        // The ledger's walk: whatever the steps above missed (or could not
        // reach after an error) is removed here, newest first.
        let sweep = ledger.sweep().await;
        for removed in &sweep.removed {
            tracing::warn!("teardown: {removed} was still there; removed through the ledger");
        }
        if !sweep.is_clean() {
            note(Err(anyhow::anyhow!(
                "left behind: {}",
                sweep.failed.join("; ")
            )));
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// tgt's targets refuse digests by default (HeaderDigest/DataDigest
/// "None"), so an initiator asking only for CRC32C could not log in: allow
/// CRC32C on the target when the scenario's initiator asks for it.
/// (The tgtadm call lives in `target::tgt`.)
async fn allow_digests(target: &Target, initiator: &Initiator) -> Result<()> {
    for (key, name) in [
        ("node.conn[0].iscsi.HeaderDigest", "HeaderDigest"),
        ("node.conn[0].iscsi.DataDigest", "DataDigest"),
    ] {
        let wants = initiator
            .extra
            .get(key)
            .is_some_and(|v| v.to_ascii_uppercase().contains("CRC32C"));
        if !wants {
            continue;
        }
        // LIO's default already lists CRC32C.
        if let Target::Tgt(t) = target {
            t.allow_crc32c(name)
                .await
                .with_context(|| format!("allowing {name} CRC32C on tgt"))?;
        }
    }
    Ok(())
}

/// Carries out one planned run on its lane and returns its report entry.
pub async fn run_one(ctx: &RunContext, planned: &PlannedRun) -> Entry {
    use futures::FutureExt;
    let run = &planned.run;
    let ledger = Ledger::of_run(&ctx.run_id).lane(planned.lane);
    let guarded = std::panic::AssertUnwindSafe(run_unguarded(ctx, planned, &ledger));
    match guarded.catch_unwind().await {
        Ok(entry) => entry,
        Err(panic) => {
            // The unwinding dropped the setup without its teardown: the
            // ledger knows everything it had made.
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let sweep = ledger.sweep().await;
            let mut reason = format!(
                "panic: {what}; torn down through the ledger ({} removed)",
                sweep.removed.len()
            );
            if !sweep.is_clean() {
                reason.push_str(&format!("; left behind: {}", sweep.failed.join("; ")));
            }
            Entry::unchecked(
                run,
                &planned.prediction,
                Verdict::Error,
                reason,
                Timings::default(),
            )
        }
    }
}

/// Resolves once the run is cancelled (never, if it is not).
async fn cancelled(mut cancel: watch::Receiver<bool>) {
    let _ = cancel.wait_for(|c| *c).await;
    if !*cancel.borrow() {
        std::future::pending::<()>().await;
    }
}

/// Test hook: panic right after setup, to prove a panic tears down.
pub const PANIC_AFTER_SETUP_ENV: &str = "ISCSI_CHAOS_TEST_PANIC_AFTER_SETUP";

async fn run_unguarded(ctx: &RunContext, planned: &PlannedRun, ledger: &Ledger) -> Entry {
    let run = &planned.run;
    let prediction = &planned.prediction;
    // What this run's target and faults need of the host (doctor.rs).
    if let Some(reason) = crate::runner::doctor::skip_reason(run) {
        return Entry::unchecked(
            run,
            prediction,
            Verdict::Skipped,
            reason,
            Timings::default(),
        );
    }
    let started = Instant::now();
    ctx.phase(planned, Phase::Setup);
    let mut timings = Timings::default();
    let mut setup = Setup::default();
    // Setup races cancellation: a Ctrl-C during a long login ends it (what
    // was made so far is in `setup` and in the ledger, for the teardown).
    let created = tokio::select! {
        r = Setup::create(ctx, planned, &mut setup) => r,
        () = cancelled(ctx.cancel.clone()) => Err(anyhow::anyhow!("interrupted during setup")),
    };
    let outcome = match created {
        Ok(()) => {
            if std::env::var_os(PANIC_AFTER_SETUP_ENV).is_some() {
                panic!("{PANIC_AFTER_SETUP_ENV} is set");
            }
            timings.setup_s = Some(started.elapsed().as_secs_f64());
            ctx.phase(planned, Phase::Fault);
            let timeline_started = Instant::now();
            let outcome = execute(ctx, planned, &mut setup).await;
            timings.timeline_s = Some(timeline_started.elapsed().as_secs_f64());
            outcome
        }
        Err(e) => Err(e),
    };
    let teardown_started = Instant::now();
    ctx.phase(planned, Phase::Teardown);
    let teardown = setup.teardown(ledger).await;
    timings.teardown_s = Some(teardown_started.elapsed().as_secs_f64());

    let entry = match outcome {
        Ok(history) => {
            let file = planned.history_file();
            if let Err(e) = ctx.out.write(&file, history.to_json_lines().as_bytes()) {
                tracing::warn!("writing {}: {e}", ctx.out.path().join(&file).display());
            }
            let check = check::check(&history, &run.scenario, prediction);
            let origin = history.first_fault_begin().unwrap_or(0.0);
            Entry::checked(run, prediction, &check, origin, timings)
        }
        Err(e) if e.downcast_ref::<Unsupported>().is_some() => {
            Entry::unchecked(run, prediction, Verdict::Skipped, format!("{e}"), timings)
        }
        Err(e) => Entry::unchecked(run, prediction, Verdict::Error, format!("{e:#}"), timings),
    };
    match teardown {
        Ok(()) => entry,
        Err(e) => with_reason(entry, format!("teardown failed: {e:#}")),
    }
}

fn with_reason(mut entry: Entry, reason: String) -> Entry {
    entry.verdict = Verdict::Error;
    entry.reasons.push(reason);
    entry
}

/// The I/O phase: probe, observers, fault timeline, verification.
async fn execute(ctx: &RunContext, planned: &PlannedRun, setup: &mut Setup) -> Result<History> {
    let run = &planned.run;
    let session = setup.session.clone().context("no session")?;
    let probe = run
        .scenario
        .probes
        .first()
        .context("the scenario has no probe")?;
    let mut history = History::default();
    settings_now(&mut history, setup, "after_login");
    let mut names = vec![session.kernel_names(setup.node.as_ref().context("no node record")?)];
    for path in &setup.paths {
        if let (Some(s), Some(n)) = (&path.session, &path.node) {
            names.push(s.kernel_names(n));
        }
    }
    let kernel = Monitor::kernel_log(names);
    let state = Monitor::session_state(session.sysfs.clone());
    let paths = match &setup.map {
        Some(map) => {
            history.push(
                monotonic_now(),
                Event::Note {
                    text: format!(
                        "multipath map {} (WWID {}) over {} paths; multipathd's config:\n{}",
                        map.name,
                        map.wwid,
                        setup.paths.len() + 1,
                        map.shown_config().await
                    ),
                },
            );
            Some(Monitor::paths(path_devices(setup), map.name.clone()))
        }
        None => None,
    };
    let device = match &setup.map {
        Some(map) => ProbeDevice::Map(map.device.clone()),
        None => ProbeDevice::Session(&session),
    };
    let mut child = spawn_probe(ctx, run, device, probe.interval_ms).await?;
    let ledger = setup.lane.as_ref().context("no lane")?.ledger();
    if let Err(e) = ledger.record_process("blkprobe", child.id(), Vec::new()) {
        let _ = child.kill().await;
        return Err(e);
    }
    let stdout = child.stdout.take().context("probe stdout")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(f64, ProbeEvent)>();
    let mut reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(ev) = serde_json::from_str::<ProbeEvent>(&line) {
                let _ = tx.send((ev.t(), ev));
            }
        }
    });

    let result = timeline(ctx, planned, setup, &mut child, &mut rx, &mut history).await;
    let ending = match &result {
        Ok(()) => Ending::ByItself,
        Err(_) => wind_down(setup, &mut child, &mut history).await,
    };
    // Never wait unbounded: a probe still blocked in the kernel keeps its
    // stdout open, but everything it wrote is in the pipe and read by now.
    if tokio::time::timeout(DRAIN_GRACE, &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
    while let Ok((t, ev)) = rx.try_recv() {
        history.push(t, probe_event(&probe.name, ev));
    }
    let path_events = paths.map(Monitor::finish).unwrap_or_default();
    for (t, ev) in kernel
        .finish()
        .into_iter()
        .chain(state.finish())
        .chain(path_events)
    {
        history.push(t, ev);
    }
    settings_now(&mut history, setup, "at_end");
    history.sort();
    let result = result.map_err(|e| match e.downcast_ref::<ProbeHung>() {
        Some(hung) => anyhow::anyhow!(hung_report(hung, &ending, &history, &probe.name)),
        None => e,
    });
    // Keep the history of a failed run too: it explains the failure.
    let _ = ctx
        .out
        .write(&planned.history_file(), history.to_json_lines().as_bytes());
    result.map(|()| history)
}

/// Records the timers the kernel uses for the run's session(s) now: path
/// 0's as they are, a further path's keys prefixed `path<N>.`.
fn settings_now(history: &mut History, setup: &Setup, when: &str) {
    let mut values = setup
        .session
        .as_ref()
        .map(Session::effective_settings)
        .unwrap_or_default();
    for (k, path) in setup.paths.iter().enumerate() {
        if let Some(session) = &path.session {
            for (key, v) in session.effective_settings() {
                values.insert(format!("path{}.{key}", k + 1), v);
            }
        }
    }
    history.push(
        monotonic_now(),
        Event::Settings {
            when: when.to_string(),
            values,
        },
    );
}

/// Each path's (number, session sysfs folder, disk `major:minor`), for the
/// path monitor.
fn path_devices(setup: &Setup) -> Vec<(u8, PathBuf, String)> {
    let sessions = setup
        .session
        .iter()
        .chain(setup.paths.iter().filter_map(|p| p.session.as_ref()));
    sessions
        .enumerate()
        .map(|(k, s)| {
            let dev = s
                .disk
                .file_name()
                .and_then(|d| {
                    std::fs::read_to_string(Path::new("/sys/block").join(d).join("dev")).ok()
                })
                .map(|t| t.trim().to_string())
                .unwrap_or_default();
            (k as u8, s.sysfs.clone(), dev)
        })
        .collect()
}

/// What the probe does its I/O on: a session's disk (checked to be that
/// session's by the probe), or a multipath map (checked against the
/// sessions' disks when it was made).
enum ProbeDevice<'a> {
    Session(&'a Session),
    Map(PathBuf),
}

fn probe_event(name: &str, event: ProbeEvent) -> Event {
    Event::Probe {
        probe: name.to_string(),
        event,
    }
}

async fn spawn_probe(
    ctx: &RunContext,
    run: &Run,
    device: ProbeDevice<'_>,
    interval_ms: u64,
) -> Result<Child> {
    let mut cmd = tokio::process::Command::new(&ctx.probe_binary);
    // The probe's own binary, or the harness's, which is the probe under
    // this name.
    cmd.arg0(PROBE_NAME);
    cmd.env(crate::sys::cmd::MARKER_VAR, &ctx.run_id);
    match device {
        ProbeDevice::Session(session) => cmd
            .arg("--device")
            .arg(&session.disk)
            .args(["--expect-session", &session.name]),
        ProbeDevice::Map(map) => cmd.arg("--device").arg(map),
    };
    cmd.args(["--interval-ms", &interval_ms.to_string()])
        .args(["--duration-s", &run.scenario.duration_s.to_string()])
        .args([
            "--verify-deadline-s",
            &run.scenario.expect.verify_deadline_s().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // If the harness is killed, the probe must not go on writing.
    crate::sys::cmd::spawn_dying_with_harness(cmd)
        .await
        .with_context(|| format!("starting {}", ctx.probe_binary.display()))
}

/// Waits until CLOCK_MONOTONIC reaches `at`, or cancellation.
async fn sleep_until(at: f64, cancel: &mut watch::Receiver<bool>) -> Result<()> {
    let wait = (at - monotonic_now()).max(0.0);
    tokio::select! {
        _ = tokio::time::sleep(Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO)) => Ok(()),
        _ = cancel.wait_for(|c| *c) => bail!("interrupted"),
    }
}

async fn timeline(
    ctx: &RunContext,
    planned: &PlannedRun,
    setup: &mut Setup,
    child: &mut Child,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(f64, ProbeEvent)>,
    history: &mut History,
) -> Result<()> {
    let run = &planned.run;
    let probe_name = run.scenario.probes[0].name.clone();
    let mut cancel = ctx.cancel.clone();
    // t0: the probe's Start event (its I/O phase begins then).
    let t0 = loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some((t, ev)) => {
                    let is_start = matches!(ev, ProbeEvent::Start { .. });
                    history.push(t, probe_event(&probe_name, ev));
                    if is_start { break t; }
                }
                None => bail!("the probe ended before it started its I/O (see its stderr)"),
            },
            _ = tokio::time::sleep(Duration::from_secs(20)) => bail!("the probe did not start within 20 s"),
            _ = cancel.wait_for(|c| *c) => bail!("interrupted"),
        }
    };
    let steps = &planned.steps;
    for (k, step) in steps.iter().enumerate() {
        let at = t0 + step.at_s;
        sleep_until(at, &mut cancel).await?;
        match step.phase {
            // Written down before it is carried out: a step that fails
            // half-way is undone too.
            FaultPhase::Begin => {
                if let Some(undo) = steps[k..]
                    .iter()
                    .find(|s| s.fault == step.fault && s.phase == FaultPhase::End)
                {
                    setup.in_place.push(undo.clone());
                }
            }
            FaultPhase::End => setup.in_place.retain(|s| s.fault != step.fault),
        }
        apply(setup, step, history).await?;
        history.push(
            monotonic_now(),
            Event::Fault {
                step: step.fault,
                phase: step.phase,
                kind: step.kind.to_string(),
                scheduled: at,
            },
        );
    }
    // The probe ends by itself after its duration and verification.
    let deadline = t0 + run.scenario.duration_s + run.scenario.expect.deadline_s;
    let after = |at: f64| {
        tokio::time::sleep(
            Duration::try_from_secs_f64((at - monotonic_now()).max(0.0)).unwrap_or(Duration::ZERO),
        )
    };
    let io_end = t0 + run.scenario.duration_s;
    let (verify, hung) = (after(io_end), after(deadline));
    tokio::pin!(verify, hung);
    let mut verifying = false;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status?;
                if !status.success() {
                    bail!("the probe exited with {status}");
                }
                return Ok(());
            }
            // The I/O phase is over: the probe reads back what it wrote.
            _ = &mut verify, if !verifying => {
                verifying = true;
                ctx.phase(planned, Phase::Verify);
            }
            _ = &mut hung => {
                return Err(ProbeHung { t0, io_end, declared: monotonic_now() }.into());
            }
            _ = cancel.wait_for(|c| *c) => bail!("interrupted"),
        }
    }
}

/// The probe had not ended by its deadline.
#[derive(Debug)]
struct ProbeHung {
    /// The probe's Start (CLOCK_MONOTONIC).
    t0: f64,
    /// The end of its I/O phase.
    io_end: f64,
    /// When the harness gave up waiting.
    declared: f64,
}

impl std::fmt::Display for ProbeHung {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "probe hung: still running {:.0} s after its I/O phase ended",
            self.declared - self.io_end
        )
    }
}

impl std::error::Error for ProbeHung {}

/// How the probe ended after the timeline.
#[derive(Debug, Clone, PartialEq)]
enum Ending {
    /// It exited by itself (the timeline waited for it).
    ByItself,
    /// SIGKILL ended it.
    OnKill,
    /// SIGKILL did not (blocked in the kernel); logging the session out,
    /// which fails its queued I/O, did after this many seconds.
    AfterLogout { after_s: f64 },
    /// Still alive after SIGKILL and the logout (the logout's own problem, if any).
    Never { logout: Option<String> },
}

/// After a timeline error (past the deadline, interrupted, a failed step):
/// clear the faults → SIGKILL the probe → wait briefly → if it is still
/// alive it is blocked in the kernel: log the session out, which fails the
/// queued I/O → wait again. Every wait is bounded; what happened goes into
/// the history as notes.
async fn wind_down(setup: &mut Setup, child: &mut Child, history: &mut History) -> Ending {
    // Release I/O blocked by our own faults first: each fault still in
    // place is undone by its own end step (newest first).
    while let Some(undo) = setup.in_place.pop() {
        let result = apply(setup, &undo, history).await;
        let text = match result {
            Ok(()) => {
                history.push(
                    monotonic_now(),
                    Event::Fault {
                        step: undo.fault,
                        phase: FaultPhase::End,
                        kind: undo.kind.to_string(),
                        scheduled: monotonic_now(),
                    },
                );
                format!("wind-down: fault[{}] ({}) undone", undo.fault, undo.kind)
            }
            Err(e) => format!(
                "wind-down: undoing fault[{}] ({}) failed: {e:#}",
                undo.fault, undo.kind
            ),
        };
        tracing::info!("{text}");
        history.push(monotonic_now(), Event::Note { text });
    }
    let mut note = |text: String| {
        tracing::info!("{text}");
        history.push(monotonic_now(), Event::Note { text });
    };
    let _ = child.start_kill();
    if tokio::time::timeout(KILL_GRACE, child.wait()).await.is_ok() {
        return Ending::OnKill;
    }
    let pid = child.id().map_or("?".to_string(), |p| p.to_string());
    note(format!(
        "probe (pid {pid}) still alive {} s after SIGKILL: blocked in the kernel; logging the session out",
        KILL_GRACE.as_secs()
    ));
    let started = Instant::now();
    let logout = match setup.node.clone() {
        Some(node) => match tokio::time::timeout(LOGOUT_DEADLINE, node.logout()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(_) => Some(format!(
                "the logout took over {} s",
                LOGOUT_DEADLINE.as_secs()
            )),
        },
        None => Some("no node record to log out".to_string()),
    };
    if let Some(problem) = &logout {
        note(format!("logout: {problem}"));
    }
    if tokio::time::timeout(RELEASE_GRACE, child.wait())
        .await
        .is_ok()
    {
        let after_s = started.elapsed().as_secs_f64();
        note(format!(
            "probe ended {after_s:.1} s after the session's logout began"
        ));
        return Ending::AfterLogout { after_s };
    }
    note(format!(
        "probe (pid {pid}) still blocked {} s after the logout; giving up on it",
        RELEASE_GRACE.as_secs()
    ));
    Ending::Never { logout }
}

/// "probe hung" with the facts: how long, the operation it was blocked in,
/// what released it, how many records were kept.
fn hung_report(hung: &ProbeHung, ending: &Ending, history: &History, probe: &str) -> String {
    let rel = |t: f64| t - hung.t0;
    let mut records = 0;
    let mut last: Option<&ProbeEvent> = None;
    for entry in &history.entries {
        if let Event::Probe { probe: p, event } = &entry.event {
            if p != probe {
                continue;
            }
            records += 1;
            if entry.t <= hung.declared
                && matches!(event, ProbeEvent::Op { .. } | ProbeEvent::Stalled { .. })
            {
                last = Some(event);
            }
        }
    }
    let op_name = |op: &guest_probes::OpKind| match op {
        guest_probes::OpKind::Read => "read",
        guest_probes::OpKind::Write => "write",
    };
    let last_op = match last {
        Some(ProbeEvent::Stalled { since, op, seq, .. }) => format!(
            "last op: {} seq {seq} issued at +{:.1} s, blocked for {:.1} s",
            op_name(op),
            rel(*since),
            hung.declared - since
        ),
        Some(ProbeEvent::Op {
            t,
            op,
            seq,
            ok,
            errno,
            ..
        }) => format!(
            "last op: {} seq {seq} ended at +{:.1} s ({}), nothing since for {:.1} s",
            op_name(op),
            rel(*t),
            if *ok {
                "ok".to_string()
            } else {
                format!("errno {}", errno.unwrap_or(0))
            },
            hung.declared - t
        ),
        _ => "no operation recorded".to_string(),
    };
    let released = match ending {
        Ending::ByItself => "it then ended by itself".to_string(),
        Ending::OnKill => "SIGKILL ended it".to_string(),
        Ending::AfterLogout { after_s } => format!(
            "SIGKILL did not end it (blocked in the kernel); logging the session out released it after {after_s:.1} s"
        ),
        Ending::Never { logout } => format!(
            "neither SIGKILL nor logging the session out ended it{}",
            logout
                .as_deref()
                .map_or(String::new(), |p| format!(" (logout: {p})"))
        ),
    };
    format!("{hung}; {last_op}; {released}; {records} probe records kept")
}

/// A side's name in evidence: as it is on path 0, `side@path<N>` beyond.
fn on_path(side: &str, path: u8) -> String {
    match path {
        0 => side.to_string(),
        p => format!("{side}@path{p}"),
    }
}

impl Setup {
    /// The nemeses of path `path` (`None`: every path), with their path.
    fn nemeses(&mut self, path: Option<u8>) -> Vec<(u8, &mut Nemesis)> {
        let first = self.nemesis.as_mut().map(|n| (0u8, n));
        let more = self
            .paths
            .iter_mut()
            .enumerate()
            .filter_map(|(k, p)| p.nemesis.as_mut().map(|n| (k as u8 + 1, n)));
        first
            .into_iter()
            .chain(more)
            .filter(|(p, _)| path.is_none_or(|want| want == *p))
            .collect()
    }

    /// The lanes (switch and cable) of path `path` (`None`: every path).
    fn lanes(&self, path: Option<u8>) -> Vec<(u8, &Lane)> {
        let first = self.lane.as_ref().map(|l| (0u8, l));
        let more = self
            .paths
            .iter()
            .enumerate()
            .map(|(k, p)| (k as u8 + 1, &p.lane));
        first
            .into_iter()
            .chain(more)
            .filter(|(p, _)| path.is_none_or(|want| want == *p))
            .collect()
    }
}

/// Carries out one fault step: qdiscs through the nemesis, target actions
/// on the target. Records what proves the step happened: the qdisc's
/// counters before it is removed, the target's pids.
async fn apply(setup: &mut Setup, step: &nemesis::Step, history: &mut History) -> Result<()> {
    let fault = step.fault;
    let effect = |history: &mut History, effect: Effect| {
        history.push(
            monotonic_now(),
            Event::Effect {
                step: fault,
                effect,
            },
        );
    };
    match &step.action {
        Action::Shape { direction, qdisc } => {
            for (_, nemesis) in setup.nemeses(step.path) {
                nemesis.shape(*direction, qdisc)?;
            }
        }
        Action::Clear { direction } => {
            for (p, nemesis) in setup.nemeses(step.path) {
                for (side, st) in nemesis.shaped_stats(*direction) {
                    history.push(
                        monotonic_now(),
                        Event::Qdisc {
                            step: step.fault,
                            side: on_path(side, p),
                            kind: st.kind,
                            packets: st.packets,
                            bytes: st.bytes,
                            drops: u64::from(st.drops),
                        },
                    );
                }
                nemesis.clear(*direction)?;
            }
        }
        Action::Firewall { rule } => {
            let nemesis = setup.nemesis.as_mut().context("no nemesis")?;
            nemesis.firewall().install(*rule)?;
        }
        Action::ClearFirewall => {
            let nemesis = setup.nemesis.as_mut().context("no nemesis")?;
            let firewall = nemesis.firewall();
            let matched = firewall.matched();
            let rule = firewall.installed().map(|r| r.name());
            firewall.remove()?;
            history.push(
                monotonic_now(),
                Event::Firewall {
                    step: step.fault,
                    rule: rule.unwrap_or("none").to_string(),
                    packets: matched.context("reading the firewall rule's counter")?,
                },
            );
        }
        Action::StopTarget => {
            let target = setup.target.as_mut().context("no target")?;
            let pid = target.pid();
            target
                .stop_process(StopMode::Kill)
                .await
                .context("stopping the target")?;
            effect(history, Effect::TargetKilled { pid });
        }
        Action::StartTarget => {
            let target = setup.target.as_mut().context("no target")?;
            target
                .start_process()
                .await
                .context("starting the target again")?;
            let pid = target.pid();
            effect(history, Effect::TargetStarted { pid });
        }
        Action::SetPortal { present } => {
            let target = setup.target.as_mut().context("no target")?;
            let detail = target
                .set_portal(*present)
                .await
                .context("changing the target's portal")?;
            effect(
                history,
                Effect::Portal {
                    present: *present,
                    detail,
                },
            );
        }
        Action::SetAccess { allowed } => {
            let target = setup.target.as_mut().context("no target")?;
            let detail = target
                .set_initiator_access(*allowed)
                .await
                .context("changing the initiator's access")?;
            effect(
                history,
                Effect::Access {
                    allowed: *allowed,
                    detail,
                },
            );
        }
        Action::SetLink { end, up } => {
            for (p, lane) in setup.lanes(step.path) {
                let oper = lane
                    .set_end_up(*end, *up)
                    .await
                    .with_context(|| format!("setting the {} end of the link", end.as_str()))?;
                effect(
                    history,
                    Effect::Link {
                        end: on_path(end.as_str(), p),
                        up: *up,
                        oper,
                    },
                );
            }
        }
        Action::SetPortMtu { mtu } => {
            for (_, lane) in setup.lanes(step.path) {
                // Read first: at the end of the fault, the drops during it.
                let (a, b) = lane.port_rx_dropped().await?;
                let mtu = mtu.unwrap_or(lane.mtu());
                lane.set_port_mtu(mtu).await?;
                effect(
                    history,
                    Effect::PortMtu {
                        mtu,
                        rx_dropped: [a, b],
                    },
                );
            }
        }
        Action::SetPort { side, forwarding } => {
            for (p, lane) in setup.lanes(step.path) {
                let state = lane.set_port_forwarding(*side, *forwarding).await?;
                effect(
                    history,
                    Effect::Port {
                        port: on_path(side.as_str(), p),
                        forwarding: *forwarding,
                        state,
                    },
                );
            }
        }
        Action::SetStoreDelay { ms } => {
            let store = setup.store.as_mut().context("no slow store")?;
            store
                .set_delay(ms.round() as u64)
                .await
                .context("switching the store's delay")?;
            let table = store.table().await.unwrap_or_default();
            effect(
                history,
                Effect::StoreDelay {
                    name: store.name().to_string(),
                    ms: store.delay_ms(),
                    table,
                },
            );
        }
    }
    Ok(())
}

/// The probe's name, and the argv[0] the harness's binary acts as the
/// probe under.
pub const PROBE_NAME: &str = "blkprobe";

/// blkprobe built beside the running executable (a cargo build), else the
/// executable itself (an installed `iscsi-chaos`, which carries the probe).
pub fn probe_binary_beside(exe: &Path) -> PathBuf {
    match exe.parent().map(|dir| dir.join(PROBE_NAME)) {
        Some(probe) if probe.is_file() => probe,
        _ => exe.to_path_buf(),
    }
}

/// Prediction for a run that never started (for listing).
pub fn prediction_of(run: &Run) -> Prediction {
    oracle::predict_run(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_probes::OpKind;

    fn history_of(events: Vec<ProbeEvent>) -> History {
        let mut h = History::default();
        for ev in events {
            h.push(ev.t(), probe_event("blk", ev));
        }
        h
    }

    fn op(t: f64, seq: u64) -> ProbeEvent {
        ProbeEvent::Op {
            t,
            start: t - 0.001,
            op: OpKind::Write,
            seq,
            block: seq,
            ok: true,
            errno: None,
        }
    }

    const HUNG: ProbeHung = ProbeHung {
        t0: 100.0,
        io_end: 110.0,
        declared: 130.0,
    };

    #[test]
    fn a_hung_probe_is_reported_with_its_blocked_operation() {
        let h = history_of(vec![
            op(101.0, 1),
            op(102.0, 2),
            ProbeEvent::Stalled {
                t: 129.0,
                since: 102.5,
                op: OpKind::Write,
                seq: 3,
            },
        ]);
        let text = hung_report(&HUNG, &Ending::AfterLogout { after_s: 1.25 }, &h, "blk");
        assert_eq!(
            text,
            "probe hung: still running 20 s after its I/O phase ended; \
             last op: write seq 3 issued at +2.5 s, blocked for 27.5 s; \
             SIGKILL did not end it (blocked in the kernel); logging the session out released it after 1.2 s; \
             3 probe records kept"
        );
    }

    #[test]
    fn a_silent_probe_and_one_never_released() {
        let mut h = history_of(vec![op(101.0, 1)]);
        // Records after the deadline are counted but are not "the last op".
        h.push(131.0, probe_event("blk", op(131.0, 2)));
        let text = hung_report(
            &HUNG,
            &Ending::Never {
                logout: Some("the logout took over 30 s".into()),
            },
            &h,
            "blk",
        );
        assert!(
            text.contains("last op: write seq 1 ended at +1.0 s (ok), nothing since for 29.0 s"),
            "{text}"
        );
        assert!(
            text.contains("(logout: the logout took over 30 s)"),
            "{text}"
        );
        assert!(text.ends_with("2 probe records kept"), "{text}");
        let text = hung_report(&HUNG, &Ending::OnKill, &History::default(), "blk");
        assert!(
            text.contains("no operation recorded; SIGKILL ended it"),
            "{text}"
        );
    }
}
