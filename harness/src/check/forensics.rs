//! Every lost or corrupt acknowledged write, classified by what its block
//! held instead (the probe's `found`), with when the write that should be
//! there and the write that is there were issued and returned, and the
//! WRITE commands the switch's capture saw reach the target for that block
//! after the write was acknowledged (a write carried out late).

use iscsi_chaos_formats::probe::{BlockProblem, Found, OpKind, ProbeEvent};
use iscsi_chaos_formats::report::{BadBlockJson, LateWriteJson};
use iscsi_chaos_formats::wire::{Dir, Fate, WireWhat};

use std::collections::BTreeMap;

use crate::history::{Event, History};

/// Every WRITE of one probe block the capture saw delivered to the target:
/// (block, path, came in, reached the target), clock times. A command's
/// block is its LBA over its length (the probe writes one block per
/// command).
pub(super) fn wire_writes(history: &History) -> Vec<(u64, u8, f64, f64)> {
    history
        .entries
        .iter()
        .filter_map(|e| {
            let Event::Wire(w) = &e.event else {
                return None;
            };
            let WireWhat::Pdu(p) = &w.what else {
                return None;
            };
            let cdb = p.cdb.as_ref().filter(|c| c.is_write())?;
            let (lba, n) = (cdb.lba?, u64::from(cdb.blocks?));
            (w.dir == Dir::ToTarget && w.fate == Fate::Delivered && n > 0 && lba % n == 0)
                .then(|| (lba / n, w.path, e.t, e.t + w.delay_s.unwrap_or(0.0)))
        })
        .collect()
}

/// The bad blocks of a history, times from `origin`.
pub fn bad_blocks(
    history: &History,
    origin: f64,
    hosts: &BTreeMap<String, String>,
) -> Vec<BadBlockJson> {
    // (probe, write seq) -> (issued, returned).
    let mut writes = std::collections::HashMap::new();
    for (_, probe, e) in history.probe_events() {
        if let ProbeEvent::Op {
            t,
            start,
            op: OpKind::Write,
            seq,
            ..
        } = e
        {
            writes.insert((probe, *seq), (*start - origin, *t - origin));
        }
    }
    // With two hosts, another probe run's stamp is the other host's.
    let other_probe = |probe: &str| -> Option<&String> {
        (hosts.len() == 2)
            .then(|| hosts.keys().find(|p| p.as_str() != probe))
            .flatten()
    };
    let on_wire = wire_writes(history);
    let mut out = Vec::new();
    for (_, probe, e) in history.probe_events() {
        let ProbeEvent::BadBlock {
            t: found_at,
            seq,
            block,
            problem,
            found,
        } = e
        else {
            continue;
        };
        if *problem == BlockProblem::Unreadable {
            continue;
        }
        let overwriter = match found {
            Some(Found::OtherRun { .. }) => other_probe(probe),
            _ => None,
        };
        let class = match (found, overwriter) {
            (_, Some(_)) => iscsi_chaos_formats::probe::OVERWRITTEN,
            (Some(f), None) => f.class(*seq, *block),
            (None, None) => "unclassified",
        };
        let other = match (found, overwriter) {
            (Some(Found::Stamp { seq: s, .. }), _) => writes.get(&(probe, *s)).copied(),
            (Some(Found::OtherRun { seq: s }), Some(by)) => writes.get(&(by.as_str(), *s)).copied(),
            _ => None,
        };
        let mine = writes.get(&(probe, *seq)).copied();
        let late_writes = mine
            .map(|(_, returned)| {
                on_wire
                    .iter()
                    .filter(|(b, _, _, reached)| {
                        b == block && *reached - origin > returned && reached <= found_at
                    })
                    .map(|(_, path, sent, reached)| LateWriteJson {
                        path: *path,
                        sent_s: sent - origin,
                        reached_s: reached - origin,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(BadBlockJson {
            block: *block,
            seq: *seq,
            class: class.to_string(),
            found: found.clone(),
            issued_s: mine.map(|w| w.0),
            returned_s: mine.map(|w| w.1),
            found_issued_s: other.map(|w| w.0),
            found_returned_s: other.map(|w| w.1),
            host: (hosts.len() > 1)
                .then(|| hosts.get(probe).cloned())
                .flatten(),
            found_host: overwriter.and_then(|p| hosts.get(p).cloned()),
            late_writes,
        });
    }
    out
}

/// One line for a report's reasons.
pub fn describe(b: &BadBlockJson) -> String {
    let when = |issued: Option<f64>, returned: Option<f64>| match (issued, returned) {
        (Some(i), Some(r)) => format!("issued at {i:.3} s, acknowledged at {r:.3} s"),
        _ => "not in the history".to_string(),
    };
    let holds = match &b.found {
        Some(Found::Zeroes) => "zeroes".to_string(),
        Some(Found::Stamp { seq, block }) if *block != b.block => format!(
            "block {block}'s write seq {seq} ({})",
            when(b.found_issued_s, b.found_returned_s)
        ),
        Some(Found::Stamp { seq, .. }) => format!(
            "write seq {seq} ({})",
            when(b.found_issued_s, b.found_returned_s)
        ),
        Some(Found::OtherRun { seq }) => match &b.found_host {
            Some(by) => format!(
                "{by}'s write seq {seq} ({})",
                when(b.found_issued_s, b.found_returned_s)
            ),
            None => format!("an earlier run's seq {seq}"),
        },
        Some(Found::Torn {
            sectors,
            header_seq,
        }) => format!(
            "{} of its 512-byte sectors differing from it ({:?}){}",
            sectors.len(),
            sectors,
            header_seq.map_or(String::new(), |s| format!(", its header naming seq {s}"))
        ),
        None => "something the probe did not say".to_string(),
    };
    let wire: String = b
        .late_writes
        .iter()
        .take(2)
        .map(|w| {
            format!(
                "; on the wire, a WRITE of it sent on path {} at {:.3} s reached the target at {:.3} s, after that acknowledgement",
                w.path, w.sent_s, w.reached_s
            )
        })
        .collect();
    let whose = b.host.as_ref().map_or(String::new(), |h| format!("{h}'s "));
    format!(
        "block {} ({}): {whose}write seq {} ({}) holds {holds}{wire}",
        b.block,
        b.class,
        b.seq,
        when(b.issued_s, b.returned_s)
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::history::Event;

    fn probe(h: &mut History, event: ProbeEvent) {
        let t = event.t();
        h.push(
            t,
            Event::Probe {
                probe: "blk".into(),
                event,
            },
        );
    }

    fn write(h: &mut History, seq: u64, block: u64, start: f64, t: f64) {
        probe(
            h,
            ProbeEvent::Op {
                t,
                start,
                op: OpKind::Write,
                seq,
                block,
                ok: true,
                errno: None,
            },
        );
    }

    fn bad(h: &mut History, seq: u64, block: u64, found: Found) {
        probe(
            h,
            ProbeEvent::BadBlock {
                t: 50.0,
                seq,
                block,
                problem: BlockProblem::Lost,
                found: Some(found),
            },
        );
    }

    #[test]
    fn each_bad_block_is_classified_with_both_writes_times() {
        let mut h = History::default();
        write(&mut h, 1105, 1181, 9.0, 9.01);
        write(&mut h, 1181, 1181, 10.007, 19.2);
        write(&mut h, 1190, 7, 11.0, 11.01);
        bad(
            &mut h,
            1181,
            1181,
            Found::Stamp {
                seq: 1105,
                block: 1181,
            },
        );
        bad(&mut h, 1190, 7, Found::Zeroes);
        bad(
            &mut h,
            1190,
            8,
            Found::Torn {
                sectors: vec![4, 5],
                header_seq: Some(1190),
            },
        );
        bad(
            &mut h,
            1105,
            9,
            Found::Stamp {
                seq: 1190,
                block: 7,
            },
        );
        let b = bad_blocks(&h, 10.0, &BTreeMap::new());
        let classes: Vec<&str> = b.iter().map(|b| b.class.as_str()).collect();
        assert_eq!(classes, ["stale version", "zeroed", "torn", "misdirected"]);
        assert!((b[0].issued_s.unwrap() - 0.007).abs() < 1e-9);
        assert_eq!(b[0].found_issued_s, Some(-1.0));
        let text = describe(&b[0]);
        assert!(
            text.contains("block 1181 (stale version): write seq 1181 (issued at 0.007 s, acknowledged at 9.200 s) holds write seq 1105 (issued at -1.000 s"),
            "{text}"
        );
        assert!(
            describe(&b[2]).contains("2 of its 512-byte sectors"),
            "{}",
            describe(&b[2])
        );
        assert!(
            describe(&b[3]).contains("block 7's write seq 1190"),
            "{}",
            describe(&b[3])
        );
    }

    /// A WRITE(10) of 8 sectors at `lba` on `path`, delivered.
    pub(in crate::check) fn wire_write(
        h: &mut History,
        path: u8,
        sent: f64,
        delay_s: f64,
        lba: u64,
    ) {
        use iscsi_chaos_formats::wire::{Cdb, Pdu, Wire};
        h.push(
            sent,
            Event::Wire(Wire {
                path,
                dir: Dir::ToTarget,
                port: 40000,
                fate: Fate::Delivered,
                delay_s: Some(delay_s),
                what: WireWhat::Pdu(Pdu {
                    op: "scsi_command".into(),
                    opcode: 1,
                    itt: 7,
                    sn: Some(1),
                    data_len: 4096,
                    cdb: Some(Cdb {
                        opcode: 0x2a,
                        name: "WRITE(10)".into(),
                        lba: Some(lba),
                        blocks: Some(8),
                    }),
                    status: None,
                    sense_key: None,
                    offset: None,
                    code: None,
                }),
            }),
        );
    }

    #[test]
    fn a_write_that_reached_the_target_after_the_acknowledgement_is_named() {
        let mut h = History::default();
        // Block 3's seq 11 held on path 1 from 10.5 s and delivered at
        // 45 s; seq 19 written through path 0 meanwhile.
        write(&mut h, 11, 3, 10.5, 30.0);
        wire_write(&mut h, 1, 10.5, 34.5, 24);
        write(&mut h, 19, 3, 31.0, 31.01);
        wire_write(&mut h, 0, 31.0, 0.0001, 24);
        // Another block's late write, and a late one after the finding.
        wire_write(&mut h, 1, 10.6, 34.5, 32);
        wire_write(&mut h, 0, 50.5, 0.0001, 24);
        bad(&mut h, 19, 3, Found::Stamp { seq: 11, block: 3 });
        let b = bad_blocks(&h, 10.0, &BTreeMap::new());
        assert_eq!(
            b[0].late_writes,
            vec![LateWriteJson {
                path: 1,
                sent_s: 0.5,
                reached_s: 35.0
            }]
        );
        let text = describe(&b[0]);
        assert!(
            text.ends_with("on the wire, a WRITE of it sent on path 1 at 0.500 s reached the target at 35.000 s, after that acknowledgement"),
            "{text}"
        );
    }
}
