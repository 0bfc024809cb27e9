//! Shards: a stable, balanced share of a plan's runs, for CI matrices
//! (`--shard K/N`). Balanced by each run's expected duration, not by count:
//! runs are dealt longest first to the shard with the least expected time
//! so far (ties: the earlier run, the lower shard). The same plan always
//! gives the same shards, and the N shards together hold every run once.

use std::fmt;
use std::str::FromStr;

use super::PlannedRun;

/// What a run costs besides its timeline: setup, verification and
/// teardown (measured in the lab, bookworm under TCG: 5 to 10 s).
pub const RUN_OVERHEAD_S: f64 = 8.0;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// The most shards a plan may be cut into.
pub const MAX_SHARDS: u32 = 256;

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad =
            || format!("--shard {s:?}: expected K/N with 1 <= K <= N <= {MAX_SHARDS}, e.g. 2/3");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count || count > MAX_SHARDS {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How long a run is expected to take, start to end.
pub fn expected_s(run: &PlannedRun) -> f64 {
    run.run.scenario.duration_s + RUN_OVERHEAD_S
}

/// The plan indices of `shard`'s runs, in plan order.
pub fn select(plan: &[PlannedRun], shard: Shard) -> Vec<usize> {
    let costs: Vec<f64> = plan.iter().map(expected_s).collect();
    assign(&costs, shard.count)
        .into_iter()
        .enumerate()
        .filter(|(_, s)| *s + 1 == shard.index)
        .map(|(i, _)| i)
        .collect()
}

/// The shard (0-based) of each run, given the runs' costs.
fn assign(costs: &[f64], shards: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]).then(a.cmp(&b)));
    let mut load = vec![0.0f64; shards as usize];
    let mut of = vec![0u32; costs.len()];
    for i in order {
        let (lightest, _) = load
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(&b.0)))
            .expect("at least one shard");
        load[lightest] += costs[i];
        of[i] = lightest as u32;
    }
    of
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(Shard { index: 2, count: 3 }.to_string(), "2/3");
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "1/1000", ""] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("K/N"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_run_is_in_exactly_one_shard_and_loads_are_balanced() {
        // Durations like the shipped suite's: a few long ones, many short.
        let costs = [
            120.0, 20.0, 20.0, 90.0, 25.0, 30.0, 60.0, 20.0, 45.0, 20.0, 35.0,
        ];
        let of = assign(&costs, 3);
        let mut load = [0.0; 3];
        for (i, s) in of.iter().enumerate() {
            load[*s as usize] += costs[i];
        }
        let (max, min) = (
            load.iter().cloned().fold(f64::MIN, f64::max),
            load.iter().cloned().fold(f64::MAX, f64::min),
        );
        // Greedy longest-first is within the longest run of the best split.
        assert!(max - min <= 120.0, "{load:?}");
        assert!(
            max <= costs.iter().sum::<f64>() / 3.0 + 120.0 / 3.0 * 2.0,
            "{load:?}"
        );
        // Stable: the same input gives the same shards.
        assert_eq!(assign(&costs, 3), of);
        // By time, not count: the 120 s run's shard holds fewer runs.
        let big = of[0];
        let count = |s: u32| of.iter().filter(|x| **x == s).count();
        assert!((0..3).filter(|s| *s != big).all(|s| count(s) > count(big)));
    }

    #[test]
    fn more_shards_than_runs_leaves_some_empty() {
        let of = assign(&[10.0, 10.0], 4);
        assert_eq!(of, [0, 1]);
    }
}
