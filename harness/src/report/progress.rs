//! Progress on standard error: which run of how many, each run's phase
//! (setup, fault, verify, teardown), the elapsed time and an estimate of
//! the rest; then each run's verdict. On a terminal a live bar (indicatif)
//! holds the running runs' phases; elsewhere (CI logs, pipes) every change
//! is one plain line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::events::{Phase, Reporter, RunEvent};
use crate::plan::shard::expected_s;
use crate::plan::Exclusive;

/// `plain` or `bar`: how progress is shown, whatever standard error is.
pub const PROGRESS_ENV: &str = "ISCSI_CHAOS_PROGRESS";

/// What is known of the suite so far, for the estimate.
#[derive(Debug, Default)]
struct Suite {
    /// Each run's expected duration (plan order).
    expected: Vec<f64>,
    /// Whether it runs alone (its time is not shared with other lanes).
    alone: Vec<bool>,
    /// What it holds for itself (runs holding the same go one after another).
    holds: Vec<Option<Exclusive>>,
    /// Runs that started: when, and their phase; `None` once finished.
    running: Vec<Option<(Instant, Phase)>>,
    /// Each run's place in the order runs started (1-based; 0: not yet).
    ordinal: Vec<usize>,
    started_runs: usize,
    finished: Vec<bool>,
    jobs: usize,
    started: Option<Instant>,
}

/// Seconds of the suite still to go: the expected work not yet done
/// (a running run counts what it has used of its expectation, never more),
/// spread over `jobs` lanes, but for runs that go `alone`, one after
/// another; and no shorter than the chain of runs holding one same thing.
pub fn remaining_s(
    expected: &[f64],
    alone: &[bool],
    holds: &[Option<Exclusive>],
    finished: &[bool],
    elapsed: &[Option<f64>],
    jobs: usize,
) -> f64 {
    let (mut shared, mut by_itself) = (0.0, 0.0);
    let mut chains: std::collections::HashMap<Exclusive, f64> = Default::default();
    for (i, &e) in expected.iter().enumerate() {
        if finished.get(i).copied().unwrap_or(false) {
            continue;
        }
        let used = elapsed.get(i).copied().flatten().unwrap_or(0.0);
        // A run past its expectation still has a little to go.
        let left = (e - used).max(e * 0.05);
        if alone.get(i).copied().unwrap_or(false) {
            by_itself += left;
        } else {
            shared += left;
            if let Some(thing) = holds.get(i).copied().flatten() {
                *chains.entry(thing).or_default() += left;
            }
        }
    }
    let longest_chain = chains.into_values().fold(0.0, f64::max);
    (shared / jobs.max(1) as f64).max(longest_chain) + by_itself
}

/// `1m05s`, `42s`.
pub fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl Suite {
    fn remaining_s(&self, now: Instant) -> f64 {
        let elapsed: Vec<Option<f64>> = self
            .running
            .iter()
            .map(|r| r.map(|(t, _)| now.duration_since(t).as_secs_f64()))
            .collect();
        remaining_s(
            &self.expected,
            &self.alone,
            &self.holds,
            &self.finished,
            &elapsed,
            self.jobs,
        )
    }

    fn done(&self) -> usize {
        self.finished.iter().filter(|f| **f).count()
    }

    /// `elapsed 2m10s, about 14m00s left`.
    fn clock(&self, now: Instant) -> String {
        let elapsed = self
            .started
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        format!(
            "elapsed {}, about {} left",
            duration(elapsed),
            duration(self.remaining_s(now))
        )
    }

    /// The running runs and their phases, for the live bar.
    fn phases(&self, plan_ids: &[String]) -> String {
        let mut parts: Vec<String> = self
            .running
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|(_, p)| format!("{} {}", plan_ids[i], p.as_str())))
            .collect();
        parts.sort();
        parts.join(" · ")
    }
}

enum Out<W: Write> {
    Lines(W),
    Bar(ProgressBar),
}

/// The progress reporter.
pub struct Progress<W: Write> {
    out: Out<W>,
    suite: Suite,
    ids: Vec<String>,
}

impl<W: Write> Progress<W> {
    /// Plain lines to `out`.
    pub fn new(out: W) -> Progress<W> {
        Progress {
            out: Out::Lines(out),
            suite: Suite::default(),
            ids: Vec::new(),
        }
    }

    fn say(&mut self, line: String) {
        match &mut self.out {
            Out::Lines(w) => {
                let _ = writeln!(w, "{line}");
            }
            Out::Bar(bar) => bar.println(line),
        }
    }

    fn refresh(&mut self, now: Instant) {
        if let Out::Bar(bar) = &self.out {
            bar.set_position(self.suite.done() as u64);
            bar.set_message(format!(
                "{} | {}",
                self.suite.clock(now),
                self.suite.phases(&self.ids)
            ));
        }
    }
}

impl Progress<std::io::Stderr> {
    /// A live bar when standard error is a terminal, plain lines otherwise;
    /// `ISCSI_CHAOS_PROGRESS=plain` or `bar` decides instead (the lab sets
    /// plain: its console is a serial terminal that ends up in a log).
    pub fn stderr() -> Progress<std::io::Stderr> {
        let mut p = Progress::new(std::io::stderr());
        let bar = match std::env::var(PROGRESS_ENV).as_deref() {
            Ok("plain") => false,
            Ok("bar") => true,
            _ => {
                std::io::stderr().is_terminal()
                    && std::env::var("TERM").is_ok_and(|t| !t.is_empty() && t != "dumb")
            }
        };
        if bar {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:24.cyan/blue} {pos}/{len} runs {wide_msg}")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_secs(1));
            p.out = Out::Bar(bar);
        }
        p
    }
}

impl<W: Write> Reporter for Progress<W> {
    fn event(&mut self, event: &RunEvent<'_>) {
        let now = Instant::now();
        let total = self.suite.expected.len();
        match event {
            RunEvent::SuiteStarted { runs, jobs, why } => {
                self.suite = Suite {
                    expected: runs.iter().map(expected_s).collect(),
                    alone: runs.iter().map(|r| r.alone).collect(),
                    holds: runs.iter().map(|r| r.holds).collect(),
                    running: vec![None; runs.len()],
                    ordinal: vec![0; runs.len()],
                    started_runs: 0,
                    finished: vec![false; runs.len()],
                    jobs: *jobs,
                    started: Some(now),
                };
                self.ids = runs.iter().map(|r| r.id.clone()).collect();
                let at_a_time = if *jobs == 1 {
                    "one at a time".to_string()
                } else {
                    format!("up to {jobs} at a time")
                };
                if let Out::Bar(bar) = &self.out {
                    bar.set_length(runs.len() as u64);
                }
                self.say(format!(
                    "iscsi-chaos: {} runs, {at_a_time} ({why}); about {}",
                    runs.len(),
                    duration(self.suite.remaining_s(now))
                ));
            }
            RunEvent::RunStarted { index, planned } => {
                if let Some(r) = self.suite.running.get_mut(*index) {
                    *r = Some((now, Phase::Setup));
                }
                self.suite.started_runs += 1;
                let k = self.suite.started_runs;
                if let Some(o) = self.suite.ordinal.get_mut(*index) {
                    *o = k;
                }
                if let Out::Lines(_) = self.out {
                    self.say(format!(
                        "iscsi-chaos: [{k}/{total}] running {} on {}",
                        planned.id, planned.run.target
                    ));
                }
            }
            RunEvent::RunPhase {
                index,
                planned,
                phase,
            } => {
                if let Some(Some((_, p))) = self.suite.running.get_mut(*index) {
                    *p = *phase;
                }
                // Setup is said by "running"; the others each get a line.
                if let (Out::Lines(_), false) = (&self.out, *phase == Phase::Setup) {
                    let clock = self.suite.clock(now);
                    let k = self.suite.ordinal.get(*index).copied().unwrap_or(0);
                    self.say(format!(
                        "iscsi-chaos: [{k}/{total}] {} {} ({clock})",
                        planned.id,
                        phase.as_str()
                    ));
                }
            }
            RunEvent::RunFinished {
                index,
                planned,
                entry,
            } => {
                if let Some(r) = self.suite.running.get_mut(*index) {
                    *r = None;
                }
                if let Some(f) = self.suite.finished.get_mut(*index) {
                    *f = true;
                }
                let line = format!(
                    "iscsi-chaos: {} {} ({} of {total} done, {})",
                    planned.id,
                    entry.verdict.as_str().to_uppercase(),
                    self.suite.done(),
                    self.suite.clock(now)
                );
                self.say(line);
            }
            RunEvent::SuiteFinished { .. } => {
                if let Out::Bar(bar) = &self.out {
                    bar.finish_and_clear();
                }
            }
        }
        self.refresh(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::report::{Entry, EntryExt, Report, Timings};

    #[test]
    fn progress_counts_runs_and_says_each_phase_and_verdict() {
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
        for phase in [Phase::Setup, Phase::Fault, Phase::Verify, Phase::Teardown] {
            p.event(&RunEvent::RunPhase {
                index: 1,
                planned: &plan[1],
                phase,
            });
        }
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
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(
            lines[0].starts_with("iscsi-chaos: 2 runs, up to 2 at a time (--jobs 2); about "),
            "{text}"
        );
        // The first run to start, whatever its place in the plan.
        assert_eq!(lines[1], "iscsi-chaos: [1/2] running p@lio on lio");
        for (line, phase) in lines[2..5].iter().zip(["fault", "verify", "teardown"]) {
            assert!(
                line.starts_with(&format!(
                    "iscsi-chaos: [1/2] p@lio {phase} (elapsed 0s, about "
                )),
                "{line}"
            );
        }
        assert!(
            lines[5].starts_with("iscsi-chaos: p@lio SKIPPED (1 of 2 done, elapsed 0s"),
            "{text}"
        );
    }

    #[test]
    fn the_estimate_is_the_work_left_over_the_lanes() {
        // Two 100 s runs and one of 40 s on two lanes: one done, one half way.
        let left = remaining_s(
            &[100.0, 100.0, 40.0],
            &[false; 3],
            &[None; 3],
            &[true, false, false],
            &[None, Some(50.0), None],
            2,
        );
        assert_eq!(left, (50.0 + 40.0) / 2.0);
        // Runs that go alone (resets) take their whole time.
        let left = remaining_s(
            &[100.0, 60.0, 60.0],
            &[false, true, true],
            &[None; 3],
            &[false; 3],
            &[None; 3],
            2,
        );
        assert_eq!(left, 100.0 / 2.0 + 120.0);
        // Three multipath runs of 60 s go one after another: 180 s, though
        // the 240 s of work would take 80 s on three lanes.
        let mp = Some(Exclusive::Multipathd);
        let left = remaining_s(
            &[60.0, 60.0, 60.0, 60.0],
            &[false; 4],
            &[mp, mp, mp, None],
            &[false; 4],
            &[None; 4],
            3,
        );
        assert_eq!(left, 180.0);
        // A run over its expectation is nearly done, not negative.
        let late = remaining_s(&[100.0], &[false], &[None], &[false], &[Some(300.0)], 1);
        assert_eq!(late, 5.0);
        assert_eq!(duration(65.4), "1m05s");
        assert_eq!(duration(42.0), "42s");
    }
}
