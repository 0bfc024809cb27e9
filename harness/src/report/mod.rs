//! Reports: the report entries (`report.json`, schema 1, the contract CI
//! and other tools read) and the reporters that consume the run event
//! stream ([`events`]): progress lines, the JSON file, the summary table.

pub mod compare;
pub mod events;
pub mod heatmap;
pub mod html;
pub mod json;
pub mod junit;
pub mod merge;
pub mod out;
pub mod outcome;
pub mod outcome_grid;
pub mod progress;
pub mod summary;
pub mod svg;
pub mod table;
pub mod timeline;
pub mod trace;

use std::collections::BTreeMap;

use crate::check::{Check, Measured};
use crate::model::Run;
use crate::oracle::Prediction;

pub use iscsi_chaos_formats::report::*;

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

/// The report's figures of a measured run. `origin`: the clock time stall
/// starts are given relative to.
pub fn measured_json(m: &Measured, origin: f64) -> MeasuredJson {
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
        detection_s: m.detection_s.map(ms),
        acked_writes: m.acked_writes,
        lost_writes: m.lost_writes,
        corrupt_writes: m.corrupt_writes,
        unverified_writes: m.unverified_writes,
        ops: m.ops,
        qdisc_packets: m.qdisc_packets,
        qdisc_drops: m.qdisc_drops,
        resets_sent: m.resets_sent,
        oversize_drops: m.oversize_drops,
        effective: m.effective.clone(),
        settings_warnings: m.settings_warnings.clone(),
        wire: m.wire.clone(),
        bad_blocks: m.bad_blocks.clone(),
        fs: m.fs.clone(),
        split_brain: m.split_brain.clone(),
    }
}

/// The report's expectations of a prediction.
pub fn expected(p: &Prediction) -> Expected {
    Expected {
        first_error_s: p.first_error_s.map(ms),
        tolerance_s: ms(p.tolerance_s),
        borderline: p.borderline,
        imprecise: p.imprecise,
        detection_s: p.detection_s.map(ms_window),
        max_stall_s: p.max_stall_s.map(ms_window),
        recovery_s: p.recovery_s.map(ms_window),
        possible_damage: p.possible_damage.clone(),
        fs_recovery: p.fs_recovery,
        notes: p.notes.clone(),
    }
}

/// The initiator settings a run applied, as the report lists them: secrets
/// redacted (the allow-list in [`crate::model::settings`] decides which).
fn settings_of(run: &Run) -> BTreeMap<String, String> {
    run.scenario
        .initiator
        .redacted_settings()
        .into_iter()
        .collect()
}

/// The scenario's faults with their labels, in file order.
fn faults_of(run: &Run) -> Vec<FaultJson> {
    run.scenario
        .faults
        .iter()
        .map(|f| FaultJson {
            kind: f.kind.name().to_string(),
            start_s: f.start_s,
            duration_s: f.duration_s,
            label: f.label(),
        })
        .collect()
}

pub use crate::model::settings::{is_secret, REDACTED};

/// How report entries are made from runs (harness side: they know checks
/// and predictions).
pub trait EntryExt {
    fn checked(
        run: &Run,
        prediction: &Prediction,
        check: &Check,
        origin: f64,
        timings: Timings,
    ) -> Entry;
    fn unchecked(
        run: &Run,
        prediction: &Prediction,
        verdict: Verdict,
        reason: impl Into<String>,
        timings: Timings,
    ) -> Entry;
}

impl EntryExt for Entry {
    /// A checked run. `origin`: the first outage's start on the history's
    /// clock (see [`crate::check`]); stall starts are relative to it.
    fn checked(
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
            id: run.id(),
            name: run.scenario.name.clone(),
            target: run.target.to_string(),
            verdict: check.verdict,
            reasons: check.reasons.clone(),
            settings: settings_of(run),
            point: run.scenario.point.iter().cloned().collect(),
            faults: faults_of(run),
            expected: expected(prediction),
            measured: measured_json(&check.measured, origin),
            timings,
        }
    }

    /// A run that did not get to be checked: `Skipped` (missing needs) or
    /// `Error` (setup failed, probe hung, ...), with the reason.
    fn unchecked(
        run: &Run,
        prediction: &Prediction,
        verdict: Verdict,
        reason: impl Into<String>,
        timings: Timings,
    ) -> Entry {
        Entry {
            id: run.id(),
            name: run.scenario.name.clone(),
            target: run.target.to_string(),
            verdict,
            reasons: vec![reason.into()],
            settings: settings_of(run),
            point: run.scenario.point.iter().cloned().collect(),
            faults: faults_of(run),
            expected: expected(prediction),
            measured: MeasuredJson::default(),
            timings,
        }
    }
}

/// The summary's columns: the terminal table and `summary.md` show these.
pub const SUMMARY_HEADER: [&str; 10] = [
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

/// One run's summary cells, under [`SUMMARY_HEADER`]; "-" where the run
/// measured nothing.
pub fn summary_row(e: &Entry) -> [String; 10] {
    let opt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}s"));
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
}

/// The summary table (harness side: it knows the column layout).
pub trait SummaryTableExt {
    fn summary_table(&self) -> String;
}

impl SummaryTableExt for Report {
    /// The terminal summary: one aligned row per run, then the reasons of
    /// the runs that did not pass.
    fn summary_table(&self) -> String {
        let header = SUMMARY_HEADER;
        let rows: Vec<[String; 10]> = self.scenarios.iter().map(summary_row).collect();
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
        for e in &self.scenarios {
            for w in &e.measured.settings_warnings {
                out.push_str(&format!("{} [{}] warning: {w}\n", e.name, e.target));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scenario;

    #[test]
    fn chap_secrets_never_reach_the_report() {
        let s = Scenario::parse(
            "version = 1\nduration_s = 10\n[lane]\ntarget = \"tgt\"\n\
             [initiator.settings]\n\"node.session.auth.password\" = \"hunter2\"\n\
             \"node.session.auth.username\" = \"alice.chap\"\n\
             \"node.session.auth.password_in\" = \"hunter3\"\n\
             \"node.session.auth.authmethod\" = \"CHAP\"\n",
            "s.toml",
        )
        .unwrap();
        let planned = crate::plan::suite(&[s]).remove(0);
        let e = Entry::unchecked(
            &planned.run,
            &planned.prediction,
            Verdict::Skipped,
            "x",
            Timings::default(),
        );
        assert_eq!(e.settings["node.session.auth.password"], REDACTED);
        assert_eq!(e.settings["node.session.auth.username"], REDACTED);
        assert_eq!(e.settings["node.session.auth.password_in"], REDACTED);
        // The method is no secret: the report says CHAP was used.
        assert_eq!(e.settings["node.session.auth.authmethod"], "CHAP");
        let json = Report {
            scenarios: vec![e],
            ..Report::default()
        }
        .to_json();
        for secret in ["hunter2", "hunter3", "alice.chap"] {
            assert!(!json.contains(secret), "{json}");
        }
        // Nor does the plan's Debug form (logs, panics) show them.
        let debug = format!("{planned:?}");
        assert!(!debug.contains("hunter") && !debug.contains("alice.chap"));
    }
}
