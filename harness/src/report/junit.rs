//! `junit.xml`: one test case per run id (classname: the scenario), for CI
//! systems that show JUnit results. A failed run is a `<failure>`, an
//! errored one an `<error>`, each with its reasons; a skipped run is
//! `<skipped>`. Each case's properties carry the initiator settings
//! (`setting.<key>`), the sweep point (`point.<axis>`), and the expected
//! and measured figures, so a CI page shows why without the report.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::events::{Reporter, RunEvent};
use super::out::OutDir;
use super::{Entry, Report, Verdict};

pub const FILE: &str = "junit.xml";

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "none".into(), |x| format!("{x:.3}"))
}

/// The figures a case carries, in a fixed order.
fn properties(e: &Entry) -> Vec<Property> {
    let mut p = Vec::new();
    // Secrets are redacted in the entry already.
    for (k, v) in &e.settings {
        p.push(Property::new(format!("setting.{k}"), v.as_str()));
    }
    for (k, v) in &e.measured.effective {
        p.push(Property::new(format!("effective.{k}"), v.as_str()));
    }
    for w in &e.measured.settings_warnings {
        p.push(Property::new("warning", w.as_str()));
    }
    for (k, v) in &e.point {
        p.push(Property::new(format!("point.{k}"), v.as_str()));
    }
    for f in &e.faults {
        p.push(Property::new("fault", f.label.as_str()));
    }
    let x = &e.expected;
    let m = &e.measured;
    let figures = [
        ("expected.first_error_s", opt(x.first_error_s)),
        ("expected.tolerance_s", format!("{:.3}", x.tolerance_s)),
        ("expected.borderline", x.borderline.to_string()),
        (
            "expected.max_stall_s",
            x.max_stall_s
                .map_or_else(|| "none".into(), |w| format!("{:.3}-{:.3}", w.lo, w.hi)),
        ),
        ("measured.first_error_s", opt(m.first_error_s)),
        ("measured.errors", m.errors.to_string()),
        ("measured.max_stall_s", format!("{:.3}", m.max_stall_s)),
        ("measured.recovered_s", opt(m.recovered_s)),
        (
            "measured.lost_writes",
            format!("{}/{}", m.lost_writes, m.acked_writes),
        ),
        ("measured.ops", m.ops.to_string()),
    ];
    for (k, v) in figures {
        p.push(Property::new(k, v));
    }
    p
}

fn case(e: &Entry) -> TestCase {
    let reasons = e.reasons.join("\n");
    let status = match e.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Skipped => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(reasons);
            s
        }
        Verdict::Fail | Verdict::Error => {
            let kind = if e.verdict == Verdict::Fail {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(e.reasons.first().cloned().unwrap_or_default());
            s.set_type(e.verdict.as_str());
            s.set_description(reasons);
            s
        }
    };
    let mut c = TestCase::new(e.id.as_str(), status);
    c.set_classname(e.name.as_str());
    let t = &e.timings;
    let secs: f64 = [t.setup_s, t.timeline_s, t.teardown_s]
        .iter()
        .flatten()
        .sum();
    c.set_time(Duration::from_secs_f64(secs.max(0.0)));
    c.add_properties(properties(e));
    c
}

/// The JUnit document of a report (deterministic: no timestamps, no ids).
pub fn junit(report: &Report) -> String {
    let mut suite = TestSuite::new("iscsi-chaos");
    if let Some(shard) = &report.shard {
        suite.add_property(Property::new("shard", shard.as_str()));
    }
    suite.add_test_cases(report.scenarios.iter().map(case));
    let mut r = quick_junit::Report::new("iscsi-chaos");
    r.add_test_suite(suite);
    r.to_string().expect("a JUnit report serializes")
}

/// Writes `junit.xml` when the suite ends.
pub struct Junit {
    pub out: OutDir,
}

impl Reporter for Junit {
    fn event(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::SuiteFinished { report } = event {
            self.out.write_or_say(FILE, junit(report).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EntryExt, Timings};

    #[test]
    fn each_run_is_a_case_that_junit_readers_parse_back() {
        let plan = crate::plan::minimal("s", &["tgt", "lio"]);
        let mut report = Report::default();
        for (p, verdict) in plan.iter().zip([Verdict::Fail, Verdict::Skipped]) {
            report.push(Entry::unchecked(
                &p.run,
                &p.prediction,
                verdict,
                "first error: expected none, measured 3.0 s",
                Timings::default(),
            ));
        }
        let xml = junit(&report);
        let back = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit parses");
        assert_eq!((back.tests, back.failures, back.skipped), (2, 1, 1));
        let cases = &back.test_suites[0].test_cases;
        assert_eq!(cases[0].name.as_str(), "s@tgt");
        assert_eq!(cases[0].classname.as_ref().unwrap().as_str(), "s");
        assert!(
            xml.contains("message=\"first error: expected none, measured 3.0 s\""),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"expected.first_error_s\" value=\"none\""),
            "{xml}"
        );
    }
}
