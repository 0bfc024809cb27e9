//! Several hosts on one disk: from the takeover (the instant the later
//! host's probe began its I/O), which host wrote what, and the blocks
//! both wrote (split brain). With two hosts, an acknowledged write read
//! back holding a stamp of another probe run was overwritten by the other
//! host (each run's LUN is new, so no earlier run's stamp can be there).

use std::collections::{BTreeMap, BTreeSet};

use guest_probes::{OpKind, ProbeEvent};
use iscsi_chaos_formats::probe::Found;
use iscsi_chaos_formats::report::{SplitBrainJson, WriterJson};

use crate::history::{Event, History};
use crate::model::Scenario;

/// errno of a command refused with RESERVATION CONFLICT (the kernel's
/// BLK_STS_RESV_CONFLICT): EBADE.
pub const EBADE: i32 = 52;

/// The split-brain figures of a run of several hosts (`None` with one),
/// times from `origin` (the first fault's begin).
pub fn measure(history: &History, scenario: &Scenario, origin: f64) -> Option<SplitBrainJson> {
    if scenario.hosts.len() < 2 {
        return None;
    }
    // The takeover: the first operation's issue of the probe that begins last.
    let late = scenario
        .probes
        .iter()
        .max_by(|a, b| a.start_s.total_cmp(&b.start_s))?;
    let takeover = history.probe_events().find_map(|(_, probe, ev)| match ev {
        ProbeEvent::Op { start, .. } if probe == late.name => Some(*start),
        _ => None,
    })?;
    let mut writers: BTreeMap<usize, (WriterJson, BTreeSet<u64>)> = BTreeMap::new();
    for p in &scenario.probes {
        let host = scenario
            .hosts
            .get(usize::from(p.host))
            .map_or(String::new(), |h| h.name.clone());
        writers.insert(
            usize::from(p.host),
            (
                WriterJson {
                    host,
                    probe: p.name.clone(),
                    ..WriterJson::default()
                },
                BTreeSet::new(),
            ),
        );
    }
    // The fence: the survivor's PREEMPT AND ABORT.
    let mut fence: Option<Result<f64, String>> = None;
    for e in &history.entries {
        if let Event::Reservation {
            action, ok, detail, ..
        } = &e.event
        {
            if action == "preempt-and-abort" && fence.is_none() {
                fence = Some(if *ok { Ok(e.t) } else { Err(detail.clone()) });
            }
        }
    }
    let fenced_at = fence.as_ref().and_then(|f| f.as_ref().ok().copied());
    // Where the capture saw them: each write's data reached the target
    // when its WRITE did, which for a write whose flush the partition
    // held is long before its acknowledgement.
    let on_wire = super::forensics::wire_writes(history);
    let landed = |host: u8, block: u64, start: f64, acked: f64| {
        let path = scenario.wire_path(host, 0);
        on_wire
            .iter()
            .filter(|(b, p, came, _)| *b == block && *p == path && *came >= start && *came <= acked)
            .map(|w| w.3)
            .reduce(f64::max)
            .unwrap_or(acked)
    };
    let mut overwritten: BTreeSet<(String, u64)> = BTreeSet::new();
    for (_, probe, ev) in history.probe_events() {
        let Some(host) = scenario.probe_host(probe) else {
            continue;
        };
        let Some((w, blocks)) = writers.get_mut(&usize::from(host)) else {
            continue;
        };
        match ev {
            ProbeEvent::Op {
                t,
                start,
                op: OpKind::Write,
                ok,
                errno,
                block,
                ..
            } => {
                if !ok {
                    w.conflicts += u64::from(*errno == Some(EBADE));
                    continue;
                }
                let t = &landed(host, *block, *start, *t);
                if fenced_at.is_some_and(|f| *t > f) {
                    w.after_fence += 1;
                }
                if *t >= takeover {
                    w.writes += 1;
                    blocks.insert(*block);
                    w.first_s.get_or_insert(t - origin);
                    w.last_s = Some(t - origin);
                }
            }
            ProbeEvent::BadBlock {
                seq,
                found: Some(Found::OtherRun { .. }),
                ..
            } => {
                overwritten.insert((probe.to_string(), *seq));
            }
            _ => {}
        }
    }
    let mut sets = writers.values().map(|(_, b)| b);
    let first = sets.next().cloned().unwrap_or_default();
    let both = sets.fold(first, |acc, b| acc.intersection(b).copied().collect());
    Some(SplitBrainJson {
        takeover_s: takeover - origin,
        blocks: both.len() as u64,
        writers: writers
            .into_values()
            .map(|(mut w, b)| {
                w.blocks = b.len() as u64;
                w
            })
            .collect(),
        overwritten: overwritten.len() as u64,
        fence_s: fenced_at.map(|f| f - origin),
        fence_error: fence.and_then(Result::err),
    })
}

/// The fencing's line for the verdict's reasons, and whether it held:
/// the fence went through and the victim wrote nothing after it.
pub fn fencing(s: &SplitBrainJson, victim: &str) -> (String, bool) {
    let Some(v) = s.writers.iter().find(|w| w.host == victim) else {
        return ("fencing: the victim had no probe".into(), false);
    };
    match (s.fence_s, &s.fence_error) {
        (Some(at), _) => (
            format!(
                "fenced at {at:.2} s: {} acknowledged write(s) of {} after it, {} refused (RESERVATION CONFLICT)",
                v.after_fence, v.host, v.conflicts
            ),
            v.after_fence == 0,
        ),
        (None, Some(e)) => (format!("the fence failed: {e}"), false),
        (None, None) => ("the fence never happened".into(), false),
    }
}

/// One line of the verdict's reasons.
pub fn describe(s: &SplitBrainJson) -> String {
    let each: Vec<String> = s
        .writers
        .iter()
        .map(|w| {
            let mut t = format!("{} {} write(s) to {} block(s)", w.host, w.writes, w.blocks);
            if let (Some(a), Some(b)) = (w.first_s, w.last_s) {
                t.push_str(&format!(" ({a:.2}-{b:.2} s)"));
            }
            if w.conflicts > 0 {
                t.push_str(&format!(", {} refused (RESERVATION CONFLICT)", w.conflicts));
            }
            t
        })
        .collect();
    format!(
        "split brain: {} block(s) written by both hosts after the takeover at {:.2} s; {}; {} acknowledged write(s) overwritten by the other host",
        s.blocks,
        s.takeover_s,
        each.join("; "),
        s.overwritten
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_chaos_formats::probe::BlockProblem;

    fn shipped() -> Scenario {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/cluster/split-brain.toml"
        );
        Scenario::load(path).unwrap()
    }

    fn op(h: &mut History, probe: &str, t: f64, seq: u64, block: u64, errno: Option<i32>) {
        h.push(
            t,
            Event::Probe {
                probe: probe.into(),
                event: ProbeEvent::Op {
                    t,
                    start: t - 0.01,
                    op: OpKind::Write,
                    seq,
                    block,
                    ok: errno.is_none(),
                    errno,
                },
            },
        );
    }

    #[test]
    fn blocks_both_hosts_wrote_after_the_takeover_are_split_brain() {
        let s = shipped();
        let mut h = History::default();
        // node-a writes blocks 0-3 before the takeover (at 20 s), then its
        // held write lands on block 4 at 30 s and it writes 5 and 6.
        for b in 0..4 {
            op(&mut h, "node-a", 10.0 + b as f64, b, b, None);
        }
        // node-b takes over at 20 s: blocks 0-5.
        for b in 0..6 {
            op(&mut h, "node-b", 20.0 + b as f64, b, b, None);
        }
        op(&mut h, "node-a", 30.0, 4, 4, None);
        op(&mut h, "node-a", 31.0, 5, 5, None);
        op(&mut h, "node-a", 32.0, 6, 6, Some(EBADE));
        // node-b's write of block 5 now holds node-a's stamp (twice told).
        for t in [33.0, 34.0] {
            h.push(
                t,
                Event::Probe {
                    probe: "node-b".into(),
                    event: ProbeEvent::BadBlock {
                        t,
                        seq: 5,
                        block: 5,
                        problem: BlockProblem::Lost,
                        found: Some(Found::OtherRun { seq: 5 }),
                    },
                },
            );
        }
        h.sort();
        let b = measure(&h, &s, 5.0).unwrap();
        assert!((b.takeover_s - (19.99 - 5.0)).abs() < 1e-9, "{b:?}");
        assert_eq!(b.blocks, 2, "{b:?}");
        assert_eq!(b.overwritten, 1);
        let a = &b.writers[0];
        assert_eq!(
            (a.host.as_str(), a.writes, a.blocks, a.conflicts),
            ("node-a", 2, 2, 1)
        );
        assert_eq!((a.first_s, a.last_s), (Some(25.0), Some(26.0)));
        assert_eq!((b.writers[1].writes, b.writers[1].blocks), (6, 6));
        let line = describe(&b);
        assert!(line.contains("2 block(s) written by both hosts"), "{line}");
        assert!(line.contains("1 refused (RESERVATION CONFLICT)"), "{line}");
        // One host: nothing to say.
        let mut one = s.clone();
        one.hosts.truncate(1);
        assert_eq!(measure(&h, &one, 5.0), None);
    }

    fn reservation(h: &mut History, t: f64, action: &str, ok: bool) {
        h.push(
            t,
            Event::Reservation {
                host: 1,
                action: action.into(),
                ok,
                detail: if ok {
                    String::new()
                } else {
                    "PR out: command failed".into()
                },
                state: None,
            },
        );
    }

    #[test]
    fn a_fence_holds_when_the_victim_writes_nothing_after_it() {
        let s = shipped();
        let mut h = History::default();
        op(&mut h, "node-a", 10.0, 0, 0, None);
        reservation(&mut h, 12.0, "register", true);
        reservation(&mut h, 15.0, "preempt-and-abort", true);
        op(&mut h, "node-b", 16.0, 0, 0, None);
        op(&mut h, "node-a", 30.0, 1, 1, Some(EBADE));
        h.sort();
        let b = measure(&h, &s, 5.0).unwrap();
        assert_eq!(b.fence_s, Some(10.0));
        let (line, held) = fencing(&b, "node-a");
        assert!(held, "{line}");
        assert!(
            line.contains("0 acknowledged write(s) of node-a after it, 1 refused"),
            "{line}"
        );
        // One write of the victim acknowledged after the fence: it did not hold.
        op(&mut h, "node-a", 31.0, 2, 2, None);
        h.sort();
        let b = measure(&h, &s, 5.0).unwrap();
        let (line, held) = fencing(&b, "node-a");
        assert!(
            !held && line.contains("1 acknowledged write(s) of node-a after it"),
            "{line}"
        );
        // A fence the target refused.
        let mut failed = History::default();
        op(&mut failed, "node-b", 16.0, 0, 0, None);
        reservation(&mut failed, 15.0, "preempt-and-abort", false);
        failed.sort();
        let b = measure(&failed, &s, 5.0).unwrap();
        let (line, held) = fencing(&b, "node-a");
        assert!(
            !held && line.contains("the fence failed: PR out: command failed"),
            "{line}"
        );
    }

    /// Trixie, `fenced` on LIO: node-a's write of block 27 reached the
    /// target 7 ms before the partition; the partition held its flush, and
    /// the write was acknowledged after the relogin, 18 s after the fence.
    /// Its data landed before the fence and before the takeover.
    #[test]
    fn a_write_that_reached_the_target_before_the_fence_did_not_land_after_it() {
        let s = shipped();
        let mut h = History::default();
        reservation(&mut h, 12.0, "register", true);
        h.push(
            9.993,
            Event::Probe {
                probe: "node-a".into(),
                event: ProbeEvent::Op {
                    t: 31.286,
                    start: 9.992,
                    op: OpKind::Write,
                    seq: 59,
                    block: 27,
                    ok: true,
                    errno: None,
                },
            },
        );
        super::super::forensics::tests::wire_write(&mut h, 0, 9.993, 0.0001, 27 * 8);
        reservation(&mut h, 13.3, "preempt-and-abort", true);
        op(&mut h, "node-b", 15.0, 0, 27, None);
        h.sort();
        let b = measure(&h, &s, 10.0).unwrap();
        let (line, held) = fencing(&b, "node-a");
        assert!(held, "{line}");
        assert_eq!((b.blocks, b.writers[0].writes), (0, 0), "{b:?}");
        // Without the capture, the acknowledgement is all there is.
        let no_wire = History {
            entries: h
                .entries
                .iter()
                .filter(|e| !matches!(e.event, Event::Wire(_)))
                .cloned()
                .collect(),
        };
        let b = measure(&no_wire, &s, 10.0).unwrap();
        assert!(!fencing(&b, "node-a").1, "{b:?}");
    }
}
