//! The oracle for a lane of several paths under dm-multipath.
//!
//! multipathd writes `fast_io_fail_tmo` (F) into every session's
//! recovery_tmo, so a path's session fails its I/O F after the outage is
//! detected, whatever replacement_timeout asked; dm-mpath then fails the
//! path itself (`fail_path` on the I/O error, not waiting for the checker)
//! and resubmits the I/O on another path.
//!
//! - Some paths down, one left: no error. The probe's one operation in
//!   flight on a dead path (multibus spreads I/O over all paths) waits for
//!   detection + F: that is the stall. Failover grouping keeps I/O on one
//!   path; a loss of the other stalls nothing, so the stall's low end is 0.
//! - Every path down: the last path fails at detection + F (the
//!   single-path model with R = F). Then `fail`: EIO at once; `no_path_retry
//!   N`: multipathd counts `N * polling_interval + 1` ticks of a second
//!   (measured: EIO N * P + 0.4-0.7 s after the last path's I/O failed)
//!   and then fails queued I/O; `queue`: no error, I/O resumes once a path is
//!   back (relogin, as for one path that never times out) and the checker
//!   saw it (up to one polling interval, plus a tick).
//!
//! Rough: the ticks of no_path_retry are multipathd's one-second checker
//! loop (±1 s); an outage ending near a boundary is called borderline.

use super::{predict, timer_slack_s, Outage, Prediction, Timeouts, Window, TOLERANCE_S};
use crate::model::fault::controller_stall::HeldAt;
use crate::model::multipath::{Grouping, Multipath, NoPathRetry};
use crate::model::{FaultKind, Run, Scenario};
use iscsi_chaos_formats::probe::{MISDIRECTED, STALE_VERSION};

/// The prediction for `run`, whose lane has several paths; `outages` of
/// each fault in the scenario's order, with the fault's path.
pub fn predict_paths(run: &Run, outages: &[(Option<u8>, Outage)], gap: Option<f64>) -> Prediction {
    let s: &Scenario = &run.scenario;
    let mp = s.multipath.clone().unwrap_or_default();
    let asked = s.initiator.replacement_timeout;
    let f = mp.effective_recovery_tmo(asked) as f64;
    let mut t = Timeouts::from_initiator(&s.initiator);
    t.replacement_timeout = f;
    let mut p = predict(&t, &[], gap);
    p.notes.clear();
    p.notes.push(format!(
        "{} paths, multipath {}: multipathd sets each session's recovery_tmo to {} (asked: replacement_timeout {asked})",
        s.lane.paths,
        describe(&mp),
        fmt_tmo(f),
    ));
    let paths = s.lane.paths;
    let mut first_error: Option<(f64, f64, usize)> = None;
    let mut stall: Option<Window> = None;
    // Times count from the scenario's first fault, which may be no outage.
    let first_start = run
        .scenario
        .first_fault_start_s()
        .or(outages.first().map(|(_, o)| o.start_s))
        .unwrap_or(0.0);
    // Until when each path is out of the map: its outage, its relogin, and
    // the checker's next look (for a lost path that must come back before
    // another is lost).
    let mut out_until: Vec<f64> = vec![f64::NEG_INFINITY; usize::from(paths)];
    for (path, o) in outages {
        let mut never = t;
        never.replacement_timeout = -1.0;
        let back_at = predict(&never, std::slice::from_ref(o), gap)
            .max_stall_s
            .map_or(o.start_s + o.duration_s, |w| o.start_s + w.hi)
            + f64::from(mp.polling_interval)
            + 1.0;
        if let Some(p_lost) = path {
            let others_out = out_until
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != usize::from(*p_lost))
                .all(|(_, until)| *until > o.start_s);
            if others_out && paths > 1 {
                p.borderline = true;
                p.notes.push(format!(
                    "outage at {:.1} s on path {p_lost}: every other path may not be back yet (relogin + checker): every path down, not modelled",
                    o.start_s
                ));
            }
            if let Some(u) = out_until.get_mut(usize::from(*p_lost)) {
                *u = back_at;
            }
        } else {
            out_until.iter_mut().for_each(|u| *u = back_at);
        }
    }
    for (path, o) in outages {
        let all_down = path.is_none() || paths == 1;
        let single = predict(&t, std::slice::from_ref(o), gap);
        p.borderline |= single.borderline;
        if p.detection_s.is_none() {
            p.detection_s = single.detection_s.map(|w| w.shift(o.start_s - first_start));
        }
        // When the last (or this) path's session fails its I/O: the
        // single-path error time with R = F.
        let fails_at = single.first_error_s;
        if !all_down {
            let w = match (fails_at, single.detection_s) {
                (Some(e), Some(d)) => {
                    p.notes.push(format!(
                        "outage at {:.1} s on path {}: the path fails at {:.1} s (detection {:.1}-{:.1} s + {}), I/O moves to the other path(s): no error",
                        o.start_s,
                        path.unwrap_or(0),
                        e,
                        d.lo,
                        d.hi,
                        fmt_tmo(f)
                    ));
                    Window {
                        lo: d.lo + f,
                        hi: d.hi + f + timer_slack_s(f) + 0.5,
                    }
                }
                _ => {
                    p.notes.push(format!(
                        "outage at {:.1} s on path {}: over before the path fails: stalls as one path would",
                        o.start_s,
                        path.unwrap_or(0)
                    ));
                    single.max_stall_s.unwrap_or(Window::at(o.duration_s))
                }
            };
            let w = match mp.grouping {
                Grouping::Multibus => w,
                // The lost path may not be the one carrying I/O.
                Grouping::Failover => Window { lo: 0.0, hi: w.hi },
            };
            stall = Some(widest(stall, w));
            continue;
        }
        let Some(e) = fails_at else {
            // Every path back before any fails: as one path.
            if let Some(w) = single.max_stall_s {
                stall = Some(widest(stall, w));
            }
            p.notes.push(format!(
                "outage at {:.1} s on every path: over before the paths fail: no error",
                o.start_s
            ));
            continue;
        };
        let offset = o.start_s - first_start;
        // The paths' own return (relogin) and the checker's reinstatement.
        let mut never = t;
        never.replacement_timeout = -1.0;
        let back = predict(&never, std::slice::from_ref(o), gap)
            .max_stall_s
            .map(|w| Window {
                lo: w.lo,
                hi: w.hi + f64::from(mp.polling_interval) + 1.0,
            });
        match mp.no_path_retry {
            NoPathRetry::Fail => {
                p.notes.push(format!(
                    "every path down at {:.1} s: the last path fails at {e:.1} s; no_path_retry fail: EIO then",
                    o.start_s
                ));
                first_error.get_or_insert((offset + e, single.tolerance_s, o.fault));
            }
            NoPathRetry::Polls(n) => {
                // multipath-tools counts N * polling_interval + 1 ticks of
                // its 1 s checker loop from when it sees no path; measured
                // (lab, 0.9.4, N 3, P 2): EIO 6.4-6.7 s after the last
                // path's I/O failed, so the count starts up to a tick
                // before that: N * P and up to a second (centred).
                let wait = f64::from(n) * f64::from(mp.polling_interval);
                let eio = e + wait + 0.5;
                let back_hi = back.map_or(f64::INFINITY, |w| w.hi);
                let back_lo = back.map_or(f64::INFINITY, |w| w.lo);
                if back_hi < eio - TOLERANCE_S {
                    p.notes.push(format!(
                        "every path down: the last path fails at {e:.1} s, a path is back by {back_hi:.1} s, before no_path_retry {n} x {} s ends at {eio:.1} s: no error",
                        mp.polling_interval
                    ));
                    if let Some(w) = back {
                        stall = Some(widest(stall, w));
                    }
                } else {
                    if back_lo < eio + TOLERANCE_S {
                        p.borderline = true;
                    }
                    p.notes.push(format!(
                        "every path down: the last path fails at {e:.1} s; no_path_retry {n}: queueing ends {n} x {} s later: EIO at {eio:.1} s (multipathd's 1 s ticks)",
                        mp.polling_interval
                    ));
                    first_error.get_or_insert((offset + eio, TOLERANCE_S, o.fault));
                }
            }
            NoPathRetry::Queue => {
                p.notes.push(format!(
                    "every path down: the last path fails at {e:.1} s; no_path_retry queue: I/O waits for a path: no error"
                ));
                if let Some(w) = back {
                    stall = Some(widest(stall, w));
                }
            }
        }
    }
    if let Some((e, tol, fault)) = first_error {
        p.first_error_s = Some(e);
        p.first_error_fault = Some(fault);
        p.tolerance_s = tol;
    }
    p.max_stall_s = stall;
    ghost_writes(run, &t, gap, &mut p);
    p
}

/// Whether a write held by a stalled controller (`controller_stall`) can
/// land over newer data: the path fails (detection + F) and dm-multipath
/// sends the write down another path before the controller resumes and
/// carries out its held copy. `t` has R = F.
fn ghost_writes(run: &Run, t: &Timeouts, gap: Option<f64>, p: &mut Prediction) {
    let s = &run.scenario;
    for f in &s.faults {
        let FaultKind::ControllerStall(stall) = f.kind else {
            continue;
        };
        let d = f.duration_s;
        let Some(path) = f.path.filter(|_| s.lane.paths > 1) else {
            p.notes.push(format!(
                "fault {}: every path's controller held: nothing newer reaches the disk before the held writes land (relogins queue behind them): no lost update",
                f.index
            ));
            continue;
        };
        let outages = Outage::of_fault_on(f, run.target);
        let fails = predict(t, &outages, gap).first_error_s;
        let Some(e) = fails else {
            p.notes.push(format!(
                "fault {}: path {path}'s controller resumes at {d:.1} s, before the path fails: its held writes land first, any retry after them: no lost update",
                f.index
            ));
            continue;
        };
        if e >= d + TOLERANCE_S {
            p.notes.push(format!(
                "fault {}: path {path} would fail at {e:.1} s, after its controller resumes at {d:.1} s: the held writes land first: no lost update",
                f.index
            ));
            continue;
        }
        if e > d - TOLERANCE_S {
            p.borderline = true;
        }
        let classes: &[&str] = match stall.held_at {
            HeldAt::Controller => &[STALE_VERSION],
            HeldAt::Host => &[STALE_VERSION, MISDIRECTED],
        };
        for c in classes {
            if !p.possible_damage.iter().any(|d| d == c) {
                p.possible_damage.push(c.to_string());
            }
        }
        let rewrite = s
            .probes
            .iter()
            .filter_map(|pr| {
                pr.blocks
                    .map(|b| b.div_ceil(pr.depth) as f64 * pr.interval_ms as f64 / 1000.0)
            })
            .reduce(f64::min);
        let seen = match rewrite {
            Some(r) if r < d - e => format!(
                "the probe writes each block again every {r:.1} s or more: it can see one"
            ),
            Some(r) => format!(
                "the probe writes a block again only every {r:.1} s or more, longer than the {:.1} s between: it may not see one",
                d - e
            ),
            None => "the probe writes each block once: it cannot see one".to_string(),
        };
        let what = match stall.held_at {
            HeldAt::Controller => "the held copies over anything written since: lost updates possible",
            HeldAt::Host => "what the held frames hold then: zero-copy frames held in the host point at the writer's buffers, so a buffer reused since carries newer bytes to the old block: misdirected writes (or lost updates) possible",
        };
        p.notes.push(format!(
            "fault {}: path {path} fails at {e:.1} s and dm-multipath retries its writes on another path; its controller resumes at {d:.1} s and carries out {what} ({seen})",
            f.index
        ));
    }
}

fn widest(a: Option<Window>, b: Window) -> Window {
    match a {
        None => b,
        Some(a) => Window {
            lo: a.lo.max(b.lo),
            hi: a.hi.max(b.hi),
        },
    }
}

fn fmt_tmo(f: f64) -> String {
    format!("{f:.0} s")
}

fn describe(mp: &Multipath) -> String {
    format!(
        "{}, polling {} s, no_path_retry {}, fast_io_fail_tmo {}",
        mp.grouping.as_str(),
        mp.polling_interval,
        mp.no_path_retry.as_config(),
        mp.fast_io_fail_tmo
            .map_or("off".to_string(), |f| format!("{f} s"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TargetKind;

    fn run_of(text: &str) -> Run {
        let s = Scenario::parse(text, "mp.toml").expect("scenario parses");
        Run {
            scenario: s,
            target: TargetKind::Lio,
        }
    }

    fn scenario(multipath: &str, fault: &str) -> String {
        format!(
            "version = 1\nduration_s = 40\n[lane]\ntarget = \"lio\"\npaths = 2\n\
             [initiator]\nnoop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 120\n\
             [multipath]\npolling_interval = 2\nfast_io_fail_tmo = 5\n{multipath}\n\
             [[fault]]\nkind = \"blackhole\"\nstart_s = 5\nduration_s = 25\n{fault}\n"
        )
    }

    fn stall(fast_io_fail: u32, duration: f64, extra: &str) -> Prediction {
        let text = format!(
            "version = 1\nduration_s = 60\n[lane]\ntarget = \"lio\"\npaths = 2\n\
             [initiator]\nnoop_out_interval = 2\nnoop_out_timeout = 2\n\
             [multipath]\nfast_io_fail_tmo = {fast_io_fail}\n\
             [[probe]]\nkind = \"blkprobe\"\ninterval_ms = 25\nblocks = 16\ndepth = 4\n\
             [[fault]]\nkind = \"controller_stall\"\nstart_s = 5\nduration_s = {duration}\n{extra}\n"
        );
        crate::oracle::predict_run(&run_of(&text))
    }

    #[test]
    fn a_controller_resuming_after_failover_can_lose_updates_and_one_resuming_before_cannot() {
        // Path 1 fails at 4 + 5 s; the controller resumes at 25 s.
        let p = stall(5, 25.0, "path = 1");
        assert_eq!(p.possible_damage, vec![STALE_VERSION.to_string()], "{p:#?}");
        assert!(!p.borderline);
        let note = p
            .notes
            .iter()
            .find(|n| n.contains("lost updates possible"))
            .unwrap();
        assert!(
            note.contains("fails at 9.1 s") && note.contains("every 0.1 s"),
            "{note}"
        );
        // fast_io_fail 30: the path would fail at 34 s, after 25 s.
        let p = stall(30, 25.0, "path = 1");
        assert!(p.possible_damage.is_empty(), "{p:#?}");
        assert!(p.notes.iter().any(|n| n.contains("no lost update")));
        // Resuming right at the failover: a race, still possible.
        let p = stall(5, 9.5, "path = 1");
        assert!(p.borderline && !p.possible_damage.is_empty(), "{p:#?}");
        // Every path's controller: nothing newer reaches the disk first.
        assert!(stall(5, 25.0, "").possible_damage.is_empty());
    }

    #[test]
    fn frames_held_in_the_host_can_also_carry_a_reused_buffer_to_the_old_block() {
        let p = stall(5, 25.0, "path = 1\nheld_at = \"host\"");
        assert_eq!(
            p.possible_damage,
            vec![STALE_VERSION.to_string(), MISDIRECTED.to_string()]
        );
        assert!(p.notes.iter().any(|n| n.contains("zero-copy")));
    }

    #[test]
    fn one_path_down_stalls_for_detection_plus_fast_io_fail_and_never_errs() {
        let p =
            crate::oracle::predict_run(&run_of(&scenario("no_path_retry = \"fail\"", "path = 0")));
        assert_eq!(p.first_error_s, None, "{p:#?}");
        let w = p.max_stall_s.unwrap();
        // Busy link: detection 2 + 2 s, then recovery_tmo 5 s.
        assert!(
            (w.lo - 9.0).abs() < 0.1 && w.hi > 9.0 && w.hi < 10.5,
            "{w:?}"
        );
        assert!(p.notes[0].contains("recovery_tmo to 5 s (asked: replacement_timeout 120)"));
    }

    #[test]
    fn all_paths_down_follows_no_path_retry() {
        let fail = crate::oracle::predict_run(&run_of(&scenario("no_path_retry = \"fail\"", "")));
        let e = fail.first_error_s.unwrap();
        assert!((e - 9.0).abs() < 0.5, "{fail:#?}");
        let retry = crate::oracle::predict_run(&run_of(&scenario("no_path_retry = 3", "")));
        let r = retry.first_error_s.unwrap();
        // 3 polls of 2 s, and up to one of multipathd's ticks.
        assert!((r - e - 6.5).abs() < 0.01, "{retry:#?}");
        let queue = crate::oracle::predict_run(&run_of(&scenario("no_path_retry = \"queue\"", "")));
        assert_eq!(queue.first_error_s, None);
        let w = queue.max_stall_s.unwrap();
        assert!(w.lo >= 25.0 && w.hi > w.lo, "{w:?}");
        for p in [&fail, &retry, &queue] {
            assert_eq!(p.insane(), None);
        }
    }

    #[test]
    fn a_second_path_lost_before_the_first_is_back_is_borderline() {
        let two = |second_start: f64| {
            scenario("no_path_retry = \"queue\"", "path = 0")
                .replace("duration_s = 25", "duration_s = 12")
                .replace("duration_s = 40", "duration_s = 60")
                + &format!(
                    "[[fault]]\nkind = \"blackhole\"\npath = 1\nstart_s = {second_start}\nduration_s = 12\n"
                )
        };
        let soon = crate::oracle::predict_run(&run_of(&two(20.0)));
        assert!(soon.borderline, "{soon:#?}");
        let later = crate::oracle::predict_run(&run_of(&two(33.0)));
        assert!(!later.borderline, "{later:#?}");
        assert_eq!(later.first_error_s, None);
    }

    #[test]
    fn a_path_back_before_the_retries_end_rides_through() {
        let short =
            scenario("no_path_retry = 30", "").replace("duration_s = 25", "duration_s = 12");
        let p = crate::oracle::predict_run(&run_of(&short));
        assert_eq!(p.first_error_s, None, "{p:#?}");
    }
}
