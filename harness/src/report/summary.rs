//! `summary.md`: the suite in Markdown, for people and for GitHub's job
//! summary. When `$GITHUB_STEP_SUMMARY` is set the same text is appended to
//! that file. GitHub refuses a step summary over 1 MiB, so the text is cut
//! at whole lines below [`CAP`] and says so, and where the rest is.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::events::{Reporter, RunEvent};
use super::out::OutDir;
use super::outcome;
use super::{summary_row, Entry, Report, Verdict, SUMMARY_HEADER};

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

/// A Markdown table cell: no pipes, no line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The terminal table's row of `e`, as Markdown (the verdict marked).
fn row(e: &Entry) -> String {
    let mut cells = summary_row(e);
    cells[2] = mark(e.verdict).to_string();
    let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    format!("| {} |\n", cells.join(" | "))
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
    let warned: Vec<&Entry> = report
        .scenarios
        .iter()
        .filter(|e| !e.measured.settings_warnings.is_empty())
        .collect();
    if !warned.is_empty() {
        lines.push("### Timers other than asked\n\n".into());
        for e in warned {
            for w in &e.measured.settings_warnings {
                lines.push(format!("- `{}`: {}\n", e.id, w.replace('\n', " ")));
            }
        }
        lines.push("\n".into());
    }
    lines.push(format!(
        "| {} |\n|{}\n",
        SUMMARY_HEADER.join(" | "),
        "---|".repeat(SUMMARY_HEADER.len())
    ));
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
            // Never through a symlink planted under the file's name.
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
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
        let table = md.find("| scenario | target | verdict").unwrap();
        assert!(failures < table, "{md}");
        assert!(
            md.contains("- `s0@tgt` ❌ fail\n  - first error: expected none, measured 0.0 s | x\n")
        );
        assert!(md.contains("| s | tgt | ✅ pass | - | none |"), "{md}");
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

    #[test]
    fn the_step_summary_is_never_written_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let link = tmp.path().join("step_summary");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let mut summary = Summary {
            out: OutDir::prepare(&out).unwrap(),
            step_summary: Some(link),
        };
        summary.event(&RunEvent::SuiteFinished { report: &report(1) });
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert!(out.join(FILE).is_file());
    }
}
