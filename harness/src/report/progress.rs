//! Progress lines on standard error: which run of how many, and its verdict.

use std::io::Write;

use super::events::{Reporter, RunEvent};

/// Writes `iscsi-chaos: [k/n] running ...` and the verdict of each run.
pub struct Progress<W: Write> {
    out: W,
    total: usize,
}

impl<W: Write> Progress<W> {
    pub fn new(out: W) -> Progress<W> {
        Progress { out, total: 0 }
    }
}

impl<W: Write> Reporter for Progress<W> {
    fn event(&mut self, event: &RunEvent<'_>) {
        let _ = match event {
            RunEvent::SuiteStarted { runs, jobs, why } => {
                self.total = runs.len();
                let at_a_time = if *jobs == 1 {
                    "one at a time".to_string()
                } else {
                    format!("up to {jobs} at a time")
                };
                writeln!(
                    self.out,
                    "iscsi-chaos: {} runs, {at_a_time} ({why})",
                    runs.len()
                )
            }
            RunEvent::RunStarted { index, planned } => writeln!(
                self.out,
                "iscsi-chaos: [{}/{}] running {} on {}",
                index + 1,
                self.total,
                planned.id,
                planned.run.target
            ),
            RunEvent::RunFinished { planned, entry, .. } => writeln!(
                self.out,
                "iscsi-chaos: {} {}",
                planned.id,
                entry.verdict.as_str().to_uppercase()
            ),
            RunEvent::SuiteFinished { .. } => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::report::{Entry, EntryExt, Report, Timings};

    #[test]
    fn progress_counts_runs_and_says_each_verdict() {
        let plan = crate::plan::minimal("p", &["tgt", "lio"]);
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out);
        p.event(&RunEvent::SuiteStarted {
            runs: &plan,
            jobs: 2,
            why: "--jobs 2",
        });
        p.event(&RunEvent::RunStarted {
            index: 1,
            planned: &plan[1],
        });
        let entry = Entry::unchecked(
            &plan[1].run,
            &plan[1].prediction,
            Verdict::Skipped,
            "no LIO".to_string(),
            Timings::default(),
        );
        p.event(&RunEvent::RunFinished {
            index: 1,
            planned: &plan[1],
            entry: &entry,
        });
        p.event(&RunEvent::SuiteFinished {
            report: &Report::default(),
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "iscsi-chaos: 2 runs, up to 2 at a time (--jobs 2)\n\
             iscsi-chaos: [2/2] running p@lio on lio\niscsi-chaos: p@lio SKIPPED\n"
        );
    }
}
