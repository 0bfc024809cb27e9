//! The plan: the scenarios of one `iscsi-chaos run` expanded into planned
//! runs, each with its id, its fault steps and its prediction. (Its lane
//! number is given when the run starts: `runner::lanes`.)
//! Everything the runner needs to know before it starts is decided here,
//! in one place. Pure.
//!
//! Invariant: run ids are unique within a plan and usable in file names;
//! the history file of a run is named after its id.

pub mod budget;
pub mod shard;
pub mod steps;

pub use steps::{Action, Step};

use crate::model::{Run, Scenario};
use crate::oracle::{self, Prediction};

/// One run as planned: what it runs, where, on which timeline, and what the
/// oracle expects of it.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// `scenario` or `scenario@target` (see [`Run::id`]).
    pub id: String,
    pub run: Run,
    /// Its fault timeline, in time order.
    pub steps: Vec<Step>,
    pub prediction: Prediction,
    /// Runs with no other run beside it (see [`crate::model::Lane::alone`]).
    pub alone: bool,
    /// A host-wide thing it needs for itself: no other run holding the same
    /// runs beside it, other runs may (see [`exclusive`]).
    pub holds: Option<Exclusive>,
}

/// Something one run at a time may have on a host, while runs that do not
/// need it share the host with that run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exclusive {
    /// multipathd: one per host (its control socket's name is compiled in),
    /// and a run's daemon carries that run's multipath.conf. It manages only
    /// the run's own map (every other WWID is blacklisted), so single-path
    /// lanes run beside it.
    Multipathd,
}

impl PlannedRun {
    /// Plans one run.
    pub fn new(run: Run) -> PlannedRun {
        PlannedRun {
            id: run.id(),
            steps: steps::plan(&run.scenario.faults),
            prediction: oracle::predict_run(&run),
            alone: must_run_alone(&run),
            holds: exclusive(&run),
            run,
        }
    }

    /// The file its history is saved in, in the output folder.
    pub fn history_file(&self) -> String {
        iscsi_chaos_formats::report::history_file(&self.id)
    }

    /// The switch's capture of the run, beside its history.
    pub fn capture_file(&self) -> String {
        iscsi_chaos_formats::report::capture_file(&self.id)
    }
}

/// Whether a run must have the host to itself: its scenario says so.
/// (`reset` faults went alone while their nftables rule sat on the target
/// namespace's own hooks; see `nemesis/firewall.rs`.)
pub fn must_run_alone(run: &Run) -> bool {
    run.scenario.lane.alone
}

/// What `run` needs for itself on the host: multipathd for a lane of
/// several paths.
pub fn exclusive(run: &Run) -> Option<Exclusive> {
    (run.scenario.lane.paths > 1).then_some(Exclusive::Multipathd)
}

/// Every run of `scenarios`, in order: one per target of each scenario.
pub fn suite(scenarios: &[Scenario]) -> Vec<PlannedRun> {
    scenarios
        .iter()
        .flat_map(|s| s.expand())
        .map(PlannedRun::new)
        .collect()
}

/// Most repetitions of one scenario in a run (`run --repeat`).
pub const MAX_REPEAT: u32 = 100;

/// Each scenario `n` times, in turn, named `<name>#<k>` (k from 1) so the
/// runs' ids and files differ; `n` = 1 leaves them as they are.
pub fn repeat(scenarios: Vec<Scenario>, n: u32) -> Vec<Scenario> {
    if n <= 1 {
        return scenarios;
    }
    scenarios
        .into_iter()
        .flat_map(|s| {
            (1..=n).map(move |k| {
                let mut s = s.clone();
                s.name = format!("{}#{k}", s.name);
                s
            })
        })
        .collect()
}

/// The plan of a 10 s scenario without faults, `<name>.toml`, on
/// `targets`: what reporter tests feed their events with.
#[cfg(test)]
pub fn minimal(name: &str, targets: &[&str]) -> Vec<PlannedRun> {
    let targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    let text = format!(
        "version = 1\nduration_s = 10\n[lane]\ntarget = [{}]\n",
        targets.join(", ")
    );
    suite(&[Scenario::parse(&text, format!("{name}.toml")).unwrap()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_scenarios_get_ids_of_their_own() {
        let runs = suite(&repeat(
            minimal("r", &["tgt", "lio"])
                .into_iter()
                .map(|p| p.run.scenario)
                .take(1)
                .collect(),
            3,
        ));
        let ids: Vec<&str> = runs.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            ["r#1@tgt", "r#1@lio", "r#2@tgt", "r#2@lio", "r#3@tgt", "r#3@lio"]
        );
        assert_eq!(repeat(vec![runs[0].run.scenario.clone()], 1).len(), 1);
    }

    #[test]
    fn a_suite_has_one_run_per_target_with_its_own_steps() {
        let s = Scenario::parse(
            "version = 1\nduration_s = 20\n[lane]\ntarget = [\"tgt\", \"lio\"]\n\
             [[fault]]\nkind = \"blackhole\"\nstart_s = 2\nduration_s = 3\n",
            "dir/two.toml",
        )
        .unwrap();
        let plan = suite(&[s.clone(), s]);
        let ids: Vec<&str> = plan.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["two@tgt", "two@lio", "two@tgt", "two@lio"]);
        assert_eq!(plan[0].history_file(), "two@tgt.history.jsonl");
        assert_eq!(plan[1].steps.len(), 2);
        assert_eq!(plan[1].steps[0].at_s, 2.0);
        assert_eq!(plan[1].prediction, oracle::predict_run(&plan[1].run));
    }

    #[test]
    fn scenarios_that_ask_run_alone_and_resets_share_the_host() {
        let plan = |text: &str| suite(&[Scenario::parse(text, "a.toml").unwrap()]);
        let base = "version = 1\nduration_s = 20\n[lane]\ntarget = \"tgt\"\n";
        assert!(!plan(base)[0].alone);
        assert!(plan(&base.replace("\"tgt\"\n", "\"tgt\"\nalone = true\n"))[0].alone);
        let reset = format!("{base}[[fault]]\nkind = \"reset\"\nstart_s = 5\nduration_s = 2\n");
        assert!(!plan(&reset)[0].alone);
        let blackhole =
            format!("{base}[[fault]]\nkind = \"blackhole\"\nstart_s = 5\nduration_s = 2\n");
        assert!(!plan(&blackhole)[0].alone);
    }

    #[test]
    fn a_multipath_lane_holds_multipathd_but_shares_the_host() {
        let plan = |text: &str| suite(&[Scenario::parse(text, "a.toml").unwrap()]);
        let base = "version = 1\nduration_s = 20\n[lane]\ntarget = \"tgt\"\n";
        assert_eq!(plan(base)[0].holds, None);
        let mp = plan(&format!("{base}paths = 2\n"));
        assert_eq!(mp[0].holds, Some(Exclusive::Multipathd));
        assert!(!mp[0].alone);
    }
}
