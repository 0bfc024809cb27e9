//! The ride-through budget: the value of one scenario parameter (an
//! outage's length, `fault[0].duration_s`, or a timer such as
//! `replacement_timeout`) where the settings stop riding out the faults
//! without an I/O error, whichever way it runs. The oracle proposes the
//! boundary ([`predicted_boundary`]); runs on both sides of it confirm it
//! and bisect to the resolution asked for ([`Bisect`]). [`Search`] makes
//! the planned run at each value, its run stretched to hold the faults
//! ([`load_stretched`]). Pure: the caller carries out the runs
//! (`runner::budget`).

use std::path::{Path, PathBuf};

use super::PlannedRun;
use crate::model::Scenario;
use crate::oracle::Prediction;
use crate::parse::sweep::{self, Axis};
use crate::parse::LoadError;

/// Values are kept to a tenth of a second (what a scenario's times hold),
/// or to whole numbers (`grain` 1) for a key that takes only those.
fn rounded(x: f64, grain: f64) -> f64 {
    if grain >= 1.0 {
        x.round()
    } else {
        (x * 10.0).round() / 10.0
    }
}

fn tenth(x: f64) -> f64 {
    rounded(x, 0.1)
}

/// The oracle's boundary: the value nearest the failing side predicted to
/// ride through, and the value nearest the riding side predicted to fail
/// for certain (not a race). Between the two the oracle calls the outcome
/// a race (borderline); they are one step apart when it does not. `ride`
/// is below `fail` when failures come with larger values (an outage's
/// length), above it when they come with smaller ones (a timeout).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Boundary {
    pub ride: f64,
    pub fail: f64,
}

impl Boundary {
    /// Where a measured boundary is expected: the middle of the race.
    pub fn centre(&self) -> f64 {
        tenth((self.ride + self.fail) / 2.0)
    }

    /// How far a measured boundary may be from [`Boundary::centre`]: half
    /// the race, plus the oracle's tolerance.
    pub fn tolerance(&self) -> f64 {
        (self.fail - self.ride).abs() / 2.0 + crate::model::timing::TOLERANCE_S
    }

    /// Whether larger values fail (and smaller ones ride through).
    pub fn rising(&self) -> bool {
        self.fail > self.ride
    }
}

/// What the oracle says of a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    Boundary(Boundary),
    /// Every value of the range rides through.
    RidesThrough,
    /// Every value of the range fails.
    Fails,
    /// No value of the range the oracle is sure of (races, or no valid
    /// scenario).
    Unknown,
}

impl Answer {
    pub fn boundary(&self) -> Option<Boundary> {
        match self {
            Answer::Boundary(b) => Some(*b),
            Answer::RidesThrough | Answer::Fails | Answer::Unknown => None,
        }
    }
}

/// The values of `lo..=hi` in steps of `step` (whole numbers when `step`
/// is 1).
fn values(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut v = if step >= 1.0 { lo.ceil() } else { tenth(lo) };
    while v <= hi + 1e-9 {
        out.push(v);
        v = rounded(v + step, step.min(1.0));
    }
    out
}

/// The oracle's answer over `lo..=hi`, scanned in steps of `step`:
/// `predict(v)` is the prediction at `v` (`None`: no valid scenario
/// there). The outcome is taken as monotone, either way: the range's two
/// ends (the outermost values the oracle is sure of) say which way it
/// runs, or that it does not change; the scan then walks from the riding
/// end to the first certain failure.
pub fn predicted_boundary(
    mut predict: impl FnMut(f64) -> Option<Prediction>,
    lo: f64,
    hi: f64,
    step: f64,
) -> Answer {
    // Some(true): fails for certain; Some(false): rides through; None: a
    // race or no scenario.
    let sure = |p: Option<Prediction>| match p {
        Some(p) if p.first_error_s.is_none() => Some(false),
        Some(p) if !p.borderline => Some(true),
        _ => None,
    };
    let outcomes: Vec<(f64, Option<bool>)> = values(lo, hi, step)
        .into_iter()
        .map(|v| (v, sure(predict(v))))
        .collect();
    let mut decided = outcomes.iter().filter_map(|&(v, o)| Some((v, o?)));
    let (Some(first), last) = (decided.next(), decided.next_back()) else {
        return Answer::Unknown;
    };
    let last = last.unwrap_or(first);
    match (first.1, last.1) {
        (false, false) => return Answer::RidesThrough,
        (true, true) => return Answer::Fails,
        _ => {}
    }
    // From the riding end towards the failing one.
    let from_ride: Box<dyn Iterator<Item = &(f64, Option<bool>)>> = if first.1 {
        Box::new(outcomes.iter().rev())
    } else {
        Box::new(outcomes.iter())
    };
    let mut last_ride = None;
    for &(v, o) in from_ride {
        match o {
            Some(false) => last_ride = Some(v),
            Some(true) => {
                if let Some(ride) = last_ride {
                    return Answer::Boundary(Boundary { ride, fail: v });
                }
            }
            None => {}
        }
    }
    Answer::Unknown
}

/// Least time a stretched run keeps after its last fault ends.
pub const MIN_TAIL_S: f64 = 10.0;

/// The scenarios of `text` with `axes` (as [`Scenario::parse_swept`]),
/// each run made long enough to hold its faults: it ends the file's own
/// time after its last fault (at least [`MIN_TAIL_S`]) when that is later
/// than the file's `duration_s`. A `duration_s` among the axes is taken as
/// given.
pub fn load_stretched(text: &str, path: &Path, axes: &[Axis]) -> Result<Vec<Scenario>, LoadError> {
    let plain = || Scenario::parse_swept(text, path, axes);
    let Ok(file) = Scenario::parse(text, path) else {
        return plain();
    };
    if axes.iter().any(|a| a.key == "duration_s") {
        return plain();
    }
    let faults_end = |s: &Scenario| s.faults.iter().map(|f| f.end_s()).fold(0.0, f64::max);
    let tail = (file.duration_s - faults_end(&file)).max(MIN_TAIL_S);
    let with_duration = |d: f64| {
        let mut all = vec![duration_axis(d)];
        all.extend_from_slice(axes);
        Scenario::parse_swept(text, path, &all)
    };
    // Where the faults end, in a run as long as any may be.
    let Ok(wide) = with_duration(crate::model::MAX_DURATION_S) else {
        return plain();
    };
    let need = wide.iter().map(faults_end).fold(0.0, f64::max) + tail;
    if need <= file.duration_s {
        return plain();
    }
    with_duration(need.ceil().min(crate::model::MAX_DURATION_S))
}

/// `duration_s = d` for every point, naming none.
fn duration_axis(d: f64) -> Axis {
    let mut a = sweep::parse_option_axis("--set", &format!("duration_s={d}"))
        .expect("duration_s is a sweep key");
    a.named = false;
    a
}

/// One budget's search: the scenario file (its text read once), the
/// settings every run gets, the key varied and the range searched.
#[derive(Debug, Clone)]
pub struct Search {
    pub text: String,
    pub path: PathBuf,
    /// Fixed for every run: they set values, they name no run.
    pub axes: Vec<Axis>,
    pub vary: String,
    pub lo: f64,
    pub hi: f64,
    pub resolution: f64,
    /// The smallest change of the varied value: 1 for a key of whole
    /// numbers, else 0.1 (see [`Search::with_grain`]).
    pub grain: f64,
}

impl Search {
    /// The planned run at `vary = value` on `target`.
    pub fn point(&self, value: f64, target: &str) -> Result<PlannedRun, String> {
        // The fixed settings set values; only the target and the varied key
        // name a run (and make the outcome map's axes).
        let mut all: Vec<Axis> = self
            .axes
            .iter()
            .cloned()
            .map(|mut a| {
                a.named = false;
                a
            })
            .collect();
        all.push(sweep::parse_cli_axis(&format!("target={target}"))?);
        all.push(sweep::parse_option_axis(
            "--vary",
            &format!("{}={value}", self.vary),
        )?);
        let scenarios = load_stretched(&self.text, &self.path, &all).map_err(|e| e.to_string())?;
        super::suite(&scenarios)
            .into_iter()
            .next()
            .ok_or_else(|| "no run at this point".to_string())
    }

    /// The search with its grain found on `target`: a key that takes a
    /// whole value at the range's start but refuses half a step more takes
    /// whole numbers only, and is stepped by ones.
    pub fn with_grain(mut self, target: &str) -> Search {
        let whole = self.lo.round();
        let takes = |v: f64| self.point(v, target).is_ok();
        self.grain = if takes(whole) && !takes(whole + 0.5) {
            1.0
        } else {
            0.1
        };
        self
    }

    /// The oracle's scan step: a tenth of the resolution, never below the
    /// grain.
    pub fn step(&self) -> f64 {
        if self.grain >= 1.0 {
            1.0
        } else {
            tenth((self.resolution / 10.0).max(0.1))
        }
    }

    /// The oracle's answer on `target` in the search's range.
    pub fn predict(&self, target: &str) -> Answer {
        predicted_boundary(
            |v| self.point(v, target).ok().map(|p| p.prediction),
            self.lo,
            self.hi,
            self.step(),
        )
    }
}

/// A bisection of measured runs around a predicted boundary, whichever
/// way it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Bisect {
    predicted: f64,
    resolution: f64,
    lo: f64,
    hi: f64,
    grain: f64,
    /// Whether larger values fail.
    rising: bool,
    /// The largest value measured with the outcome of the range's low end,
    /// and the smallest measured with that of its high end.
    below: Option<f64>,
    above: Option<f64>,
    /// How far the next probe beyond a one-sided bracket goes.
    reach: f64,
}

impl Bisect {
    /// Searches `lo..=hi` from `boundary`'s centre, in steps of `grain` at
    /// the least.
    pub fn new(boundary: &Boundary, resolution: f64, lo: f64, hi: f64, grain: f64) -> Bisect {
        let resolution = resolution.max(grain);
        Bisect {
            predicted: boundary.centre(),
            resolution,
            lo,
            hi,
            grain,
            rising: boundary.rising(),
            below: None,
            above: None,
            reach: resolution,
        }
    }

    /// The next value to run, `None` once the bracket is as narrow as the
    /// resolution (or runs against the search's bounds).
    pub fn next_value(&mut self) -> Option<f64> {
        let v = match (self.below, self.above) {
            (None, None) => self.predicted,
            (Some(r), None) => {
                if r >= self.hi {
                    return None;
                }
                let v = (r + self.reach).min(self.hi);
                self.reach *= 2.0;
                v
            }
            (None, Some(f)) => {
                if f <= self.lo {
                    return None;
                }
                let v = (f - self.reach).max(self.lo);
                self.reach *= 2.0;
                v
            }
            (Some(r), Some(f)) => {
                if f - r <= self.resolution + 1e-9 {
                    return None;
                }
                (r + f) / 2.0
            }
        };
        Some(tenth(rounded(v, self.grain)))
    }

    /// What the run at `value` showed: an I/O error or not.
    pub fn record(&mut self, value: f64, errored: bool) {
        if errored == self.rising {
            self.above = Some(self.above.map_or(value, |f| f.min(value)));
        } else {
            self.below = Some(self.below.map_or(value, |r| r.max(value)));
        }
    }

    /// The value measured to ride through nearest the failures.
    pub fn ride(&self) -> Option<f64> {
        if self.rising {
            self.below
        } else {
            self.above
        }
    }

    /// The value measured to fail nearest the ride-throughs.
    pub fn fail(&self) -> Option<f64> {
        if self.rising {
            self.above
        } else {
            self.below
        }
    }

    /// The measured boundary ([`Bisect::ride`]), once both sides are known.
    pub fn measured(&self) -> Option<f64> {
        self.fail().and(self.ride())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::Window;

    fn prediction(error: bool) -> Prediction {
        Prediction {
            first_error_s: error.then_some(9.0),
            tolerance_s: 1.5,
            borderline: false,
            imprecise: false,
            detection_s: Some(Window { lo: 4.0, hi: 4.0 }),
            max_stall_s: None,
            recovery_s: None,
            notes: vec![],
            ..Prediction::default()
        }
    }

    #[test]
    fn the_oracle_boundary_is_the_last_value_predicted_to_ride_through() {
        // Errors from 9.1 s of outage on.
        let b = predicted_boundary(|v| Some(prediction(v > 9.05)), 1.0, 30.0, 0.1);
        assert_eq!(
            b,
            Answer::Boundary(Boundary {
                ride: 9.0,
                fail: 9.1
            })
        );
        // A race from 6 to 8.4 s: the boundary is its middle, told with
        // half its width more tolerance.
        let race = |v: f64| {
            let mut p = prediction(v > 5.95);
            p.borderline = (5.95..8.45).contains(&v);
            Some(p)
        };
        let b = predicted_boundary(race, 1.0, 30.0, 0.1).boundary().unwrap();
        assert_eq!(
            b,
            Boundary {
                ride: 5.9,
                fail: 8.5
            }
        );
        assert_eq!(b.centre(), 7.2);
        assert!((b.tolerance() - 2.8).abs() < 1e-9);
        assert_eq!(
            predicted_boundary(|_| Some(prediction(false)), 1.0, 5.0, 0.1),
            Answer::RidesThrough
        );
        assert_eq!(
            predicted_boundary(|_| Some(prediction(true)), 1.0, 5.0, 0.1),
            Answer::Fails
        );
        assert_eq!(predicted_boundary(|_| None, 1.0, 5.0, 0.1), Answer::Unknown);
    }

    /// A timeout: small values fail, large ones ride through; stepped by
    /// whole numbers.
    #[test]
    fn a_boundary_that_runs_the_other_way_is_found_too() {
        let mut asked = Vec::new();
        let b = predicted_boundary(
            |v| {
                asked.push(v);
                Some(prediction(v < 31.0))
            },
            1.0,
            120.0,
            1.0,
        );
        assert_eq!(
            b,
            Answer::Boundary(Boundary {
                ride: 31.0,
                fail: 30.0
            })
        );
        assert!(asked.iter().all(|v| v.fract() == 0.0), "{asked:?}");
        let b = b.boundary().unwrap();
        assert!(!b.rising());
        assert_eq!((b.centre(), b.tolerance()), (30.5, 2.0));
    }

    const SCENARIO: &str = "version = 1\nduration_s = 60\n[lane]\ntarget = [\"tgt\", \"lio\"]\n\
                   [[fault]]\nkind = \"blackhole\"\nstart_s = 2\nduration_s = 3\n";

    fn search(text: &str, axes: &[&str], vary: &str, lo: f64, hi: f64) -> Search {
        Search {
            text: text.into(),
            path: "dir/b.toml".into(),
            axes: axes
                .iter()
                .map(|a| sweep::parse_option_axis("--set", a).unwrap())
                .collect(),
            vary: vary.into(),
            lo,
            hi,
            resolution: 1.0,
            grain: 0.1,
        }
        .with_grain("tgt")
    }

    #[test]
    fn a_search_plans_one_run_per_value_and_target() {
        let search = search(
            SCENARIO,
            &["replacement_timeout=20"],
            "fault[0].duration_s",
            1.0,
            50.0,
        );
        assert_eq!(search.grain, 0.1);
        let run = search.point(12.5, "lio").unwrap();
        assert_eq!(run.run.target.to_string(), "lio");
        assert_eq!(run.run.scenario.faults[0].duration_s, 12.5);
        // The fixed setting names no run; the target and the varied key do.
        assert!(!run.id.contains("replacement_timeout"), "{}", run.id);
        assert!(run.id.contains("12.5"), "{}", run.id);
        assert!(search.point(12.5, "nope").is_err());
        // Past 20 s of replacement_timeout (plus detection) the outage fails.
        let b = search.predict("tgt").boundary().unwrap();
        assert!(b.ride > 20.0 && b.fail < 40.0 && b.rising(), "{b:?}");
        // A fault longer than the run stretches the run, keeping the
        // file's time after the fault.
        let run = search.point(90.0, "tgt").unwrap();
        assert_eq!(run.run.scenario.duration_s, 147.0);
        assert_eq!(
            search.point(30.0, "tgt").unwrap().run.scenario.duration_s,
            87.0
        );
        assert_eq!(
            search.point(3.0, "tgt").unwrap().run.scenario.duration_s,
            60.0
        );
    }

    /// The acceptance check of issue 31: a 40 s blackhole with NOP-Outs of
    /// 5/5 s. R = 5 fails, R = 40 rides out: the boundary of
    /// replacement_timeout lies between, found stepping whole seconds.
    #[test]
    fn a_timer_is_searched_by_whole_numbers_whichever_way_it_runs() {
        let fixed = [
            "fault[0].duration_s=40",
            "noop_out_interval=5",
            "noop_out_timeout=5",
        ];
        let search = search(SCENARIO, &fixed, "replacement_timeout", 1.0, 120.0);
        assert_eq!(search.grain, 1.0);
        let b = search.predict("tgt").boundary().expect("a boundary");
        assert!(!b.rising(), "{b:?}");
        assert!((28.0..=42.0).contains(&b.centre()), "{b:?}");
        assert_eq!((b.ride.fract(), b.fail.fract()), (0.0, 0.0));
        // The NOP-Out interval: an answer either way, never "none".
        let search = search_interval(&fixed);
        assert_ne!(search.predict("tgt"), Answer::Unknown);
    }

    fn search_interval(fixed: &[&str]) -> Search {
        search(SCENARIO, fixed, "noop_out_interval", 1.0, 80.0)
    }

    /// The values `b` runs, `errors(v)` saying what each showed.
    fn bisected(b: &mut Bisect, errors: impl Fn(f64) -> bool) -> Vec<f64> {
        let mut runs = Vec::new();
        while let Some(v) = b.next_value() {
            runs.push(v);
            b.record(v, errors(v));
            assert!(runs.len() < 20, "{runs:?}");
        }
        runs
    }

    #[test]
    fn bisection_brackets_the_measured_boundary_to_the_resolution() {
        // The real boundary is at 11.3 s; the oracle said 9.
        let truth = 11.3;
        let predicted = Boundary {
            ride: 8.9,
            fail: 9.1,
        };
        let mut b = Bisect::new(&predicted, 1.0, 1.0, 60.0, 0.1);
        let runs = bisected(&mut b, |v| v > truth);
        let (ride, fail) = (b.ride().unwrap(), b.fail().unwrap());
        assert!(
            ride <= truth && truth < fail && fail - ride <= 1.0,
            "{runs:?}"
        );
        assert_eq!(b.measured(), Some(ride));
        // Out from the prediction by 1, 2, 4 s, then halving.
        assert_eq!(&runs[..4], &[9.0, 10.0, 12.0, 11.0]);
    }

    #[test]
    fn a_falling_boundary_is_bisected_in_whole_numbers() {
        // Errors up to R = 33, rides through from 34; the oracle said 30.5.
        let predicted = Boundary {
            ride: 31.0,
            fail: 30.0,
        };
        let mut b = Bisect::new(&predicted, 1.0, 1.0, 120.0, 1.0);
        let runs = bisected(&mut b, |v| v <= 33.0);
        assert!(runs.iter().all(|v| v.fract() == 0.0), "{runs:?}");
        assert_eq!((b.ride(), b.fail()), (Some(34.0), Some(33.0)));
        assert_eq!(b.measured(), Some(34.0));
    }

    #[test]
    fn a_boundary_below_the_prediction_is_searched_downwards_and_bounded() {
        let predicted = Boundary {
            ride: 8.9,
            fail: 9.1,
        };
        let mut b = Bisect::new(&predicted, 1.0, 1.0, 60.0, 0.1);
        let runs = bisected(&mut b, |_| true); // everything fails
        assert_eq!(runs, [9.0, 8.0, 6.0, 2.0, 1.0]);
        assert_eq!(b.measured(), None);
    }
}
