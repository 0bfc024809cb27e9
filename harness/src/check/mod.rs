//! The checker: measures a run's history and compares it with the scenario's
//! expectations and the oracle's prediction.
//!
//! Times are measured on the history's one clock. An outage starts when its
//! fault step was in place (the `Fault`/`Begin` entry's `t`, not its
//! scheduled instant) and ends when it was cleared (`End`).

pub mod cluster;
pub mod forensics;
pub mod fs;
pub mod settings;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};

use guest_probes::ProbeEvent;
use serde::Serialize;

use crate::history::{Effect, Event, FaultPhase, History};
use crate::model::{FirstErrorExpect, Scenario};
use crate::oracle::Prediction;
use crate::wire::nft::Rule;

/// An operation slower than this is part of a stall.
pub const STALL_THRESHOLD_S: f64 = 0.1;

pub use iscsi_chaos_formats::report::Verdict;

/// A stall: from the earliest issue to the latest completion of
/// overlapping slow operations (absolute clock seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stall {
    pub start: f64,
    pub end: f64,
}

impl Stall {
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// What the history shows.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Measured {
    /// From the first fault's start to the first failed operation's
    /// completion: counted from the begin of the fault the oracle names as
    /// its cause, less that fault's scheduled offset from the first, so a
    /// step the harness applied late does not move it.
    pub first_error_s: Option<f64>,
    pub errors: u64,
    /// Distinct errnos of failed operations.
    pub errnos: BTreeSet<i32>,
    /// Failed operations completed before the first outage started.
    pub errors_before_fault: u64,
    pub stalls: Vec<Stall>,
    pub max_stall_s: f64,
    /// From the last outage's end to the first successful completion after it.
    pub recovered_s: Option<f64>,
    /// From the first outage's start to the session leaving LOGGED_IN.
    pub detection_s: Option<f64>,
    pub acked_writes: u64,
    pub lost_writes: u64,
    pub corrupt_writes: u64,
    pub unverified_writes: u64,
    pub ops: u64,
    /// Largest delay from a fault step's scheduled instant to its being in place.
    pub fault_apply_latency_max_s: Option<f64>,
    /// Packets and drops counted by the fault qdiscs, summed over steps and
    /// sides (`None`: no counters recorded).
    pub qdisc_packets: Option<u64>,
    pub qdisc_drops: Option<u64>,
    /// TCP resets sent by reset faults (their rule's counter).
    pub resets_sent: Option<u64>,
    /// The timers the kernel used, from sysfs after login ([`settings`]).
    pub effective: BTreeMap<String, String>,
    /// Where they differ from what was asked, or changed during the run.
    pub settings_warnings: Vec<String>,
    /// Frames dropped for being larger than the MTU (MTU faults).
    pub oversize_drops: Option<u64>,
    /// The switch's capture per fault window ([`wire`]).
    pub wire: Vec<iscsi_chaos_formats::report::WireWindow>,
    /// Every lost or corrupt write, classified ([`forensics`]).
    pub bad_blocks: Vec<iscsi_chaos_formats::report::BadBlockJson>,
    /// An fs probe's filesystem ([`fs`]).
    pub fs: Option<iscsi_chaos_formats::report::FsJson>,
    /// Several hosts: who wrote what after the takeover ([`cluster`]).
    pub split_brain: Option<iscsi_chaos_formats::report::SplitBrainJson>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub verdict: Verdict,
    /// Why: for a pass, what was checked; otherwise what failed.
    pub reasons: Vec<String>,
    pub measured: Measured,
}

/// Merges slow operations into stalls. `ops`: (issued, completed).
fn stalls(mut ops: Vec<(f64, f64)>) -> Vec<Stall> {
    ops.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<Stall> = Vec::new();
    for (s, e) in ops {
        match out.last_mut() {
            Some(last) if s <= last.end => last.end = last.end.max(e),
            _ => out.push(Stall { start: s, end: e }),
        }
    }
    out
}

/// When the initiator noticed an outage that began at `begin`: the first
/// session state other than LOGGED_IN from then on, as seconds after it.
fn detection(history: &History, begin: f64) -> Option<f64> {
    history.entries.iter().find_map(|e| match &e.event {
        Event::Session { state } if e.t >= begin && state != "LOGGED_IN" => Some(e.t - begin),
        _ => None,
    })
}

/// Measures a history. `Err` carries why the history cannot be judged.
/// `cause`: the fault the first error is expected to follow from
/// ([`Prediction::first_error_fault`]).
pub fn measure(
    history: &History,
    scenario: &Scenario,
    cause: Option<usize>,
) -> Result<Measured, Vec<String>> {
    let mut problems = Vec::new();
    let mut m = Measured::default();
    let mut begins: Vec<(usize, f64)> = Vec::new();
    let mut ends: Vec<(usize, f64)> = Vec::new();
    let mut port_drops: Vec<(usize, u64, u64)> = Vec::new();
    for e in &history.entries {
        if let Event::Qdisc { packets, drops, .. } = &e.event {
            *m.qdisc_packets.get_or_insert(0) += packets;
            *m.qdisc_drops.get_or_insert(0) += drops;
        }
        match &e.event {
            Event::Firewall { rule, packets, .. } if rule == Rule::Reset.name() => {
                *m.resets_sent.get_or_insert(0) += packets
            }
            // The switch's ports' counters, read when the MTU fault began
            // and ended: the frames it dropped are the difference.
            Event::Effect {
                step,
                effect: Effect::PortMtu { rx_dropped, .. },
            } => {
                let n: u64 = rx_dropped.iter().sum();
                match port_drops.iter_mut().find(|(s, _, _)| s == step) {
                    Some((_, _, last)) => *last = n,
                    None => port_drops.push((*step, n, n)),
                }
            }
            _ => {}
        }
        if let Event::Fault {
            step,
            phase,
            scheduled,
            ..
        } = &e.event
        {
            match phase {
                FaultPhase::Begin => begins.push((*step, e.t)),
                FaultPhase::End => ends.push((*step, e.t)),
            }
            let lat = e.t - scheduled;
            m.fault_apply_latency_max_s =
                Some(m.fault_apply_latency_max_s.map_or(lat, |x| x.max(lat)));
        }
    }
    for (_, first, last) in &port_drops {
        *m.oversize_drops.get_or_insert(0) += last.saturating_sub(*first);
    }
    for f in &scenario.faults {
        if !begins.iter().any(|(s, _)| *s == f.index) {
            problems.push(format!("fault[{}] never started", f.index));
        } else if !ends.iter().any(|(s, _)| *s == f.index) {
            problems.push(format!("fault[{}] was never cleared", f.index));
        } else if !crate::model::fault::took_effect(
            f.kind.name(),
            f.index,
            f.path,
            &history.entries,
        ) {
            // The run did not do what the scenario says: what it measured
            // is not the fault's outcome.
            problems.push(format!(
                "fault[{}] ({}) left no evidence that it took effect (its counters or effects \
                 in the history: {})",
                f.index,
                f.kind.name(),
                crate::model::fault::evidence_seen(f.index, f.path, &history.entries)
            ));
        }
    }
    let first_begin = begins.iter().map(|b| b.1).reduce(f64::min);
    let last_end = ends.iter().map(|b| b.1).reduce(f64::max);
    m.detection_s = first_begin.and_then(|b| detection(history, b));
    // Where the first error's clock starts: the cause's own begin, moved
    // back by its scheduled distance from the first fault.
    let error_base = cause
        .and_then(|k| {
            let begun = begins.iter().find(|(s, _)| *s == k)?.1;
            let f = scenario.faults.iter().find(|f| f.index == k)?;
            Some(begun - (f.start_s - scenario.first_fault_start_s()?))
        })
        .or(first_begin);

    let mut slow = Vec::new();
    // Per probe: the time of the stall it reported on an op that never completed.
    let mut open_stalls: Vec<(String, f64, f64, u64)> = Vec::new();
    let mut summaries: BTreeSet<String> = BTreeSet::new();
    let mut probes: BTreeSet<String> = BTreeSet::new();
    // The figures of time (errors, stalls, recovery) are the faulted
    // host's: with several hosts, another host's probe only counts its
    // writes (and its split-brain part, [`cluster`]).
    let victim = scenario.faulted_host();
    for (t, probe, ev) in history.probe_events() {
        probes.insert(probe.to_string());
        let timed = scenario.probe_host(probe).unwrap_or(0) == victim;
        match ev {
            ProbeEvent::Op { .. } | ProbeEvent::Stalled { .. } if !timed => m.ops += 1,
            ProbeEvent::Op {
                t: done,
                start,
                ok,
                errno,
                seq,
                ..
            } => {
                m.ops += 1;
                open_stalls.retain(|(p, _, _, s)| !(p == probe && s == seq));
                if done - start > STALL_THRESHOLD_S {
                    slow.push((*start, *done));
                }
                if *ok {
                    if let (Some(end), None) = (last_end, m.recovered_s) {
                        if *done >= end {
                            m.recovered_s = Some(done - end);
                        }
                    }
                } else {
                    m.errors += 1;
                    if let Some(errno) = errno {
                        m.errnos.insert(*errno);
                    }
                    // A write the fence refused is the fencing working
                    // (judged with the split brain), not the link's error.
                    if scenario.fencing.is_some() && *errno == Some(cluster::EBADE) {
                        continue;
                    }
                    match (first_begin, error_base) {
                        (Some(b), Some(base)) if *done >= b => {
                            if m.first_error_s.is_none() {
                                m.first_error_s = Some(done - base);
                            }
                        }
                        _ => m.errors_before_fault += 1,
                    }
                }
            }
            ProbeEvent::Stalled { since, seq, .. } => {
                match open_stalls
                    .iter_mut()
                    .find(|(p, _, _, s)| p == probe && s == seq)
                {
                    Some(o) => o.2 = t,
                    None => open_stalls.push((probe.to_string(), *since, t, *seq)),
                }
            }
            ProbeEvent::Summary {
                acked_writes,
                lost_writes,
                corrupt_writes,
                unverified_writes,
                ..
            } => {
                summaries.insert(probe.to_string());
                m.acked_writes += acked_writes;
                m.lost_writes += lost_writes;
                m.corrupt_writes += corrupt_writes;
                m.unverified_writes += unverified_writes;
            }
            _ => {}
        }
    }
    // An operation still blocked at the end counts as a stall up to the
    // watchdog's last report.
    slow.extend(open_stalls.iter().map(|(_, since, t, _)| (*since, *t)));
    m.stalls = stalls(slow);
    m.max_stall_s = m.stalls.iter().map(Stall::duration).fold(0.0, f64::max);
    (m.effective, m.settings_warnings) =
        settings::effective(history, &scenario.initiator, scenario.multipath.as_ref());
    m.wire = wire::windows(history);
    // Each probe's host, by name, when there are several.
    let writers: BTreeMap<String, String> = scenario
        .probes
        .iter()
        .filter(|_| scenario.hosts.len() > 1)
        .filter_map(|p| {
            let host = scenario.hosts.get(usize::from(p.host))?;
            Some((p.name.clone(), host.name.clone()))
        })
        .collect();
    m.bad_blocks = forensics::bad_blocks(
        history,
        history.first_fault_begin().unwrap_or(0.0),
        &writers,
    );
    m.fs = fs::measure(history, history.first_fault_begin().unwrap_or(0.0));
    m.split_brain = cluster::measure(
        history,
        scenario,
        history.first_fault_begin().unwrap_or(0.0),
    );
    // A write the other host wrote over is split brain's evidence (counted
    // there), not a write the storage lost.
    if let Some(b) = &m.split_brain {
        m.lost_writes = m.lost_writes.saturating_sub(b.overwritten);
    }
    for p in &scenario.probes {
        if !probes.contains(&p.name) {
            problems.push(format!("probe {} recorded nothing", p.name));
        } else if !summaries.contains(&p.name) {
            problems.push(format!("probe {} ended without summary", p.name));
        }
    }
    if problems.is_empty() {
        Ok(m)
    } else {
        Err(problems)
    }
}

fn s(x: f64) -> String {
    format!("{x:.2} s")
}

/// Measures the history and judges it against the scenario and the
/// oracle's prediction.
pub fn check(history: &History, scenario: &Scenario, prediction: &Prediction) -> Check {
    let measured = match measure(history, scenario, prediction.first_error_fault) {
        Ok(m) => m,
        Err(problems) => {
            // Keep what can be measured for the report.
            let mut partial = Measured::default();
            if let Ok(m) = measure(
                history,
                &without_probes(scenario),
                prediction.first_error_fault,
            ) {
                partial = m;
            }
            return Check {
                verdict: Verdict::Error,
                reasons: problems,
                measured: partial,
            };
        }
    };
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let m = &measured;
    let errno_text = if m.errnos.is_empty() {
        String::new()
    } else {
        let v: Vec<String> = m.errnos.iter().map(i32::to_string).collect();
        format!(" (errno {})", v.join(", "))
    };

    if m.errors_before_fault > 0 {
        bad.push(format!(
            "{} I/O errors before any fault started",
            m.errors_before_fault
        ));
    }
    let (expected, tol, borderline, source) = match scenario.expect.first_error {
        FirstErrorExpect::Oracle => (
            prediction.first_error_s,
            prediction.tolerance_s,
            prediction.borderline,
            "oracle",
        ),
        FirstErrorExpect::None => (None, 0.0, false, "scenario"),
        FirstErrorExpect::At(x) => (Some(x), scenario.expect.tolerance_s, false, "scenario"),
    };
    match (expected, m.first_error_s) {
        (None, None) => ok.push(format!("no I/O error, as expected ({source})")),
        (None, Some(got)) => bad.push(format!(
            "first error: expected none ({source}), measured {} after the outage started{errno_text}",
            s(got)
        )),
        (Some(want), None) if borderline => ok.push(format!(
            "no I/O error; the {source} allowed none or one at {} ± {} (borderline)",
            s(want),
            s(tol)
        )),
        (Some(want), None) => bad.push(format!(
            "first error: expected at {} ± {} ({source}), measured none",
            s(want),
            s(tol)
        )),
        (Some(want), Some(got)) if (got - want).abs() <= tol => ok.push(format!(
            "first error at {}, expected {} ± {} ({source}){errno_text}",
            s(got),
            s(want),
            s(tol)
        )),
        (Some(want), Some(got)) => bad.push(format!(
            "first error: expected at {} ± {} ({source}), measured {}{errno_text}",
            s(want),
            s(tol),
            s(got)
        )),
    }
    if let Some(max) = scenario.expect.max_stall_s {
        if m.max_stall_s > max {
            bad.push(format!(
                "longest stall: expected at most {}, measured {}",
                s(max),
                s(m.max_stall_s)
            ));
        } else {
            ok.push(format!("longest stall {} <= {}", s(m.max_stall_s), s(max)));
        }
    }
    if let Some(min) = scenario.expect.min_stall_s {
        if m.max_stall_s < min {
            bad.push(format!(
                "longest stall: expected at least {}, measured {}",
                s(min),
                s(m.max_stall_s)
            ));
        } else {
            ok.push(format!("longest stall {} >= {}", s(m.max_stall_s), s(min)));
        }
    }
    // A filesystem the oracle says needs a remount or an umount does not
    // run the workload again by itself: its recovery is judged below.
    let fs_broken = prediction
        .fs_recovery
        .is_some_and(|r| r != iscsi_chaos_formats::probe::Recovery::ByItself);
    if scenario.expect.recovered && !scenario.faults.is_empty() && !fs_broken {
        match m.recovered_s {
            None => bad.push(
                "recovery: expected I/O to succeed after the last outage, it never did".into(),
            ),
            Some(r) => match scenario.expect.max_recovery_s {
                Some(max) if r > max => bad.push(format!(
                    "recovery: expected within {}, measured {}",
                    s(max),
                    s(r)
                )),
                _ => ok.push(format!("recovered {} after the outage ended", s(r))),
            },
        }
    }
    // Bad blocks of a class the oracle says the faults can cause (a held
    // write landing after failover) are the prediction coming true: they
    // count against neither the lost nor the corrupt writes.
    let predicted = |class: &str| prediction.possible_damage.iter().any(|c| c == class);
    let (mut excused_lost, mut excused_corrupt) = (0u64, 0u64);
    for b in m.bad_blocks.iter().filter(|b| predicted(&b.class)) {
        if b.class == iscsi_chaos_formats::probe::STALE_VERSION {
            excused_lost += 1;
        } else {
            excused_corrupt += 1;
        }
    }
    let excused = excused_lost.min(m.lost_writes);
    let excused_corrupt = excused_corrupt.min(m.corrupt_writes);
    if !prediction.possible_damage.is_empty() {
        ok.push(format!(
            "possible damage ({}): measured {} bad block(s) of those classes",
            prediction.possible_damage.join(", "),
            excused + excused_corrupt
        ));
    }
    // An fs probe's acknowledged writes are its durable files.
    let (lost, unit) = if m.fs.is_some() {
        ("lost fsynced files", "fsynced files")
    } else {
        ("lost writes", "acknowledged writes")
    };
    if m.lost_writes - excused > scenario.expect.max_lost_writes {
        bad.push(format!(
            "{lost}: expected at most {}, measured {} of {} acknowledged",
            scenario.expect.max_lost_writes,
            m.lost_writes - excused,
            m.acked_writes
        ));
    } else {
        ok.push(format!(
            "{} of {} {unit} lost",
            m.lost_writes, m.acked_writes
        ));
    }
    if let (Some(b), Some(f)) = (&m.split_brain, &scenario.fencing) {
        let victim = scenario
            .hosts
            .get(usize::from(f.victim))
            .map_or("", |h| h.name.as_str());
        let (line, held) = cluster::fencing(b, victim);
        if held {
            ok.push(line);
        } else {
            bad.push(line);
        }
    }
    if let Some(b) = &m.split_brain {
        let line = cluster::describe(b);
        match scenario.expect.split_brain {
            Some(true) if b.blocks == 0 => bad.push(format!("expected split brain, none: {line}")),
            Some(false) if b.blocks > 0 => bad.push(line),
            _ => ok.push(line),
        }
    }
    if m.corrupt_writes > excused_corrupt {
        bad.push(format!(
            "corrupt writes: expected 0, measured {} of {} acknowledged",
            m.corrupt_writes - excused_corrupt,
            m.acked_writes
        ));
    }
    if let Some(fs) = &m.fs {
        let story = fs::story(fs);
        match (prediction.fs_recovery, fs.recovery) {
            (Some(want), Some(got)) if want != got => {
                bad.push(format!("{story}; expected: {} (oracle)", want.describe()))
            }
            (Some(_), None) => bad.push(format!("{story}: the probe tried no recovery step")),
            _ => ok.push(story),
        }
        if fs.fsync_error_once > 0 {
            ok.push(format!(
                "{} fsync(s) failed and then returned 0 on the same open file: the error is reported once, the data not written again",
                fs.fsync_error_once
            ));
        }
    }
    // What each bad block holds, the first few in the reasons (all of them
    // in report.json's `bad_blocks`).
    const SHOWN: usize = 5;
    let lines: Vec<String> = m
        .bad_blocks
        .iter()
        .take(SHOWN)
        .map(forensics::describe)
        .collect();
    let target = if bad.is_empty() { &mut ok } else { &mut bad };
    target.extend(lines);
    if m.bad_blocks.len() > SHOWN {
        target.push(format!(
            "and {} more bad blocks (report.json)",
            m.bad_blocks.len() - SHOWN
        ));
    }
    let verdict = if bad.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    Check {
        verdict,
        reasons: if bad.is_empty() { ok } else { bad },
        measured,
    }
}

fn without_probes(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    s.probes.clear();
    s.faults.clear();
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::predict_scenario;
    use guest_probes::OpKind;

    fn scenario(initiator: &str, fault_start: f64, fault_len: f64, expect: &str) -> Scenario {
        let text = format!(
            "version = 1\nduration_s = 60\n[lane]\ntarget = \"tgt\"\n[initiator]\n{initiator}\n\
             [[probe]]\nkind = \"blkprobe\"\nname = \"blk\"\ninterval_ms = 10\n\
             [[fault]]\nkind = \"blackhole\"\nstart_s = {fault_start}\nduration_s = {fault_len}\n{expect}"
        );
        Scenario::parse(&text, "t.toml").unwrap()
    }

    /// A probe doing one op every 10 ms on [t0, t1); ops issued during
    /// [out_start, release) complete at `release`, failing with `errno` if
    /// given; `fail_until`: ops issued before it fail at once after release.
    struct Sim {
        h: History,
        seq: u64,
    }

    impl Sim {
        fn new() -> Sim {
            Sim {
                h: History::default(),
                seq: 0,
            }
        }
        fn op(&mut self, start: f64, done: f64, ok: bool, errno: Option<i32>) {
            self.seq += 1;
            self.h.push(
                done,
                Event::Probe {
                    probe: "blk".into(),
                    event: ProbeEvent::Op {
                        t: done,
                        start,
                        op: if self.seq.is_multiple_of(2) {
                            OpKind::Write
                        } else {
                            OpKind::Read
                        },
                        seq: self.seq,
                        block: self.seq,
                        ok,
                        errno,
                    },
                },
            );
        }
        fn ops(&mut self, from: f64, to: f64) {
            let mut t = from;
            while t < to {
                self.op(t, t + 0.001, true, None);
                t += 0.01;
            }
        }
        fn fault(&mut self, begin: f64, end: f64) {
            self.fault_without_evidence(begin, end);
            // The blackhole's evidence: its qdisc dropped packets.
            self.h.push(
                end,
                Event::Qdisc {
                    step: 0,
                    side: "to_target".into(),
                    kind: "netem".into(),
                    packets: 12,
                    bytes: 9000,
                    drops: 12,
                },
            );
        }
        fn fault_without_evidence(&mut self, begin: f64, end: f64) {
            for (t, phase) in [(begin, FaultPhase::Begin), (end, FaultPhase::End)] {
                self.h.push(
                    t,
                    Event::Fault {
                        step: 0,
                        phase,
                        kind: "blackhole".into(),
                        scheduled: t - 0.002,
                        path: None,
                    },
                );
            }
        }
        fn summary(&mut self, t: f64, acked: u64, lost: u64) {
            self.h.push(
                t,
                Event::Probe {
                    probe: "blk".into(),
                    event: ProbeEvent::Summary {
                        t,
                        acked_writes: acked,
                        lost_writes: lost,
                        corrupt_writes: 0,
                        unverified_writes: 0,
                        ops: self.seq,
                        errors: 0,
                    },
                },
            );
        }
        fn done(mut self) -> History {
            self.h.sort();
            self.h
        }
    }

    /// Outage at 105 s (clock) for `len` s; the blocked op completes at
    /// `release`; if `eio_at`, the blocked op fails then and later ops fail
    /// fast until `release`.
    fn outage_history(len: f64, release: f64, eio_at: Option<f64>, lost: u64) -> History {
        let mut sim = Sim::new();
        sim.ops(100.0, 105.0);
        sim.fault(105.0, 105.0 + len);
        match eio_at {
            None => sim.op(105.0, release, true, None),
            Some(e) => {
                sim.op(105.0, e, false, Some(5));
                let mut t = e + 0.01;
                while t < release {
                    sim.op(t, t + 0.0005, false, Some(5));
                    t += 0.01;
                }
            }
        }
        sim.ops(release + 0.01, release + 5.0);
        sim.summary(release + 6.0, 250, lost);
        sim.done()
    }

    #[test]
    fn short_outage_stall_without_error_passes() {
        let sc = scenario(
            "noop_out_interval = 5\nnoop_out_timeout = 5\nreplacement_timeout = 5",
            5.0,
            2.5,
            "[expect]\nmax_stall_s = 4",
        );
        let p = predict_scenario(&sc);
        assert_eq!(p.first_error_s, None);
        let c = check(&outage_history(2.5, 108.0, None, 0), &sc, &p);
        assert_eq!(c.verdict, Verdict::Pass, "{c:#?}");
        assert_eq!(c.measured.first_error_s, None);
        assert_eq!(c.measured.errors, 0);
        assert!((c.measured.max_stall_s - 3.0).abs() < 1e-9);
        assert_eq!(c.measured.stalls.len(), 1);
        assert!((c.measured.recovered_s.unwrap() - 0.5).abs() < 1e-9);
        assert!((c.measured.fault_apply_latency_max_s.unwrap() - 0.002).abs() < 1e-9);
    }

    #[test]
    fn detection_is_the_session_leaving_logged_in_after_the_outage_began() {
        let mut h = History::default();
        h.push(
            1.0,
            Event::Session {
                state: "LOGGED_IN".into(),
            },
        );
        h.push(
            9.0,
            Event::Session {
                state: "FAILED".into(),
            },
        );
        h.push(
            12.0,
            Event::Session {
                state: "LOGGED_IN".into(),
            },
        );
        assert_eq!(detection(&h, 5.0), Some(4.0));
        assert_eq!(detection(&h, 10.0), None);
    }

    #[test]
    fn long_outage_with_eio_at_9_1_passes() {
        let sc = scenario(
            "noop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5",
            5.0,
            20.0,
            "",
        );
        let p = predict_scenario(&sc);
        let c = check(&outage_history(20.0, 126.5, Some(114.1), 0), &sc, &p);
        assert_eq!(c.verdict, Verdict::Pass, "{c:#?}");
        assert!((c.measured.first_error_s.unwrap() - 9.1).abs() < 1e-9);
        assert!(c.measured.errors > 1000);
        assert_eq!(c.measured.errnos, BTreeSet::from([5]));
        assert!((c.measured.recovered_s.unwrap() - 1.5).abs() < 0.02);
        assert!(
            c.reasons[0].contains("first error at 9.10 s, expected 9.12 s"),
            "{c:#?}"
        );
    }

    #[test]
    fn error_far_from_the_oracle_fails() {
        let sc = scenario(
            "noop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5",
            5.0,
            20.0,
            "",
        );
        let p = predict_scenario(&sc);
        let c = check(&outage_history(20.0, 126.5, Some(116.0), 0), &sc, &p);
        assert_eq!(c.verdict, Verdict::Fail);
        assert_eq!(
            c.reasons,
            vec!["first error: expected at 9.12 s ± 1.50 s (oracle), measured 11.00 s (errno 5)"]
        );
        // An error where none was predicted.
        let sc = scenario(
            "noop_out_interval = 5\nnoop_out_timeout = 5\nreplacement_timeout = 5",
            5.0,
            2.5,
            "",
        );
        let c = check(
            &outage_history(2.5, 108.0, Some(107.0), 0),
            &sc,
            &predict_scenario(&sc),
        );
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.reasons[0].starts_with("first error: expected none (oracle), measured 2.00 s"));
    }

    #[test]
    fn lost_writes_fail() {
        let sc = scenario(
            "noop_out_interval = 5\nnoop_out_timeout = 5\nreplacement_timeout = 5",
            5.0,
            2.5,
            "",
        );
        let c = check(
            &outage_history(2.5, 108.0, None, 3),
            &sc,
            &predict_scenario(&sc),
        );
        assert_eq!(c.verdict, Verdict::Fail);
        assert_eq!(c.measured.lost_writes, 3);
        assert_eq!(
            c.reasons,
            vec!["lost writes: expected at most 0, measured 3 of 250 acknowledged"]
        );
    }

    #[test]
    fn stale_versions_the_oracle_calls_possible_pass_and_other_damage_still_fails() {
        use iscsi_chaos_formats::probe::{BlockProblem, Found};
        let sc = scenario(
            "noop_out_interval = 5\nnoop_out_timeout = 5\nreplacement_timeout = 5",
            5.0,
            2.5,
            "",
        );
        // Block 3 back at an older version of itself; block 5 holding
        // block 1's write.
        let mut h = outage_history(2.5, 108.0, None, 1);
        for (block, seq, problem, found) in [
            (
                3,
                19,
                BlockProblem::Lost,
                Found::Stamp { seq: 11, block: 3 },
            ),
            (
                5,
                21,
                BlockProblem::Corrupt,
                Found::Stamp { seq: 17, block: 1 },
            ),
        ] {
            h.push(
                112.0,
                Event::Probe {
                    probe: "blk".into(),
                    event: ProbeEvent::BadBlock {
                        t: 112.0,
                        seq,
                        block,
                        problem,
                        found: Some(found),
                    },
                },
            );
        }
        let mut p = predict_scenario(&sc);
        assert_eq!(
            check(&h, &sc, &p).verdict,
            Verdict::Fail,
            "nothing predicted"
        );
        p.possible_damage = vec![iscsi_chaos_formats::probe::STALE_VERSION.into()];
        let c = check(&h, &sc, &p);
        // The lost write is excused; the misdirected one (corrupt) is not,
        // though the summary here counts no corrupt writes: it passes.
        assert_eq!(c.verdict, Verdict::Pass, "{:?}", c.reasons);
        assert!(c
            .reasons
            .iter()
            .any(|r| r.contains("possible damage (stale version): measured 1")));
        assert!(c
            .reasons
            .iter()
            .any(|r| r.contains("block 3 (stale version)")));
        // Without the excuse the same lost write fails.
        p.possible_damage = vec![iscsi_chaos_formats::probe::MISDIRECTED.into()];
        let c = check(&h, &sc, &p);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.reasons[0].starts_with("lost writes: expected at most 0, measured 1"));
    }

    #[test]
    fn a_filesystem_is_judged_by_what_brought_it_back_not_by_the_workload_recovering() {
        use iscsi_chaos_formats::probe::{FsMount, Recovery};
        let sc = scenario(
            "noop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5",
            5.0,
            20.0,
            "",
        );
        // ext4 turned read-only at the EIO: nothing succeeds after it.
        let with_steps = |steps: &[(Recovery, bool)]| {
            let mut h = outage_history(20.0, 126.5, Some(114.1), 0);
            h.entries.retain(|e| {
                !(e.t > 114.1
                    && matches!(
                        &e.event,
                        Event::Probe {
                            event: ProbeEvent::Op { ok: true, .. },
                            ..
                        }
                    ))
            });
            let mut push = |t: f64, event: ProbeEvent| {
                h.push(
                    t,
                    Event::Probe {
                        probe: "blk".into(),
                        event,
                    },
                );
            };
            push(
                100.0,
                ProbeEvent::FsState {
                    t: 100.0,
                    mount: FsMount::Rw,
                    device: None,
                    errors: None,
                    line: None,
                },
            );
            push(
                114.2,
                ProbeEvent::FsState {
                    t: 114.2,
                    mount: FsMount::Ro,
                    device: None,
                    errors: None,
                    line: None,
                },
            );
            for (k, (step, ok)) in steps.iter().enumerate() {
                let t = 132.0 + k as f64;
                push(
                    t,
                    ProbeEvent::FsRecovery {
                        t,
                        step: *step,
                        ok: *ok,
                        detail: String::new(),
                    },
                );
            }
            h.sort();
            h
        };
        let mut p = predict_scenario(&sc);
        assert!(p.first_error_s.is_some());
        p.fs_recovery = Some(Recovery::Umount);
        let umount = with_steps(&[
            (Recovery::ByItself, false),
            (Recovery::Remount, false),
            (Recovery::Umount, true),
        ]);
        let c = check(&umount, &sc, &p);
        assert_eq!(c.verdict, Verdict::Pass, "{:?}", c.reasons);
        assert_eq!(c.measured.recovered_s, None);
        assert!(
            c.reasons
                .iter()
                .any(|r| r.starts_with("filesystem: rw at") && r.contains("read-only at +9.2 s")),
            "{:?}",
            c.reasons
        );
        // A remount that brought it back is not what the oracle said.
        let remount = with_steps(&[(Recovery::ByItself, false), (Recovery::Remount, true)]);
        let c = check(&remount, &sc, &p);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(
            c.reasons[0].ends_with("; expected: works again only after umount + repair (oracle)"),
            "{:?}",
            c.reasons
        );
        // Predicted to work by itself: the workload must recover too.
        p.fs_recovery = Some(Recovery::ByItself);
        let c = check(&umount, &sc, &p);
        assert!(
            c.reasons.iter().any(|r| r.contains("it never did")),
            "{:?}",
            c.reasons
        );
    }

    #[test]
    fn missing_summary_is_an_error() {
        let sc = scenario(
            "noop_out_interval = 5\nnoop_out_timeout = 5\nreplacement_timeout = 5",
            5.0,
            2.5,
            "",
        );
        let mut h = outage_history(2.5, 108.0, None, 0);
        h.entries.retain(|e| {
            !matches!(
                e.event,
                Event::Probe {
                    event: ProbeEvent::Summary { .. },
                    ..
                }
            )
        });
        let c = check(&h, &sc, &predict_scenario(&sc));
        assert_eq!(c.verdict, Verdict::Error);
        assert_eq!(c.reasons, vec!["probe blk ended without summary"]);
        // What could be measured is still there.
        assert!((c.measured.max_stall_s - 3.0).abs() < 1e-9);
    }

    #[test]
    fn no_recovery_and_hung_probe() {
        let sc = scenario(
            "noop_out_interval = 5\nnoop_out_timeout = 5\nreplacement_timeout = -1",
            5.0,
            30.0,
            "",
        );
        let mut sim = Sim::new();
        sim.ops(100.0, 105.0);
        sim.fault(105.0, 135.0);
        for k in 1..40 {
            let t = 105.0 + f64::from(k);
            sim.h.push(
                t,
                Event::Probe {
                    probe: "blk".into(),
                    event: ProbeEvent::Stalled {
                        t,
                        since: 105.0,
                        op: OpKind::Read,
                        seq: 999,
                    },
                },
            );
        }
        sim.summary(150.0, 250, 0);
        let c = check(&sim.done(), &sc, &predict_scenario(&sc));
        assert_eq!(c.verdict, Verdict::Fail);
        assert!((c.measured.max_stall_s - 39.0).abs() < 1e-9);
        assert!(c.reasons.iter().any(|r| r.contains("never did")));
    }

    #[test]
    fn fault_that_never_started_is_an_error() {
        let sc = scenario("", 5.0, 2.5, "");
        let mut sim = Sim::new();
        sim.ops(100.0, 101.0);
        sim.summary(102.0, 50, 0);
        let c = check(&sim.done(), &sc, &predict_scenario(&sc));
        assert_eq!(c.verdict, Verdict::Error);
        assert_eq!(c.reasons, vec!["fault[0] never started"]);
    }

    #[test]
    fn qdisc_counters_are_summed_over_steps_and_sides() {
        let sc = scenario(
            "noop_out_interval = 5\nnoop_out_timeout = 5\nreplacement_timeout = 5",
            5.0,
            2.5,
            "",
        );
        let p = predict_scenario(&sc);
        let mut h = outage_history(2.5, 108.0, None, 0);
        let c = check(&h, &sc, &p);
        // The blackhole's own evidence (12 packets, all dropped).
        assert_eq!(
            (c.measured.qdisc_packets, c.measured.qdisc_drops),
            (Some(12), Some(12))
        );
        for (side, packets, drops) in [("to_target", 0, 7), ("to_initiator", 3, 5)] {
            h.push(
                107.5,
                Event::Qdisc {
                    step: 0,
                    side: side.into(),
                    kind: "netem".into(),
                    packets,
                    bytes: packets * 100,
                    drops,
                },
            );
        }
        h.sort();
        let c = check(&h, &sc, &p);
        assert_eq!(c.verdict, Verdict::Pass, "{c:#?}");
        assert_eq!(
            (c.measured.qdisc_packets, c.measured.qdisc_drops),
            (Some(15), Some(24))
        );
    }

    /// A fault that was applied and cleared but shows no effect (a qdisc
    /// that dropped nothing, a port that kept forwarding) makes the run an
    /// error: what was measured is not that fault's outcome.
    #[test]
    fn a_fault_without_evidence_is_an_error() {
        let sc = scenario(
            "noop_out_interval = 5\nnoop_out_timeout = 5\nreplacement_timeout = 5",
            5.0,
            2.5,
            "",
        );
        let mut sim = Sim::new();
        sim.ops(100.0, 105.0);
        sim.fault_without_evidence(105.0, 107.5);
        sim.ops(105.0, 110.0);
        sim.summary(111.0, 250, 0);
        let c = check(&sim.done(), &sc, &predict_scenario(&sc));
        assert_eq!(c.verdict, Verdict::Error, "{c:#?}");
        assert_eq!(
            c.reasons,
            vec![
                "fault[0] (blackhole) left no evidence that it took effect (its counters or \
                 effects in the history: no counters, no capture)"
            ]
        );
    }

    #[test]
    fn a_fault_applied_late_does_not_move_an_error_that_a_later_fault_causes() {
        // overloaded-array: the 1 s delay (fault 0, at 3 s) is only slow;
        // the 3 s delay (fault 1, at 15 s) fails I/O about 19 s after the
        // first fault. Here the harness applied fault 0 1.73 s late (a
        // loaded host) and fault 1 on time, as in a CI run that measured
        // 17.61 s from fault 0's late begin.
        let sc = Scenario::parse(
            include_str!("../../../scenarios/impairment/overloaded-array.toml"),
            "overloaded-array.toml",
        )
        .unwrap();
        let mut run = sc.expand().remove(0);
        run.scenario.probes[0].name = "blk".into();
        let p = crate::oracle::predict_run(&run);
        assert_eq!(p.first_error_fault, Some(1), "{p:#?}");
        let e = p.first_error_s.unwrap();
        let mut sim = Sim::new();
        let t0 = 100.0;
        sim.ops(t0, t0 + 3.0);
        for (step, scheduled, late, len) in [(0, 3.0, 1.73, 10.0), (1, 15.0, 0.003, 12.0)] {
            for (at, phase, sched) in [
                (t0 + scheduled + late, FaultPhase::Begin, t0 + scheduled),
                (t0 + scheduled + len, FaultPhase::End, t0 + scheduled + len),
            ] {
                sim.h.push(
                    at,
                    Event::Fault {
                        step,
                        phase,
                        kind: "netem".into(),
                        scheduled: sched,
                        path: None,
                    },
                );
            }
            sim.h.push(
                t0 + scheduled + len,
                Event::Qdisc {
                    step,
                    side: "to_initiator".into(),
                    kind: "netem".into(),
                    packets: 29,
                    bytes: 10622,
                    drops: 0,
                },
            );
        }
        // The error comes 0.2 s after the oracle's time from the first
        // fault's scheduled start: 0.197 s after it from fault 1's own
        // (3 ms late) begin.
        let eio = t0 + 3.0 + e + 0.2;
        sim.op(t0 + 15.0, eio, false, Some(5));
        sim.ops(t0 + 27.1, t0 + 30.0);
        sim.summary(t0 + 31.0, 100, 0);
        let c = check(&sim.done(), &run.scenario, &p);
        let m = c.measured.first_error_s.unwrap();
        assert!((m - (e + 0.197)).abs() < 1e-6, "{m} vs {e}: {c:#?}");
        assert!((c.measured.fault_apply_latency_max_s.unwrap() - 1.73).abs() < 1e-6);
    }

    #[test]
    fn an_error_from_an_outage_after_an_impairment_counts_from_the_first_fault() {
        // A delay first (no error), then a blackhole 10 s later: the
        // oracle's time counts from the delay's start, as the checker does.
        let text = "version = 1\nduration_s = 60\n[lane]\ntarget = \"tgt\"\n[initiator]\n\
             noop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5\n\
             [[probe]]\nkind = \"blkprobe\"\ninterval_ms = 10\n\
             [[fault]]\nkind = \"netem\"\ndelay_ms = 50\nstart_s = 5\nduration_s = 5\n\
             [[fault]]\nkind = \"blackhole\"\nstart_s = 15\nduration_s = 20\n";
        let sc = Scenario::parse(text, "t.toml").unwrap();
        let alone = predict_scenario(&scenario(
            "noop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5",
            15.0,
            20.0,
            "",
        ));
        let p = predict_scenario(&sc);
        assert_eq!(p.first_error_fault, Some(1));
        let d = p.first_error_s.unwrap() - alone.first_error_s.unwrap();
        assert!((d - 10.0).abs() < 1e-9, "{p:#?}");
    }
}
