//! Every lost or corrupt acknowledged write, classified by what its block
//! held instead (the probe's `found`), with when the write that should be
//! there and the write that is there were issued and returned.

use iscsi_chaos_formats::probe::{BlockProblem, Found, OpKind, ProbeEvent};
use iscsi_chaos_formats::report::BadBlockJson;

use crate::history::History;

/// The bad blocks of a history, times from `origin`.
pub fn bad_blocks(history: &History, origin: f64) -> Vec<BadBlockJson> {
    // Write seq -> (issued, returned).
    let mut writes = std::collections::HashMap::new();
    for (_, _, e) in history.probe_events() {
        if let ProbeEvent::Op {
            t,
            start,
            op: OpKind::Write,
            seq,
            ..
        } = e
        {
            writes.insert(*seq, (*start - origin, *t - origin));
        }
    }
    let mut out = Vec::new();
    for (_, _, e) in history.probe_events() {
        let ProbeEvent::BadBlock {
            seq,
            block,
            problem,
            found,
            ..
        } = e
        else {
            continue;
        };
        if *problem == BlockProblem::Unreadable {
            continue;
        }
        let class = found
            .as_ref()
            .map_or("unclassified", |f| f.class(*seq, *block));
        let other = match found {
            Some(Found::Stamp { seq: s, .. }) => writes.get(s).copied(),
            _ => None,
        };
        let mine = writes.get(seq).copied();
        out.push(BadBlockJson {
            block: *block,
            seq: *seq,
            class: class.to_string(),
            found: found.clone(),
            issued_s: mine.map(|w| w.0),
            returned_s: mine.map(|w| w.1),
            found_issued_s: other.map(|w| w.0),
            found_returned_s: other.map(|w| w.1),
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
        Some(Found::OtherRun { seq }) => format!("an earlier run's seq {seq}"),
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
    format!(
        "block {} ({}): write seq {} ({}) holds {holds}",
        b.block,
        b.class,
        b.seq,
        when(b.issued_s, b.returned_s)
    )
}

#[cfg(test)]
mod tests {
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
        let b = bad_blocks(&h, 10.0);
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
}
