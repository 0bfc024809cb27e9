//! A suite of planned runs, up to `jobs` at a time, each on its own lane
//! (its number taken from a free list when it starts: [`LanePool`]);
//! runs the plan marks `alone` have the host to themselves. Reporters hear
//! of each run as it starts and ends; the report keeps plan order.
//!
//! Invariant: a run's failure, panic or hang ends as that run's entry (its
//! own deadline bounds it); the other lanes go on.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::lanes::{LanePool, LANES};
use super::{run_one, RunContext};
use crate::check::Verdict;
use crate::plan::shard::expected_s;
use crate::plan::PlannedRun;
use crate::report::events::{Reporters, RunEvent};
use crate::report::{Entry, EntryExt, Report, Timings};

/// Lanes a host carries at once by default: as many as fit in
/// [`CPU_BUDGET`] of its CPUs at [`LANE_CPU`] each (a run mostly waits on
/// the initiator's timers, but its probe's I/O through the initiator and the
/// target costs CPU, and timers must not starve: under TCG, four lanes on
/// two vCPUs at 0.7 vCPU each missed 1 s NOP-Out deadlines), at most
/// [`MAX_DEFAULT_JOBS`], and no more than the memory allows at
/// [`LANE_MEMORY_MIB`] each.
pub const LANE_CPU: f64 = 0.45;
/// The share of the CPUs the lanes may keep busy together, leaving the rest
/// for the timers, setup and teardown bursts.
pub const CPU_BUDGET: f64 = 0.7;
pub const MAX_DEFAULT_JOBS: usize = 8;
/// What one lane costs in memory (tgtd or LIO, the probe, the page cache
/// of its LUN's writes), measured in the lab with a margin.
pub const LANE_MEMORY_MIB: u64 = 256;

/// The default number of lanes at once for this host, and why.
pub fn default_jobs() -> (usize, String) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let available_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb / 1024);
    choose_jobs(cpus, available_mib)
}

fn choose_jobs(cpus: usize, available_mib: Option<u64>) -> (usize, String) {
    let by_cpu = ((cpus as f64 * CPU_BUDGET / LANE_CPU) as usize).clamp(1, MAX_DEFAULT_JOBS);
    match available_mib {
        Some(mib) if ((mib / LANE_MEMORY_MIB) as usize) < by_cpu => {
            let jobs = ((mib / LANE_MEMORY_MIB) as usize).max(1);
            (
                jobs,
                format!("{mib} MiB available, {LANE_MEMORY_MIB} MiB per lane"),
            )
        }
        _ => (
            by_cpu,
            format!(
                "{cpus} CPU(s) x {CPU_BUDGET} / {LANE_CPU} per lane, at most {MAX_DEFAULT_JOBS}"
            ),
        ),
    }
}

/// The order runs start in, as waves: first every run that may share the
/// host: those that hold something host-wide ([`PlannedRun::holds`]) first,
/// as they go one at a time and make the longest chain, then the others;
/// each group longest expected first (so the lanes stay full to the end).
/// Then each run marked `alone`, one wave each, in plan order.
pub fn waves(plan: &[PlannedRun]) -> Vec<Vec<usize>> {
    let mut shared: Vec<usize> = (0..plan.len()).filter(|&i| !plan[i].alone).collect();
    shared.sort_by(|&a, &b| {
        (plan[b].holds.is_some().cmp(&plan[a].holds.is_some()))
            .then(expected_s(&plan[b]).total_cmp(&expected_s(&plan[a])))
            .then(a.cmp(&b))
    });
    let mut waves = Vec::new();
    if !shared.is_empty() {
        waves.push(shared);
    }
    waves.extend((0..plan.len()).filter(|&i| plan[i].alone).map(|i| vec![i]));
    waves
}

/// The first of `pending` whose host-wide need is free.
fn next_startable(
    plan: &[PlannedRun],
    pending: &[usize],
    held: &std::collections::HashMap<crate::plan::Exclusive, usize>,
) -> Option<usize> {
    pending
        .iter()
        .position(|&i| plan[i].holds.is_none_or(|thing| !held.contains_key(&thing)))
}

/// Carries out `plan` up to `jobs` runs at a time; stops starting runs once
/// the context is cancelled.
pub async fn run_all(
    mut ctx: RunContext,
    plan: &[PlannedRun],
    jobs: usize,
    reporters: &mut Reporters,
) -> Report {
    let (phase_tx, mut phases) = tokio::sync::mpsc::unbounded_channel();
    ctx.phases = Some(phase_tx);
    let ctx = Arc::new(ctx);
    let index_of: std::collections::HashMap<&str, usize> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let mut entries: Vec<Option<Entry>> = vec![None; plan.len()];
    let lanes = LanePool::new();
    'waves: for wave in waves(plan) {
        let mut running: JoinSet<(usize, Entry)> = JoinSet::new();
        let mut task_of = std::collections::HashMap::new();
        let mut pending = wave;
        // What the running runs hold for themselves (plan::Exclusive).
        let mut held = std::collections::HashMap::new();
        loop {
            while running.len() < jobs.max(1) {
                if *ctx.cancel.borrow() {
                    break;
                }
                let Some(at) = next_startable(plan, &pending, &held) else {
                    break;
                };
                let index = pending.remove(at);
                if let Some(thing) = plan[index].holds {
                    held.insert(thing, index);
                }
                let planned = plan[index].clone();
                reporters.emit(RunEvent::RunStarted {
                    index,
                    planned: &plan[index],
                });
                let ctx = ctx.clone();
                let lane = lanes.take();
                let task = running.spawn(async move {
                    let entry = match lane {
                        Some(lane) => run_one(&ctx, &planned, lane).await,
                        None => Entry::unchecked(
                            &planned.run,
                            &planned.prediction,
                            Verdict::Error,
                            format!(
                                "no free lane number: {LANES} are taken by runs of this process \
                                 or kept out after a teardown that left something behind"
                            ),
                            Timings::default(),
                        ),
                    };
                    (index, entry)
                });
                task_of.insert(task.id(), index);
            }
            let joined = tokio::select! {
                // A run's phases before its end.
                biased;
                Some((id, phase)) = phases.recv() => {
                    if let Some(&index) = index_of.get(id.as_str()) {
                        reporters.emit(RunEvent::RunPhase { index, planned: &plan[index], phase });
                    }
                    continue;
                }
                joined = running.join_next() => joined,
            };
            let Some(joined) = joined else {
                if *ctx.cancel.borrow() {
                    break 'waves;
                }
                break;
            };
            let (index, entry) = match joined {
                Ok(done) => done,
                // run_one catches its panics; this is the runtime's own
                // failure (a panic that escaped, or cancellation).
                Err(e) => {
                    let Some(&index) = task_of.get(&e.id()) else {
                        continue;
                    };
                    let p = &plan[index];
                    let entry = Entry::unchecked(
                        &p.run,
                        &p.prediction,
                        Verdict::Error,
                        format!("the run's task failed: {e}"),
                        Timings::default(),
                    );
                    (index, entry)
                }
            };
            held.retain(|_, holder| *holder != index);
            reporters.emit(RunEvent::RunFinished {
                index,
                planned: &plan[index],
                entry: &entry,
            });
            entries[index] = Some(entry);
        }
    }
    let mut report = Report::default();
    for entry in entries.into_iter().flatten() {
        report.push(entry);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scenario;

    #[test]
    fn jobs_follow_cpus_unless_memory_is_short() {
        assert_eq!(choose_jobs(2, Some(8192)).0, 3);
        assert_eq!(choose_jobs(1, Some(8192)).0, 1);
        assert_eq!(choose_jobs(4, None).0, 6);
        assert_eq!(choose_jobs(16, None).0, MAX_DEFAULT_JOBS);
        let (jobs, why) = choose_jobs(8, Some(600));
        assert_eq!(jobs, 2);
        assert!(why.contains("600 MiB"), "{why}");
        assert_eq!(choose_jobs(4, Some(100)).0, 1);
    }

    #[test]
    fn shared_runs_go_first_longest_leading_then_each_alone_run_by_itself() {
        let s = |name: &str, alone: bool| {
            let duration = if name == "d" { 50 } else { 10 };
            let text = format!(
                "version = 1\nduration_s = {duration}\n[lane]\ntarget = \"tgt\"\nalone = {alone}\n"
            );
            Scenario::parse(&text, format!("{name}.toml")).unwrap()
        };
        let plan = crate::plan::suite(&[
            s("a", false),
            s("b", false),
            s("c", true),
            s("d", false),
            s("e", true),
            s("f", true),
        ]);
        // The shared runs first, the longest (d) leading; then each alone.
        assert_eq!(waves(&plan), vec![vec![3, 0, 1], vec![2], vec![4], vec![5]]);
    }

    #[test]
    fn runs_holding_multipathd_lead_and_go_one_at_a_time_beside_the_others() {
        let s = |name: &str, paths: u8, duration: u32| {
            let text = format!(
                "version = 1\nduration_s = {duration}\n[lane]\ntarget = \"tgt\"\npaths = {paths}\n"
            );
            Scenario::parse(&text, format!("{name}.toml")).unwrap()
        };
        let plan =
            crate::plan::suite(&[s("a", 1, 90), s("m1", 2, 20), s("b", 1, 10), s("m2", 2, 40)]);
        // The multipath runs (the one-at-a-time chain) lead, longest first.
        let wave = waves(&plan).remove(0);
        assert_eq!(wave, vec![3, 1, 0, 2]);
        let mut held = std::collections::HashMap::new();
        assert_eq!(next_startable(&plan, &wave, &held), Some(0));
        // With m2 running, m1 must wait: the next to start is a.
        held.insert(crate::plan::Exclusive::Multipathd, 3);
        assert_eq!(next_startable(&plan, &wave[1..], &held), Some(1));
        assert_eq!(next_startable(&plan, &[1], &held), None);
    }
}
