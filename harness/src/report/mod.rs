//! Reports: the report entries (`report.json`, schema 1, the contract CI
//! and other tools read) and the reporters that consume the run event
//! stream ([`events`]): progress lines, the JSON file, the summary table.

pub mod events;
pub mod json;
pub mod progress;
pub mod table;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::{Check, Measured, Verdict};
use crate::model::Run;
use crate::oracle::{Prediction, Window};

/// Bump only with an incompatible change of `report.json`.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema: u32,
    pub scenarios: Vec<Entry>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            schema: SCHEMA,
            scenarios: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub name: String,
    pub target: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    /// The initiator settings applied: iscsiadm node key -> value.
    pub settings: BTreeMap<String, String>,
    pub expected: Expected,
    pub measured: MeasuredJson,
    pub timings: Timings,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expected {
    pub first_error_s: Option<f64>,
    pub tolerance_s: f64,
    pub borderline: bool,
    pub imprecise: bool,
    pub max_stall_s: Option<Window>,
    pub recovery_s: Option<Window>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StallJson {
    /// Seconds from the first outage's start (or from the first probe
    /// operation when there is no outage).
    pub start_s: f64,
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct MeasuredJson {
    pub first_error_s: Option<f64>,
    pub errors: u64,
    pub errnos: Vec<i32>,
    pub max_stall_s: f64,
    pub stalls: Vec<StallJson>,
    pub recovered_s: Option<f64>,
    pub acked_writes: u64,
    pub lost_writes: u64,
    pub corrupt_writes: u64,
    pub unverified_writes: u64,
    pub ops: u64,
    /// Counted by the fault qdiscs: proof the faults touched packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qdisc_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qdisc_drops: Option<u64>,
    /// TCP resets the reset rules sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_sent: Option<u64>,
    /// Frames the lane dropped for exceeding the MTU (MTU faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oversize_drops: Option<u64>,
}

/// Harness overhead, filled by the orchestrator (seconds, `None` when not
/// reached).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Timings {
    /// From the start of setup to the I/O phase.
    pub setup_s: Option<f64>,
    /// The I/O phase (fault timeline).
    pub timeline_s: Option<f64>,
    pub teardown_s: Option<f64>,
    /// Largest delay from a fault step's scheduled instant to its being in place.
    pub fault_apply_latency_max_s: Option<f64>,
}

/// Milliseconds are the clock's useful precision; drop float noise.
fn ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ms_window(w: Window) -> Window {
    Window {
        lo: ms(w.lo),
        hi: ms(w.hi),
    }
}

impl MeasuredJson {
    /// `origin`: the clock time stall starts are given relative to.
    pub fn from_measured(m: &Measured, origin: f64) -> MeasuredJson {
        MeasuredJson {
            first_error_s: m.first_error_s.map(ms),
            errors: m.errors,
            errnos: m.errnos.iter().copied().collect(),
            max_stall_s: ms(m.max_stall_s),
            stalls: m
                .stalls
                .iter()
                .map(|s| StallJson {
                    start_s: ms(s.start - origin),
                    duration_s: ms(s.duration()),
                })
                .collect(),
            recovered_s: m.recovered_s.map(ms),
            acked_writes: m.acked_writes,
            lost_writes: m.lost_writes,
            corrupt_writes: m.corrupt_writes,
            unverified_writes: m.unverified_writes,
            ops: m.ops,
            qdisc_packets: m.qdisc_packets,
            qdisc_drops: m.qdisc_drops,
            resets_sent: m.resets_sent,
            oversize_drops: m.oversize_drops,
        }
    }
}

impl Expected {
    pub fn from_prediction(p: &Prediction) -> Expected {
        Expected {
            first_error_s: p.first_error_s.map(ms),
            tolerance_s: ms(p.tolerance_s),
            borderline: p.borderline,
            imprecise: p.imprecise,
            max_stall_s: p.max_stall_s.map(ms_window),
            recovery_s: p.recovery_s.map(ms_window),
            notes: p.notes.clone(),
        }
    }
}

/// The initiator settings a run applied, as the report lists them.
fn settings_of(run: &Run) -> BTreeMap<String, String> {
    run.scenario
        .initiator
        .iscsiadm_settings()
        .into_iter()
        .collect()
}

impl Entry {
    /// A checked run. `origin`: the first outage's start on the history's
    /// clock (see [`crate::check`]); stall starts are relative to it.
    pub fn checked(
        run: &Run,
        prediction: &Prediction,
        check: &Check,
        origin: f64,
        mut timings: Timings,
    ) -> Entry {
        if timings.fault_apply_latency_max_s.is_none() {
            timings.fault_apply_latency_max_s = check.measured.fault_apply_latency_max_s;
        }
        Entry {
            name: run.scenario.name.clone(),
            target: run.target.to_string(),
            verdict: check.verdict,
            reasons: check.reasons.clone(),
            settings: settings_of(run),
            expected: Expected::from_prediction(prediction),
            measured: MeasuredJson::from_measured(&check.measured, origin),
            timings,
        }
    }

    /// A run that did not get to be checked: `Skipped` (missing needs) or
    /// `Error` (setup failed, probe hung, ...), with the reason.
    pub fn unchecked(
        run: &Run,
        prediction: &Prediction,
        verdict: Verdict,
        reason: impl Into<String>,
        timings: Timings,
    ) -> Entry {
        Entry {
            name: run.scenario.name.clone(),
            target: run.target.to_string(),
            verdict,
            reasons: vec![reason.into()],
            settings: settings_of(run),
            expected: Expected::from_prediction(prediction),
            measured: MeasuredJson::default(),
            timings,
        }
    }
}

impl Report {
    pub fn push(&mut self, entry: Entry) {
        self.scenarios.push(entry);
    }

    /// The text of `report.json`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("reports serialize");
        s.push('\n');
        s
    }

    /// 0 when every scenario passed or was skipped, 1 when any failed or
    /// errored (input errors, status 2, never reach a report).
    pub fn exit_status(&self) -> i32 {
        let bad = self
            .scenarios
            .iter()
            .any(|e| matches!(e.verdict, Verdict::Fail | Verdict::Error));
        i32::from(bad)
    }

    /// The terminal summary: one aligned row per run, then the reasons of
    /// the runs that did not pass.
    pub fn summary_table(&self) -> String {
        let header = [
            "scenario",
            "target",
            "verdict",
            "1st err",
            "expected",
            "stall",
            "recov",
            "errors",
            "lost",
            "fault hits",
        ];
        let opt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}s"));
        let rows: Vec<[String; 10]> = self
            .scenarios
            .iter()
            .map(|e| {
                let expected = match e.expected.first_error_s {
                    Some(x) => format!("{x:.1}±{:.1}s", e.expected.tolerance_s),
                    None => "none".to_string(),
                };
                let unchecked = matches!(e.verdict, Verdict::Skipped)
                    || (e.verdict == Verdict::Error && e.measured.ops == 0);
                let m = &e.measured;
                let cells = if unchecked {
                    [
                        "-".to_string(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ]
                } else {
                    [
                        opt(m.first_error_s),
                        format!("{:.1}s", m.max_stall_s),
                        opt(m.recovered_s),
                        m.errors.to_string(),
                        format!("{}/{}", m.lost_writes, m.acked_writes),
                    ]
                };
                let [fe, st, rc, er, lo] = cells;
                // What proves the faults touched packets.
                let hits: Vec<String> = [
                    (m.qdisc_drops, "dropped"),
                    (m.resets_sent, "RST"),
                    (m.oversize_drops, "oversize"),
                ]
                .iter()
                .filter_map(|(n, what)| n.map(|n| format!("{n} {what}")))
                .collect();
                let hits = if hits.is_empty() {
                    "-".to_string()
                } else {
                    hits.join(", ")
                };
                [
                    e.name.clone(),
                    e.target.clone(),
                    e.verdict.as_str().to_string(),
                    fe,
                    expected,
                    st,
                    rc,
                    er,
                    lo,
                    hits,
                ]
            })
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = w - c.chars().count();
                // Text left, numbers right.
                if i < 3 {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(header.to_vec());
        for r in &rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        for e in &self.scenarios {
            if e.verdict != Verdict::Pass {
                for reason in &e.reasons {
                    out.push_str(&format!(
                        "{} [{}] {}: {reason}\n",
                        e.name,
                        e.target,
                        e.verdict.as_str()
                    ));
                }
            }
        }
        let count = |v: Verdict| self.scenarios.iter().filter(|e| e.verdict == v).count();
        out.push_str(&format!(
            "{} passed, {} failed, {} errors, {} skipped\n",
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Error),
            count(Verdict::Skipped)
        ));
        out
    }
}
