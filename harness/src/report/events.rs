//! The run event stream: what the runner tells its reporters, in order.
//! Each output format is one consumer of these events ([`Reporter`]); a new
//! format is one new file that implements it.

use super::{Entry, Report};
use crate::plan::PlannedRun;

/// One event of an `iscsi-chaos run`.
#[derive(Debug, Clone, Copy)]
pub enum RunEvent<'a> {
    /// The plan is made; `runs` will be carried out, up to `jobs` at a
    /// time; `why` says where that number comes from (and the shard).
    SuiteStarted {
        runs: &'a [PlannedRun],
        jobs: usize,
        why: &'a str,
    },
    /// Run `index` (of the plan) starts.
    RunStarted {
        index: usize,
        planned: &'a PlannedRun,
    },
    /// Run `index` entered `phase`.
    RunPhase {
        index: usize,
        planned: &'a PlannedRun,
        phase: Phase,
    },
    /// Run `index` ended with this entry.
    RunFinished {
        index: usize,
        planned: &'a PlannedRun,
        entry: &'a Entry,
    },
    /// Everything ended; `report` holds every entry.
    SuiteFinished { report: &'a Report },
}

/// Where a run is: setup (lane, target, login), the fault timeline (the
/// probe's I/O phase), the probe's verification of its writes, teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Setup,
    Fault,
    Verify,
    Teardown,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Fault => "fault",
            Phase::Verify => "verify",
            Phase::Teardown => "teardown",
        }
    }
}

/// A consumer of run events: an output format.
pub trait Reporter {
    fn event(&mut self, event: &RunEvent<'_>);
}

/// Hands each event to every reporter, in order.
pub struct Reporters(pub Vec<Box<dyn Reporter>>);

impl Reporters {
    pub fn emit(&mut self, event: RunEvent<'_>) {
        for r in &mut self.0 {
            r.event(&event);
        }
    }
}
