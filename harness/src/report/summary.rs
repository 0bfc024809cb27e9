//! `summary.md`: the suite in Markdown, for people and for GitHub's job
//! summary. When `$GITHUB_STEP_SUMMARY` is set the same text is appended to
//! that file. GitHub refuses a step summary over 1 MiB, so the text is cut
//! at whole lines below [`CAP`] and says so, and where the rest is.

use std::io::Write;
use std::path::PathBuf;

use super::events::{Reporter, RunEvent};
use super::out::OutDir;
use super::outcome;
use super::{Entry, Report, Verdict};

pub const FILE: &str = "summary.md";

/// GitHub's limit for one step's summary is 1 MiB; keep room for the note.
pub const CAP: usize = 1024 * 1024 - 4096;

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ pass",
        Verdict::Fail => "❌ fail",
        Verdict::Error => "⚠️ error",
        Verdict::Skipped => "⏭️ skipped",
    }
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.1} s"))
}

/// A Markdown table cell: no pipes, no line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn row(e: &Entry) -> String {
    let x = &e.expected;
    let m = &e.measured;
    let ran = m.ops > 0;
    let expected = match x.first_error_s {
        Some(t) => format!("{t:.1} ± {:.1} s", x.tolerance_s),
        None => "no error".into(),
    };
    let (first, stall, recovered, lost) = if ran {
        (
            m.first_error_s
                .map_or_else(|| "no error".into(), |t| format!("{t:.1} s")),
            format!("{:.1} s", m.max_stall_s),
            secs(m.recovered_s),
            format!("{}/{}", m.lost_writes, m.acked_writes),
        )
    } else {
        ("–".into(), "–".into(), "–".into(), "–".into())
    };
    format!(
        "| `{}` | {} | {first} | {expected} | {stall} | {recovered} | {lost} |\n",
        cell(&e.id),
        mark(e.verdict)
    )
}

/// The summary of `report`, at most `cap` bytes.
pub fn markdown(report: &Report, cap: usize) -> String {
    let count = |v: Verdict| report.scenarios.iter().filter(|e| e.verdict == v).count();
    let mut head = format!(
        "## iscsi-chaos: {} runs{}\n\n{} passed, {} failed, {} errored, {} skipped\n\n",
        report.scenarios.len(),
        report
            .shard
            .as_ref()
            .map_or(String::new(), |s| format!(" (shard {s})")),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Error),
        count(Verdict::Skipped),
    );
    // What did not pass comes first: it is what a reader looks for, and it
    // survives truncation.
    let mut lines: Vec<String> = Vec::new();
    let bad: Vec<&Entry> = report
        .scenarios
        .iter()
        .filter(|e| matches!(e.verdict, Verdict::Fail | Verdict::Error))
        .collect();
    if !bad.is_empty() {
        lines.push("### Runs that did not pass\n\n".into());
        for e in bad {
            lines.push(format!("- `{}` {}\n", e.id, mark(e.verdict)));
            for r in &e.reasons {
                lines.push(format!("  - {}\n", r.replace('\n', " ")));
            }
        }
        lines.push("\n".into());
    }
    lines.push(
        "| run | verdict | first error | expected | longest stall | recovered after | lost writes |\n\
         |---|---|---|---|---|---|---|\n"
            .into(),
    );
    lines.extend(report.scenarios.iter().map(row));
    if let Some(o) = outcome::outcome(report) {
        lines.push("\n".into());
        lines.extend(
            outcome::markdown(&o)
                .replacen("# Outcome map", "### Outcome map", 1)
                .lines()
                .map(|l| format!("{l}\n")),
        );
    }
    let total = lines.len();
    let mut kept = 0;
    for line in &lines {
        // Room for the note that says what was cut.
        if head.len() + line.len() + 300 > cap {
            break;
        }
        head.push_str(line);
        kept += 1;
    }
    if kept < total {
        head.push_str(&format!(
            "\n\n**Truncated**: {} of {total} lines are not shown (GitHub's step summary holds \
             at most 1 MiB); every run is in report.json and report.html.\n",
            total - kept
        ));
    }
    head
}

/// Writes `summary.md` when the suite ends, and appends it to the GitHub
/// step summary file when one is given.
pub struct Summary {
    pub out: OutDir,
    /// `$GITHUB_STEP_SUMMARY`, if set.
    pub step_summary: Option<PathBuf>,
}

impl Reporter for Summary {
    fn event(&mut self, event: &RunEvent<'_>) {
        let RunEvent::SuiteFinished { report } = event else {
            return;
        };
        let md = markdown(report, CAP);
        self.out.write_or_say(FILE, md.as_bytes());
        if let Some(path) = &self.step_summary {
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .and_then(|mut f| f.write_all(md.as_bytes()));
            if let Err(e) = appended {
                eprintln!(
                    "iscsi-chaos: writing the step summary {}: {e}",
                    path.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::report::{EntryExt, Timings};

    fn report(n: usize) -> Report {
        let plan = crate::plan::minimal("s", &["tgt"]);
        let mut r = Report::default();
        for i in 0..n {
            let mut e = Entry::unchecked(
                &plan[0].run,
                &plan[0].prediction,
                if i % 3 == 0 {
                    Verdict::Fail
                } else {
                    Verdict::Pass
                },
                format!("first error: expected none, measured {i}.0 s | x"),
                Timings::default(),
            );
            e.id = format!("s{i}@tgt");
            r.push(e);
        }
        r
    }

    #[test]
    fn failures_come_first_with_their_reasons_then_one_row_per_run() {
        let md = markdown(&report(3), CAP);
        assert!(
            md.starts_with("## iscsi-chaos: 3 runs\n\n2 passed, 1 failed"),
            "{md}"
        );
        let failures = md.find("### Runs that did not pass").unwrap();
        let table = md.find("| run | verdict").unwrap();
        assert!(failures < table, "{md}");
        assert!(
            md.contains("- `s0@tgt` ❌ fail\n  - first error: expected none, measured 0.0 s | x\n")
        );
        assert!(md.contains("| `s1@tgt` | ✅ pass | – | no error |"), "{md}");
        assert!(!md.contains("Truncated"));
    }

    #[test]
    fn a_summary_over_the_cap_is_cut_at_a_line_and_says_so() {
        let r = report(2000);
        let full = markdown(&r, usize::MAX);
        let cut = markdown(&r, 20_000);
        assert!(full.len() > 20_000);
        assert!(cut.len() <= 20_000, "{}", cut.len());
        assert!(cut.contains("**Truncated**: "), "{cut}");
        // Whole lines only: the text before the note ends a line.
        let before = &cut[..cut.find("\n\n**Truncated**").unwrap()];
        assert!(full.starts_with(before));
        assert!(before.ends_with('\n'));
    }
}
