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
    /// Runs compared.
    pub compared: usize,
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "none".to_string(), |x| format!("{x:.1} s"))
}

/// Compares `new` against the baseline `old`; `tolerance_s` overrides
/// each run's own.
pub fn compare(old: &Report, new: &Report, tolerance_s: Option<f64>) -> Comparison {
    let mut c = Comparison::default();
    for n in &new.scenarios {
        let Some(o) = old.scenarios.iter().find(|o| o.id == n.id) else {
            c.notes
                .push(format!("{}: new run (not in the baseline)", n.id));
            continue;
        };
        c.compared += 1;
        let tol = tolerance_s.unwrap_or(o.expected.tolerance_s.max(MIN_TOLERANCE_S));
        c.regressions.extend(regressions(o, n, tol));
        if o.verdict != Verdict::Pass && n.verdict == Verdict::Pass {
            c.notes
                .push(format!("{}: now passes (was {:?})", n.id, o.verdict));
        }
    }
    for o in &old.scenarios {
        if !new.scenarios.iter().any(|n| n.id == o.id) {
            c.notes
                .push(format!("{}: in the baseline, not run this time", o.id));
        }
    }
    c
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
        let c = compare(&old, &new, None);
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
        let c = compare(&old, &new, None);
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
        let c = compare(&old, &new, None);
        assert_eq!(c.regressions, ["a: verdict pass -> error (why)"]);
        assert_eq!(
            c.notes,
            [
                "b: now passes (was Fail)",
                "new: new run (not in the baseline)",
                "gone: in the baseline, not run this time"
            ]
        );
        // A tighter tolerance flags what the run's own would not.
        let old = report(vec![entry("a", Verdict::Pass, Some(9.0), 9.0)]);
        let new = report(vec![entry("a", Verdict::Pass, Some(9.8), 9.8)]);
        assert!(compare(&old, &new, None).regressions.is_empty());
        assert_eq!(compare(&old, &new, Some(0.5)).regressions.len(), 2);
    }
}
