//! The orchestrator: one scenario run end to end.
//!
//! setup (the rig: lanes, target, node records, logins, the nemesis's
//! switches) -> probe + observers -> fault timeline (the runner schedules
//! each step, the nemesis carries it out and returns its evidence) -> probe
//! verifies and ends -> teardown (always, in reverse) -> checker -> report
//! entry.
//!
//! Invariants: every object a run creates is torn down by [`Rig::teardown`]
//! whatever happened before it (error, hung probe, Ctrl-C); the fault
//! timeline's clock is the probe's own CLOCK_MONOTONIC, so fault steps, probe
//! operations and kernel lines share one timeline.

pub mod budget;
pub mod cleanup;
pub mod doctor;
pub mod fence;
pub mod host;
pub mod lanes;
pub mod probe;
pub mod rig;
pub mod suite;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use guest_probes::{monotonic_now, ProbeEvent};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::watch;

use crate::check::{self, Verdict};
use crate::env::monitor::Monitor;
use crate::env::target::Unsupported;
use crate::history::{Event, FaultPhase, History};
use crate::model::{FenceTrigger, Run};
use crate::oracle::{self, Prediction};
use crate::plan::PlannedRun;
use crate::report::events::Phase;
use crate::report::{Entry, EntryExt, Timings};
use lanes::LaneTicket;
use probe::{hung_report, probe_event, spawn_probe, Ending, ProbeHung};
pub use probe::{probe_binary_beside, PROBE_NAME};
use rig::Rig;

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

/// Carries out one planned run on the lane `lane` numbers and returns its
/// report entry. The number goes back to its pool when the run is over,
/// unless its teardown left something behind.
pub async fn run_one(ctx: &RunContext, planned: &PlannedRun, mut lane: LaneTicket) -> Entry {
    use futures::FutureExt;
    let run = &planned.run;
    let ledger = crate::ledger::Ledger::of_run(&ctx.run_id).lane(lane.number());
    let guarded = std::panic::AssertUnwindSafe(run_unguarded(ctx, planned, lane.number()));
    let (entry, clean) = match guarded.catch_unwind().await {
        Ok(done) => done,
        Err(panic) => {
            // The unwinding dropped the rig without its teardown: the
            // ledger knows everything it had made.
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let removal = ledger.unwind().await;
            let mut reason = format!(
                "panic: {what}; torn down through the ledger ({} removed)",
                removal.removed.len()
            );
            if !removal.is_clean() {
                reason.push_str(&format!("; left behind: {}", removal.failed.join("; ")));
            }
            let entry = Entry::unchecked(
                run,
                &planned.prediction,
                Verdict::Error,
                reason,
                Timings::default(),
            );
            (entry, removal.is_clean())
        }
    };
    if !clean {
        lane.keep_out();
    }
    entry
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

/// The run, and whether its teardown left nothing behind.
async fn run_unguarded(ctx: &RunContext, planned: &PlannedRun, lane: u8) -> (Entry, bool) {
    let run = &planned.run;
    let prediction = &planned.prediction;
    // What this run's target and faults need of the host (doctor.rs).
    if let Some(reason) = crate::runner::doctor::skip_reason(run) {
        let entry = Entry::unchecked(
            run,
            prediction,
            Verdict::Skipped,
            reason,
            Timings::default(),
        );
        return (entry, true);
    }
    let started = Instant::now();
    ctx.phase(planned, Phase::Setup);
    let mut timings = Timings::default();
    let mut rig = Rig::new(&ctx.run_id, lane);
    // Setup races cancellation: a Ctrl-C during a long login ends it (what
    // was made so far is in the rig and in the ledger, for the teardown).
    let created = tokio::select! {
        r = rig.create(planned) => r,
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
            let outcome = execute(ctx, planned, &mut rig).await;
            timings.timeline_s = Some(timeline_started.elapsed().as_secs_f64());
            outcome
        }
        Err(e) => Err(e),
    };
    let teardown_started = Instant::now();
    ctx.phase(planned, Phase::Teardown);
    let teardown = rig.teardown().await;
    timings.teardown_s = Some(teardown_started.elapsed().as_secs_f64());

    let entry = match outcome {
        Ok(mut history) => {
            if let Some(captured) = rig.captured.take() {
                keep_capture(ctx, planned, captured, &mut history);
            }
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
        Ok(()) => (entry, true),
        Err(e) => (with_reason(entry, format!("teardown failed: {e:#}")), false),
    }
}

/// The capture's events into the history, its file beside it.
fn keep_capture(
    ctx: &RunContext,
    planned: &PlannedRun,
    captured: crate::env::capture::Captured,
    history: &mut History,
) {
    if !captured.pcapng.is_empty() {
        ctx.out
            .write_or_say(&planned.capture_file(), &captured.pcapng);
    }
    for (t, event) in captured.events {
        history.push(t, event);
    }
    history.sort();
}

fn with_reason(mut entry: Entry, reason: String) -> Entry {
    entry.verdict = Verdict::Error;
    entry.reasons.push(reason);
    entry
}

/// One probe started on its host's device: its process, and the folder
/// its filesystem is mounted on (fs probes).
struct Started {
    name: String,
    child: Child,
    mount: Option<crate::ledger::WorkFolder>,
}

/// The I/O phase: the probes (one per host that has one), observers,
/// fault timeline, verification.
async fn execute(ctx: &RunContext, planned: &PlannedRun, rig: &mut Rig) -> Result<History> {
    let run = &planned.run;
    let host = rig.hosts.first().context("no host")?;
    let session = host
        .paths
        .first()
        .and_then(|p| p.session.clone())
        .context("no session")?;
    if run.scenario.probes.is_empty() {
        bail!("the scenario has no probe");
    }
    let mut history = History::default();
    rig.settings_now(&mut history, "after_login");
    if let Some(f) = &run.scenario.fencing {
        fence::setup(rig, f, &mut history).await?;
    }
    let kernel = Monitor::kernel_log(rig.kernel_names());
    let state = Monitor::session_state(session.sysfs.clone());
    let host = &rig.hosts[0];
    let paths = match &host.map {
        Some(map) => {
            history.push(
                monotonic_now(),
                Event::Note {
                    text: format!(
                        "multipath map {} (WWID {}) over {} paths; multipathd's config:\n{}",
                        map.name,
                        map.wwid,
                        host.paths.len(),
                        map.shown_config().await
                    ),
                },
            );
            Some(Monitor::paths(host.path_devices(), map.name.clone()))
        }
        None => None,
    };
    // Every probe's events on one channel, tagged with its index.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, f64, ProbeEvent)>();
    // A line that is not an event (nor UTF-8) becomes a note, not nothing.
    let (note_tx, mut notes) = tokio::sync::mpsc::unbounded_channel::<(f64, String)>();
    let mut probes: Vec<Started> = Vec::new();
    let mut readers = Vec::new();
    for (k, probe) in run.scenario.probes.iter().enumerate() {
        let started = start_probe(ctx, planned, rig, probe).await;
        let mut started = match started {
            Ok(s) => s,
            Err(e) => {
                for mut p in probes {
                    let _ = p.child.kill().await;
                }
                return Err(e);
            }
        };
        let stdout = started.child.stdout.take().context("probe stdout")?;
        let (tx, note_tx) = (tx.clone(), note_tx.clone());
        readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).split(b'\n');
            let mut unparsed = probe::Unparsed::default();
            while let Ok(Some(line)) = lines.next_segment().await {
                match serde_json::from_slice::<ProbeEvent>(&line) {
                    Ok(ev) => drop(tx.send((k, ev.t(), ev))),
                    Err(_) => {
                        unparsed.note(&line, |text| drop(note_tx.send((monotonic_now(), text))))
                    }
                }
            }
            unparsed.finish(|text| drop(note_tx.send((monotonic_now(), text))));
        }));
        probes.push(started);
    }
    drop((tx, note_tx));
    let names: Vec<String> = probes.iter().map(|p| p.name.clone()).collect();

    let result = {
        let mut children: Vec<&mut Child> = probes.iter_mut().map(|p| &mut p.child).collect();
        timeline(
            ctx,
            planned,
            rig,
            &mut children,
            &mut rx,
            &names,
            &mut history,
        )
        .await
    };
    let ending = match &result {
        Ok(()) => Ending::ByItself,
        Err(_) => {
            let mut children: Vec<&mut Child> = probes.iter_mut().map(|p| &mut p.child).collect();
            wind_down(rig, &mut children, &mut history).await
        }
    };
    // Never wait unbounded: a probe still blocked in the kernel keeps its
    // stdout open, but everything it wrote is in the pipe and read by now.
    for mut reader in readers {
        if tokio::time::timeout(DRAIN_GRACE, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
    }
    while let Ok((k, t, ev)) = rx.try_recv() {
        history.push(t, probe_event(&names[k], ev));
    }
    while let Ok((t, text)) = notes.try_recv() {
        history.push(t, Event::Note { text });
    }
    // A probe that did not unmount its filesystem (killed, or blocked):
    // detached now, so the disk can go.
    for dir in probes
        .iter()
        .filter_map(|p| p.mount.as_ref().map(|m| m.path()))
    {
        if crate::sys::mount::is_mounted(dir) {
            let text = match crate::sys::mount::detach(dir) {
                Ok(()) => format!("the probe left {} mounted: detached", dir.display()),
                Err(e) => format!("the probe left {} mounted: {e:#}", dir.display()),
            };
            history.push(monotonic_now(), Event::Note { text });
        }
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
    rig.settings_now(&mut history, "at_end");
    if let Some(f) = &run.scenario.fencing {
        fence::read(rig, f.survivor, &mut history).await;
    }
    history.sort();
    let result = result.map_err(|e| match e.downcast_ref::<ProbeHung>() {
        Some(hung) => anyhow::anyhow!(hung_report(hung, &ending, &history, &names[0])),
        None => e,
    });
    // Keep the history of a failed run too: it explains the failure.
    let _ = ctx
        .out
        .write(&planned.history_file(), history.to_json_lines().as_bytes());
    result.map(|()| history)
}

/// Starts `probe` on its host's device (an fs probe with a folder of ours
/// to mount on), written in the ledger.
async fn start_probe(
    ctx: &RunContext,
    planned: &PlannedRun,
    rig: &Rig,
    probe: &crate::model::Probe,
) -> Result<Started> {
    let host = rig
        .hosts
        .get(usize::from(probe.host))
        .with_context(|| format!("no host {} for probe {}", probe.host, probe.name))?;
    let device = host.probe_device()?;
    // An fs probe, or a command probe with a filesystem, mounts one on a
    // folder of ours.
    let mount = match probe.fs {
        Some(_) => Some(rig.mount_point()?),
        None => None,
    };
    let mut child = spawn_probe(
        ctx,
        &planned.run,
        device,
        probe,
        mount.as_ref().map(|m| m.path()),
    )
    .await?;
    if let Err(e) = rig
        .ledger()
        .record_process(PROBE_NAME, child.id(), Vec::new())
    {
        let _ = child.kill().await;
        return Err(e);
    }
    Ok(Started {
        name: probe.name.clone(),
        child,
        mount,
    })
}

/// The timeline's waits between its steps: while a fence waits for the
/// victim's stall, the probes' events are read as they come (into the
/// history; the rest are read after the run) and the first report of the
/// victim's I/O stuck long enough fences it.
struct Waits<'a> {
    rx: &'a mut tokio::sync::mpsc::UnboundedReceiver<(usize, f64, ProbeEvent)>,
    names: &'a [String],
    watch: Option<fence::StallWatch>,
    cancel: watch::Receiver<bool>,
}

impl Waits<'_> {
    /// Until CLOCK_MONOTONIC reaches `at`, or cancellation.
    async fn until(&mut self, at: f64, rig: &Rig, history: &mut History) -> Result<()> {
        while let Some(w) = self.watch {
            let wait = (at - monotonic_now()).max(0.0);
            let got = tokio::select! {
                _ = tokio::time::sleep(Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO)) => return Ok(()),
                got = self.rx.recv() => got,
                _ = self.cancel.wait_for(|c| *c) => None,
            };
            if *self.cancel.borrow() {
                bail!("interrupted");
            }
            let Some((k, t, ev)) = got else {
                // Every probe has ended: nothing more to watch.
                self.watch = None;
                break;
            };
            let stuck = k == w.probe && w.stuck(&ev);
            history.push(t, probe_event(&self.names[k], ev));
            if stuck {
                self.watch = None;
                fence::fence(rig, &w.fencing, history).await;
            }
        }
        sleep_until(at, &mut self.cancel).await
    }
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
    rig: &mut Rig,
    children: &mut [&mut Child],
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, f64, ProbeEvent)>,
    names: &[String],
    history: &mut History,
) -> Result<()> {
    let run = &planned.run;
    let mut cancel = ctx.cancel.clone();
    // t0: the first probe's Start event (its I/O phase begins then; a
    // probe that starts later counts its own delay from its Start).
    let t0 = loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some((k, t, ev)) => {
                    let is_start = k == 0 && matches!(ev, ProbeEvent::Start { .. });
                    history.push(t, probe_event(&names[k], ev));
                    if is_start { break t; }
                }
                None => bail!("the probe ended before it started its I/O (see its stderr)"),
            },
            _ = tokio::time::sleep(Duration::from_secs(20)) => bail!("the probe did not start within 20 s"),
            _ = cancel.wait_for(|c| *c) => bail!("interrupted"),
        }
    };
    let steps = &planned.steps;
    // The fence, if any: between the steps at its time, or when the
    // victim's probe reports its I/O stuck long enough.
    let mut fence_at = None;
    let mut watch = None;
    if let Some(f) = run.scenario.fencing {
        match f.trigger {
            FenceTrigger::At(at_s) => fence_at = Some((t0 + at_s, f)),
            FenceTrigger::VictimStalled(after_s) => {
                let probe = run.scenario.probes.iter().position(|p| p.host == f.victim);
                watch = probe.map(|probe| fence::StallWatch {
                    fencing: f,
                    probe,
                    after_s,
                });
            }
        }
    }
    let mut waits = Waits {
        rx,
        names,
        watch,
        cancel: ctx.cancel.clone(),
    };
    for (k, step) in steps.iter().enumerate() {
        let at = t0 + step.at_s;
        if let Some((when, f)) = fence_at.filter(|(when, _)| *when <= at) {
            waits.until(when, rig, history).await?;
            fence::fence(rig, &f, history).await;
            fence_at = None;
        }
        waits.until(at, rig, history).await?;
        match step.phase {
            // Written down before it is carried out: a step that fails
            // half-way is undone too.
            FaultPhase::Begin => {
                if let Some(undo) = steps[k..]
                    .iter()
                    .find(|s| s.fault == step.fault && s.phase == FaultPhase::End)
                {
                    rig.in_place.push(undo.clone());
                }
            }
            FaultPhase::End => rig.in_place.retain(|s| s.fault != step.fault),
        }
        rig.apply(step, history).await?;
        history.push(
            monotonic_now(),
            Event::Fault {
                step: step.fault,
                phase: step.phase,
                kind: step.kind.to_string(),
                scheduled: at,
                path: step.path,
            },
        );
    }
    if let Some((when, f)) = fence_at {
        waits.until(when, rig, history).await?;
        fence::fence(rig, &f, history).await;
    }
    // A fence on a stall is watched for until the I/O phase ends.
    if waits.watch.is_some() {
        waits
            .until(t0 + run.scenario.duration_s, rig, history)
            .await?;
    }
    // The probe ends by itself after its duration and verification.
    let deadline = t0 + run.scenario.probe_hung_after_s();
    let after = |at: f64| {
        tokio::time::sleep(
            Duration::try_from_secs_f64((at - monotonic_now()).max(0.0)).unwrap_or(Duration::ZERO),
        )
    };
    let io_end = t0 + run.scenario.duration_s;
    let (verify, hung) = (after(io_end), after(deadline));
    // Every probe ends by itself; the first that fails is the error.
    let all_ended = async {
        for (k, child) in children.iter_mut().enumerate() {
            let status = child.wait().await?;
            if !status.success() {
                bail!("probe {} exited with {status}", names[k]);
            }
        }
        Ok(())
    };
    tokio::pin!(verify, hung, all_ended);
    let mut verifying = false;
    loop {
        tokio::select! {
            ended = &mut all_ended => return ended,
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

/// After a timeline error (past the deadline, interrupted, a failed step):
/// clear the faults → SIGKILL the probe → wait briefly → if it is still
/// alive it is blocked in the kernel: log the session out, which fails the
/// queued I/O → wait again. Every wait is bounded; what happened goes into
/// the history as notes.
async fn wind_down(rig: &mut Rig, children: &mut [&mut Child], history: &mut History) -> Ending {
    // Release I/O blocked by our own faults first: each fault still in
    // place is undone by its own end step (newest first).
    while let Some(undo) = rig.in_place.pop() {
        let result = rig.apply(&undo, history).await;
        let text = match result {
            Ok(()) => {
                history.push(
                    monotonic_now(),
                    Event::Fault {
                        step: undo.fault,
                        phase: FaultPhase::End,
                        kind: undo.kind.to_string(),
                        scheduled: monotonic_now(),
                        path: undo.path,
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
    for child in children.iter_mut() {
        let _ = child.start_kill();
    }
    if tokio::time::timeout(KILL_GRACE, wait_all(children))
        .await
        .is_ok()
    {
        return Ending::OnKill;
    }
    let pid = children
        .iter()
        .filter_map(|c| c.id())
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    note(format!(
        "probe (pid {pid}) still alive {} s after SIGKILL: blocked in the kernel; logging the sessions out",
        KILL_GRACE.as_secs()
    ));
    let started = Instant::now();
    let mut problems = Vec::new();
    for host in &rig.hosts {
        if let Some(problem) = host.logout_all(LOGOUT_DEADLINE).await {
            problems.push(problem);
        }
    }
    let logout =
        (!problems.is_empty() || rig.hosts.is_empty()).then(|| match problems.is_empty() {
            true => "no node record to log out".to_string(),
            false => problems.join("; "),
        });
    if let Some(problem) = &logout {
        note(format!("logout: {problem}"));
    }
    if tokio::time::timeout(RELEASE_GRACE, wait_all(children))
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

/// Waits for every child to end.
async fn wait_all(children: &mut [&mut Child]) {
    for child in children.iter_mut() {
        let _ = child.wait().await;
    }
}

/// Prediction for a run that never started (for listing).
pub fn prediction_of(run: &Run) -> Prediction {
    oracle::predict_run(run)
}
