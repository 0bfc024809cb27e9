//! The ride-through budget: the longest value of one scenario parameter
//! (an outage's length, `fault[0].duration_s`) that the settings ride out
//! without an I/O error. The oracle proposes the boundary
//! ([`predicted_boundary`]); runs on both sides of it confirm it and
//! bisect to the resolution asked for ([`Bisect`]). [`Search`] makes the
//! planned run at each value. Pure: the caller carries out the runs
//! (`runner::budget`).

use std::path::PathBuf;

use super::PlannedRun;
use crate::oracle::Prediction;
use crate::parse::sweep::{self, Axis};

/// Values are kept to a tenth of a second (what a scenario's times hold).
fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The oracle's boundary between `lo` and `hi`, scanned in steps of
/// `resolution / 10`: the longest value predicted to ride through, and
/// the shortest predicted to fail for certain (not a race). Between the
/// two the oracle calls the outcome a race (borderline); both are equal
/// up to a step when it does not. `predict(v)` is the prediction at `v`
/// (`None`: no valid scenario there).
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
        (self.fail - self.ride) / 2.0 + crate::model::timing::TOLERANCE_S
    }
}

/// `None` when every value rides through or none does.
pub fn predicted_boundary(
    mut predict: impl FnMut(f64) -> Option<Prediction>,
    lo: f64,
    hi: f64,
    resolution: f64,
) -> Option<Boundary> {
    let step = (resolution / 10.0).max(0.1);
    let mut last_ride = None;
    let mut v = tenth(lo);
    while v <= hi + 1e-9 {
        match predict(v) {
            Some(p) if p.first_error_s.is_none() => last_ride = Some(v),
            Some(p) if !p.borderline => {
                return last_ride.map(|ride| Boundary { ride, fail: v });
            }
            _ => {}
        }
        v = tenth(v + step);
    }
    None
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
}

impl Search {
    /// The planned run at `vary = value` on `target`.
    pub fn point(&self, value: f64, target: &str) -> Result<PlannedRun, String> {
        let point = |spec: String| sweep::parse_cli_axis(&spec);
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
        all.push(point(format!("target={target}"))?);
        all.push(point(format!("{}={value}", self.vary))?);
        let scenarios = crate::model::Scenario::parse_swept(&self.text, &self.path, &all)
            .map_err(|e| e.to_string())?;
        super::suite(&scenarios)
            .into_iter()
            .next()
            .ok_or_else(|| "no run at this point".to_string())
    }

    /// The oracle's boundary on `target` in the search's range.
    pub fn predict(&self, target: &str) -> Option<Boundary> {
        predicted_boundary(
            |v| self.point(v, target).ok().map(|p| p.prediction),
            self.lo,
            self.hi,
            self.resolution,
        )
    }
}

/// A bisection of measured runs around a predicted boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct Bisect {
    predicted: f64,
    resolution: f64,
    lo: f64,
    hi: f64,
    /// The longest value measured to ride through, and the shortest
    /// measured to fail.
    pub ride: Option<f64>,
    pub fail: Option<f64>,
    /// How far the next probe beyond a one-sided bracket goes.
    reach: f64,
}

impl Bisect {
    /// Searches `lo..=hi` from the `predicted` boundary.
    pub fn new(predicted: f64, resolution: f64, lo: f64, hi: f64) -> Bisect {
        Bisect {
            predicted,
            resolution,
            lo,
            hi,
            ride: None,
            fail: None,
            reach: resolution,
        }
    }

    /// The next value to run, `None` once the bracket is as narrow as the
    /// resolution (or runs against the search's bounds).
    pub fn next_value(&mut self) -> Option<f64> {
        let v = match (self.ride, self.fail) {
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
        Some(tenth(v))
    }

    /// What the run at `value` showed: an I/O error or not.
    pub fn record(&mut self, value: f64, errored: bool) {
        if errored {
            self.fail = Some(self.fail.map_or(value, |f| f.min(value)));
        } else {
            self.ride = Some(self.ride.map_or(value, |r| r.max(value)));
        }
    }

    /// The measured boundary (the longest value that rode through), once
    /// both sides are known.
    pub fn measured(&self) -> Option<f64> {
        self.fail.and(self.ride)
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
        }
    }

    #[test]
    fn the_oracle_boundary_is_the_last_value_predicted_to_ride_through() {
        // Errors from 9.1 s of outage on.
        let b = predicted_boundary(|v| Some(prediction(v > 9.05)), 1.0, 30.0, 1.0);
        assert_eq!(
            b,
            Some(Boundary {
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
        let b = predicted_boundary(race, 1.0, 30.0, 1.0).unwrap();
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
            predicted_boundary(|_| Some(prediction(false)), 1.0, 5.0, 1.0),
            None
        );
        assert_eq!(
            predicted_boundary(|_| Some(prediction(true)), 1.0, 5.0, 1.0),
            None
        );
    }

    #[test]
    fn a_search_plans_one_run_per_value_and_target() {
        let search = Search {
            text: "version = 1\nduration_s = 60\n[lane]\ntarget = [\"tgt\", \"lio\"]\n\
                   [[fault]]\nkind = \"blackhole\"\nstart_s = 2\nduration_s = 3\n"
                .into(),
            path: "dir/b.toml".into(),
            axes: vec![sweep::parse_cli_axis("replacement_timeout=20").unwrap()],
            vary: "fault[0].duration_s".into(),
            lo: 1.0,
            hi: 50.0,
            resolution: 1.0,
        };
        let run = search.point(12.5, "lio").unwrap();
        assert_eq!(run.run.target.to_string(), "lio");
        assert_eq!(run.run.scenario.faults[0].duration_s, 12.5);
        // The fixed setting names no run; the target and the varied key do.
        assert!(!run.id.contains("replacement_timeout"), "{}", run.id);
        assert!(run.id.contains("12.5"), "{}", run.id);
        assert!(search.point(12.5, "nope").is_err());
        // Past 20 s of replacement_timeout (plus detection) the outage fails.
        let b = search.predict("tgt").unwrap();
        assert!(b.ride > 20.0 && b.fail < 40.0, "{b:?}");
    }

    #[test]
    fn bisection_brackets_the_measured_boundary_to_the_resolution() {
        // The real boundary is at 11.3 s; the oracle said 9.
        let truth = 11.3;
        let mut b = Bisect::new(9.0, 1.0, 1.0, 60.0);
        let mut runs = Vec::new();
        while let Some(v) = b.next_value() {
            runs.push(v);
            b.record(v, v > truth);
            assert!(runs.len() < 20, "{runs:?}");
        }
        let (ride, fail) = (b.ride.unwrap(), b.fail.unwrap());
        assert!(
            ride <= truth && truth < fail && fail - ride <= 1.0,
            "{runs:?}"
        );
        assert_eq!(b.measured(), Some(ride));
        // Out from the prediction by 1, 2, 4 s, then halving.
        assert_eq!(&runs[..4], &[9.0, 10.0, 12.0, 11.0]);
    }

    #[test]
    fn a_boundary_below_the_prediction_is_searched_downwards_and_bounded() {
        let mut b = Bisect::new(9.0, 1.0, 1.0, 60.0);
        let mut runs = Vec::new();
        while let Some(v) = b.next_value() {
            runs.push(v);
            b.record(v, true); // everything fails
        }
        assert_eq!(runs, [9.0, 8.0, 6.0, 2.0, 1.0]);
        assert_eq!(b.measured(), None);
    }
}
