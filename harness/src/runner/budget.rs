//! `budget`: the runs of a ride-through budget. The oracle's boundary per
//! target is said first ([`predictions`]); then, target by target, single
//! runs on both sides of it bisect to the resolution ([`measure`]). What to
//! run next and what a run makes of the bracket is decided in
//! [`crate::plan::budget`]; this carries the runs out.

use super::{suite, RunContext};
use crate::check::Verdict;
use crate::plan::budget::{Answer, Bisect, Boundary, Search};
use crate::report::events::{Reporters, RunEvent};
use crate::report::progress::Progress;
use crate::report::Report;

/// The oracle's answer on each of `targets`, said on stderr before
/// anything runs.
pub fn predictions<'t>(
    search: &Search,
    targets: impl IntoIterator<Item = &'t str>,
) -> Vec<(&'t str, Answer)> {
    targets
        .into_iter()
        .map(|target| {
            let answer = search.predict(target);
            eprintln!(
                "iscsi-chaos: budget on {target}: the oracle predicts {}",
                said(search, &answer)
            );
            (target, answer)
        })
        .collect()
}

/// The oracle's answer in words: "KEY up to X rides through, ...".
pub fn said(search: &Search, answer: &Answer) -> String {
    let (vary, lo, hi) = (&search.vary, search.lo, search.hi);
    match answer {
        Answer::Boundary(b) => {
            let (ride, fail) = if b.rising() {
                (format!("up to {}", b.ride), format!("from {}", b.fail))
            } else {
                (format!("from {}", b.ride), format!("up to {}", b.fail))
            };
            let race = if (b.fail - b.ride).abs() > search.step() + 1e-9 {
                ", a race between"
            } else {
                ""
            };
            format!(
                "{vary} {ride} rides through, {fail} it fails{race}: boundary {} ± {:.1}",
                b.centre(),
                b.tolerance()
            )
        }
        Answer::RidesThrough => {
            format!("{vary} rides through the whole range {lo}..{hi}: no boundary in it")
        }
        Answer::Fails => format!("{vary} fails over the whole range {lo}..{hi}: no boundary in it"),
        Answer::Unknown => format!(
            "nothing certain of {vary} in {lo}..{hi} (a race, or no valid scenario, at every value)"
        ),
    }
}

/// What the budget's runs found.
pub struct Measured {
    /// Every run's report entry.
    pub report: Report,
    /// One budget per target (budget.json's `budgets`).
    pub budgets: Vec<serde_json::Value>,
    /// 1 when a boundary was not found, not measured, or outside its
    /// tolerance; 0 otherwise.
    pub status: u8,
}

/// Bisects each predicted boundary of `scenario` (its name) with single
/// runs in `ctx`, their progress on stderr; a result line per target on
/// stdout. Stops at an interrupted run.
pub async fn measure(
    ctx: &RunContext,
    search: &Search,
    scenario: &str,
    predictions: Vec<(&str, Answer)>,
) -> Measured {
    let (vary, lo, hi, resolution) = (&search.vary, search.lo, search.hi, search.resolution);
    let mut progress = Reporters(vec![Box::new(Progress::stderr())]);
    let mut report = Report::default();
    let mut budgets = Vec::new();
    let mut status = 0;
    'targets: for (target, answer) in predictions {
        let boundary: Boundary = match answer {
            Answer::Boundary(b) => b,
            // An answer of its own: nothing to bisect.
            Answer::RidesThrough | Answer::Fails => {
                println!(
                    "budget of {scenario} on {target}: the oracle predicts {}; nothing run",
                    said(search, &answer)
                );
                continue;
            }
            Answer::Unknown => {
                status = 1;
                continue;
            }
        };
        let predicted = boundary.centre();
        let mut bisect = Bisect::new(&boundary, resolution, lo, hi, search.grain);
        let mut runs = Vec::new();
        while let Some(v) = bisect.next_value() {
            let planned = match search.point(v, target) {
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
            let got = suite::run_all(ctx.clone(), &plan, 1, &mut progress).await;
            let Some(entry) = got.scenarios.into_iter().next() else {
                break 'targets; // interrupted
            };
            let measured = matches!(entry.verdict, Verdict::Pass | Verdict::Fail);
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
                "budget of {scenario} on {target}: {vary} {} {m} rides through (fails at {}), predicted {predicted} ± {:.1}: {:+.1} s{}",
                if boundary.rising() { "up to" } else { "from" },
                bisect.fail().unwrap_or(m),
                boundary.tolerance(),
                m - predicted,
                if (m - predicted).abs() > boundary.tolerance() { ", outside the tolerance" } else { "" }
            ),
            None => format!(
                "budget of {scenario} on {target}: no boundary found in {lo}..{hi} (predicted {predicted}); longest ride-through {:?}, shortest failure {:?}",
                bisect.ride(), bisect.fail()
            ),
        };
        println!("{line}");
        if measured.is_none_or(|m| (m - predicted).abs() > boundary.tolerance()) {
            status = 1;
        }
        budgets.push(serde_json::json!({
            "scenario": scenario, "target": target, "vary": vary, "resolution_s": resolution,
            "predicted": predicted, "predicted_ride": boundary.ride, "predicted_fail": boundary.fail,
            "tolerance_s": boundary.tolerance(), "ride": bisect.ride(), "fail": bisect.fail(),
            "measured": measured, "runs": runs,
        }));
    }
    Measured {
        report,
        budgets,
        status,
    }
}
