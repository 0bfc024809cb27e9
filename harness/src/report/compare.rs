//! Regression baselines: two reports compared run id by run id. A change
//! beyond tolerance is a regression (one line each); a run only one side
//! has is told too. Pure: `iscsi-chaos compare` and `run --baseline` read
//! the files and print the lines.
//!
//! What counts, per run id in both reports:
//! - the verdict changed from pass to anything else;
//! - the first error appeared, vanished, or moved by more than the
//!   tolerance (an error that vanishes is a behaviour change too: an HA
//!   stack that failed over before no longer does);
//! - the longest stall or the recovery grew by more than the tolerance.
//!
//! A baseline run this report does not have, or skipped, or errored where
//! the baseline measured it, is a regression too (nothing was measured of
//! it) unless the caller allows missing runs; so is a report with none of
//! the baseline's runs. Settings that differ between the two reports are
//! listed (one line per key and change): they explain the changes.
//!
//! The tolerance is the baseline run's own (its oracle tolerance, at least
//! [`MIN_TOLERANCE_S`]) unless the caller gives one.

use super::{Entry, Report, Verdict};

/// The smallest tolerance: below it, TCG's scheduling noise dominates.
pub const MIN_TOLERANCE_S: f64 = 1.0;

/// What the comparison found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Comparison {
    /// Changes for the worse, one line each.
    pub regressions: Vec<String>,
    /// Changes for the better and runs on one side only.
    pub notes: Vec<String>,
    /// Initiator settings that differ between the two reports, one line
    /// per key and change ("replacement_timeout 10 -> 120 (2 runs)").
    pub settings: Vec<String>,
    /// Runs compared.
    pub compared: usize,
}

/// What the caller allows.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Options {
    /// Overrides each run's own tolerance.
    pub tolerance_s: Option<f64>,
    /// Baseline runs missing, skipped or errored here are notes, not
    /// regressions.
    pub allow_missing: bool,
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "none".to_string(), |x| format!("{x:.1} s"))
}

/// Compares `new` against the baseline `old`.
pub fn compare(old: &Report, new: &Report, options: Options) -> Comparison {
    let Options {
        tolerance_s,
        allow_missing,
    } = options;
    let mut c = Comparison::default();
    // Told as a regression, or as a note when missing runs are allowed.
    let unmeasured = |c: &mut Comparison, line: String| {
        if allow_missing {
            c.notes.push(line);
        } else {
            c.regressions.push(line);
        }
    };
    for n in &new.scenarios {
        let Some(o) = old.scenarios.iter().find(|o| o.id == n.id) else {
            c.notes
                .push(format!("{}: new run (not in the baseline)", n.id));
            continue;
        };
        c.compared += 1;
        let tol = tolerance_s.unwrap_or(o.expected.tolerance_s.max(MIN_TOLERANCE_S));
        c.regressions.extend(regressions(o, n, tol));
        let measured = |e: &Entry| matches!(e.verdict, Verdict::Pass | Verdict::Fail);
        // A pass that stopped is a regression of its own (above).
        if o.verdict == Verdict::Fail && !measured(n) {
            unmeasured(
                &mut c,
                format!("{}: {} (baseline: measured)", n.id, n.verdict.as_str()),
            );
        }
        if o.verdict != Verdict::Pass && n.verdict == Verdict::Pass {
            c.notes
                .push(format!("{}: now passes (was {:?})", n.id, o.verdict));
        }
    }
    for o in &old.scenarios {
        if !new.scenarios.iter().any(|n| n.id == o.id) {
            unmeasured(
                &mut c,
                format!("{}: in the baseline, not run this time", o.id),
            );
        }
    }
    if c.compared == 0 && !old.scenarios.is_empty() && !allow_missing {
        c.regressions
            .push("none of the baseline's runs is in this report".into());
    }
    c.settings = settings_changes(old, new);
    c
}

/// Each initiator setting whose value differs between a run of `old` and
/// the same run of `new` (or that only one side sets): "KEY A -> B (N
/// runs)", in key order. Values as the reports show them (secrets
/// redacted).
fn settings_changes(old: &Report, new: &Report) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut changes: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for n in &new.scenarios {
        let Some(o) = old.scenarios.iter().find(|o| o.id == n.id) else {
            continue;
        };
        let keys: std::collections::BTreeSet<&String> =
            o.settings.keys().chain(n.settings.keys()).collect();
        for key in keys {
            let (a, b) = (o.settings.get(key), n.settings.get(key));
            if a != b {
                let unset = || "(unset)".to_string();
                let change = (
                    key.clone(),
                    a.cloned().unwrap_or_else(unset),
                    b.cloned().unwrap_or_else(unset),
                );
                *changes.entry(change).or_default() += 1;
            }
        }
    }
    changes
        .into_iter()
        .map(|((key, a, b), runs)| {
            let short = crate::model::settings::short_name(&key);
            format!(
                "{short} {a} -> {b} ({runs} run{})",
                if runs == 1 { "" } else { "s" }
            )
        })
        .collect()
}

fn regressions(o: &Entry, n: &Entry, tol: f64) -> Vec<String> {
    let id = &n.id;
    let mut out = Vec::new();
    if o.verdict == Verdict::Pass && n.verdict != Verdict::Pass {
        let why = n.reasons.first().map_or("", String::as_str);
        out.push(format!(
            "{id}: verdict pass -> {} ({why})",
            format!("{:?}", n.verdict).to_lowercase()
        ));
    }
    // Figures are compared only between runs that were measured.
    let measured = |e: &Entry| matches!(e.verdict, Verdict::Pass | Verdict::Fail);
    if !(measured(o) && measured(n)) {
        return out;
    }
    let (a, b) = (o.measured.first_error_s, n.measured.first_error_s);
    match (a, b) {
        (None, Some(_)) => out.push(format!(
            "{id}: first error appeared at {} (baseline: none)",
            secs(b)
        )),
        (Some(_), None) => out.push(format!(
            "{id}: first error vanished (baseline: {}): the I/O no longer fails",
            secs(a)
        )),
        (Some(x), Some(y)) if (y - x).abs() > tol => out.push(format!(
            "{id}: first error moved {} -> {} (tolerance {tol:.1} s)",
            secs(a),
            secs(b)
        )),
        _ => {}
    }
    let (sa, sb) = (o.measured.max_stall_s, n.measured.max_stall_s);
    if sb - sa > tol {
        out.push(format!(
            "{id}: longest stall grew {sa:.1} s -> {sb:.1} s (tolerance {tol:.1} s)"
        ));
    }
    if let (Some(ra), Some(rb)) = (o.measured.recovered_s, n.measured.recovered_s) {
        if rb - ra > tol {
            out.push(format!(
                "{id}: recovery grew {ra:.1} s -> {rb:.1} s (tolerance {tol:.1} s)"
            ));
        }
    }
    if let (Some(_), None) = (o.measured.recovered_s, n.measured.recovered_s) {
        out.push(format!(
            "{id}: no longer recovers (baseline: {})",
            secs(o.measured.recovered_s)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Expected, MeasuredJson, Timings};

    fn entry(id: &str, verdict: Verdict, first_error: Option<f64>, stall: f64) -> Entry {
        Entry {
            id: id.into(),
            name: id.into(),
            target: "tgt".into(),
            verdict,
            reasons: vec!["why".into()],
            settings: Default::default(),
            point: Default::default(),
            faults: Vec::new(),
            expected: Expected {
                first_error_s: first_error,
                tolerance_s: 1.5,
                borderline: false,
                imprecise: false,
                detection_s: None,
                max_stall_s: None,
                recovery_s: None,
                possible_damage: Vec::new(),
                fs_recovery: None,
                notes: vec![],
            },
            measured: MeasuredJson {
                first_error_s: first_error,
                max_stall_s: stall,
                recovered_s: Some(1.0),
                ..MeasuredJson::default()
            },
            timings: Timings::default(),
        }
    }

    fn report(entries: Vec<Entry>) -> Report {
        Report {
            scenarios: entries,
            ..Report::default()
        }
    }

    #[test]
    fn noise_inside_tolerance_is_quiet() {
        let old = report(vec![
            entry("a@tgt", Verdict::Pass, Some(9.2), 9.2),
            entry("b@tgt", Verdict::Pass, None, 3.0),
        ]);
        let new = report(vec![
            entry("a@tgt", Verdict::Pass, Some(9.9), 9.9),
            entry("b@tgt", Verdict::Pass, None, 3.4),
        ]);
        let c = compare(&old, &new, Options::default());
        assert_eq!(c.regressions, Vec::<String>::new());
        assert_eq!(c.compared, 2);
    }

    /// replacement_timeout 20 -> 5 under a 12 s outage: the error appears.
    #[test]
    fn an_error_that_appears_moves_or_vanishes_is_a_regression() {
        let old = report(vec![
            entry("ride@tgt", Verdict::Pass, None, 12.4),
            entry("fail@tgt", Verdict::Pass, Some(9.0), 9.0),
            entry("ha@tgt", Verdict::Pass, Some(9.0), 9.0),
        ]);
        let new = report(vec![
            entry("ride@tgt", Verdict::Pass, Some(9.1), 9.1),
            entry("fail@tgt", Verdict::Pass, Some(24.0), 24.0),
            entry("ha@tgt", Verdict::Pass, None, 9.3),
        ]);
        let c = compare(&old, &new, Options::default());
        assert_eq!(
            c.regressions,
            [
                "ride@tgt: first error appeared at 9.1 s (baseline: none)",
                "fail@tgt: first error moved 9.0 s -> 24.0 s (tolerance 1.5 s)",
                "fail@tgt: longest stall grew 9.0 s -> 24.0 s (tolerance 1.5 s)",
                "ha@tgt: first error vanished (baseline: 9.0 s): the I/O no longer fails",
            ]
        );
    }

    #[test]
    fn verdicts_missing_runs_and_given_tolerances() {
        let old = report(vec![
            entry("a", Verdict::Pass, None, 1.0),
            entry("b", Verdict::Fail, None, 1.0),
            entry("gone", Verdict::Pass, None, 1.0),
        ]);
        let new = report(vec![
            entry("a", Verdict::Error, None, 0.0),
            entry("b", Verdict::Pass, None, 1.0),
            entry("new", Verdict::Pass, None, 1.0),
        ]);
        let c = compare(&old, &new, Options::default());
        assert_eq!(
            c.regressions,
            [
                "a: verdict pass -> error (why)",
                "gone: in the baseline, not run this time"
            ]
        );
        assert_eq!(
            c.notes,
            [
                "b: now passes (was Fail)",
                "new: new run (not in the baseline)",
            ]
        );
        // Allowed, the missing run is a note.
        let allow = Options {
            allow_missing: true,
            ..Options::default()
        };
        let c = compare(&old, &new, allow);
        assert_eq!(c.regressions, ["a: verdict pass -> error (why)"]);
        assert_eq!(c.notes[2], "gone: in the baseline, not run this time");
        // A tighter tolerance flags what the run's own would not.
        let old = report(vec![entry("a", Verdict::Pass, Some(9.0), 9.0)]);
        let new = report(vec![entry("a", Verdict::Pass, Some(9.8), 9.8)]);
        assert!(compare(&old, &new, Options::default())
            .regressions
            .is_empty());
        let tight = Options {
            tolerance_s: Some(0.5),
            ..Options::default()
        };
        assert_eq!(compare(&old, &new, tight).regressions.len(), 2);
    }

    #[test]
    fn unmeasured_runs_and_empty_reports_are_regressions() {
        let old = report(vec![
            entry("a", Verdict::Fail, Some(9.0), 9.0),
            entry("b", Verdict::Fail, Some(9.0), 9.0),
        ]);
        let new = report(vec![
            entry("a", Verdict::Skipped, None, 0.0),
            entry("b", Verdict::Error, None, 0.0),
        ]);
        let c = compare(&old, &new, Options::default());
        assert_eq!(
            c.regressions,
            [
                "a: skipped (baseline: measured)",
                "b: error (baseline: measured)"
            ]
        );
        let c = compare(&old, &report(vec![]), Options::default());
        assert_eq!(c.regressions.len(), 3, "{:?}", c.regressions);
        assert_eq!(
            c.regressions[2],
            "none of the baseline's runs is in this report"
        );
    }

    #[test]
    fn differing_settings_are_listed_per_key_and_change() {
        let with = |id: &str, settings: &[(&str, &str)]| {
            let mut e = entry(id, Verdict::Pass, None, 1.0);
            e.settings = settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            e
        };
        let rt = "node.session.timeo.replacement_timeout";
        let login = "node.conn[0].timeo.login_timeout";
        let old = report(vec![
            with("a", &[(rt, "10"), (login, "5")]),
            with("b", &[(rt, "10")]),
        ]);
        let new = report(vec![with("a", &[(rt, "120")]), with("b", &[(rt, "120")])]);
        let c = compare(&old, &new, Options::default());
        assert_eq!(
            c.settings,
            [
                "node.conn[0].timeo.login_timeout 5 -> (unset) (1 run)",
                "replacement_timeout 10 -> 120 (2 runs)"
            ]
        );
    }
}
