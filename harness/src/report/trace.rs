//! `iscsi-chaos trace`: one block's story from a saved history: every
//! probe operation on it, and every SCSI command on the wire that covered
//! it, or flushed the cache while a probe operation on it was in flight
//! (path, connection, when it came into the switch, whether and when it
//! reached the target), with the status that answered it and when.

use std::fmt::Write as _;

use iscsi_chaos_formats::history::{Event, History};
use iscsi_chaos_formats::probe::{OpKind, ProbeEvent};
use iscsi_chaos_formats::wire::{Dir, Fate, WireWhat};

/// The probe's block `block` in the device's 512-byte logical blocks.
pub const SECTOR: u64 = 512;

/// One line of the story.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A probe operation on the block: issued at `start`, returned at `t`.
    Op {
        start: f64,
        t: f64,
        write: bool,
        seq: u64,
        ok: bool,
        errno: Option<i32>,
    },
    /// A SCSI command covering the block.
    Command {
        t: f64,
        path: u8,
        port: u16,
        name: String,
        lba: u64,
        blocks: u32,
        itt: u32,
        fate: Fate,
        /// When it left the switch toward the target.
        reached: Option<f64>,
        /// The status that answered it: when it came into the switch,
        /// status, sense key, and what the switch did with it.
        answer: Option<Answer>,
    },
}

/// A status answering a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub t: f64,
    pub status: u8,
    pub sense_key: Option<u8>,
    pub fate: Fate,
}

impl Line {
    fn t(&self) -> f64 {
        match self {
            Line::Op { start, .. } => *start,
            Line::Command { t, .. } => *t,
        }
    }
}

/// The probe's block size, from its start event (4096 if it has none).
pub fn block_size(h: &History) -> u64 {
    h.probe_events()
        .find_map(|(_, _, e)| match e {
            ProbeEvent::Start { block_size, .. } => Some(u64::from(*block_size)),
            _ => None,
        })
        .unwrap_or(4096)
}

/// The story of logical blocks `[lba, lba + count)`; `probe_block`: the
/// probe's block they are, for its operations.
pub fn trace(h: &History, lba: u64, count: u64) -> Vec<Line> {
    let per_block = (block_size(h) / SECTOR).max(1);
    let probe_block = lba / per_block;
    let mut out = Vec::new();
    for (_, _, e) in h.probe_events() {
        if let ProbeEvent::Op {
            t,
            start,
            op,
            seq,
            block,
            ok,
            errno,
        } = e
        {
            if *block == probe_block {
                out.push(Line::Op {
                    start: *start,
                    t: *t,
                    write: *op == OpKind::Write,
                    seq: *seq,
                    ok: *ok,
                    errno: *errno,
                });
            }
        }
    }
    let entries = &h.entries;
    for (k, e) in entries.iter().enumerate() {
        let Event::Wire(w) = &e.event else {
            continue;
        };
        let WireWhat::Pdu(p) = &w.what else {
            continue;
        };
        let Some(cdb) = &p.cdb else {
            continue;
        };
        // A flush (SYNCHRONIZE CACHE) issued while a probe operation on
        // the block was in flight is part of its story.
        let flush = matches!(cdb.opcode, 0x35 | 0x91)
            && out
                .iter()
                .any(|l| matches!(l, Line::Op { start, t, .. } if *start <= e.t && e.t <= *t));
        let (first, n) = match (cdb.lba, cdb.blocks) {
            (Some(first), Some(n)) if first + u64::from(n) > lba && first < lba + count => {
                (first, n)
            }
            _ if flush => (0, 0),
            _ => continue,
        };
        // The answer: the next status on the same path and connection for
        // the same task tag.
        let answer = entries[k + 1..].iter().find_map(|a| match &a.event {
            Event::Wire(r) if r.path == w.path && r.port == w.port && r.dir == Dir::ToInitiator => {
                match &r.what {
                    WireWhat::Pdu(q) if q.itt == p.itt && q.status.is_some() => Some(Answer {
                        t: a.t,
                        status: q.status.unwrap_or(0),
                        sense_key: q.sense_key,
                        fate: r.fate,
                    }),
                    _ => None,
                }
            }
            _ => None,
        });
        out.push(Line::Command {
            t: e.t,
            path: w.path,
            port: w.port,
            name: cdb.name.clone(),
            lba: first,
            blocks: n,
            itt: p.itt,
            fate: w.fate,
            reached: (w.fate == Fate::Delivered).then(|| e.t + w.delay_s.unwrap_or(0.0)),
            answer,
        });
    }
    out.sort_by(|a, b| a.t().total_cmp(&b.t()));
    out
}

/// The lines from `from` to `to` seconds after `origin` (either open).
pub fn window(lines: Vec<Line>, origin: f64, from: Option<f64>, to: Option<f64>) -> Vec<Line> {
    lines
        .into_iter()
        .filter(|l| {
            let t = l.t() - origin;
            from.is_none_or(|f| t >= f) && to.is_none_or(|u| t <= u)
        })
        .collect()
}

/// The story as text, times from `origin` (the first fault's begin).
pub fn render(lines: &[Line], origin: f64) -> String {
    let mut s = String::new();
    for line in lines {
        match line {
            Line::Op {
                start,
                t,
                write,
                seq,
                ok,
                errno,
            } => {
                let _ = writeln!(
                    s,
                    "{:>9.3} s  probe {} seq {seq}, returned at {:.3} s: {}",
                    start - origin,
                    if *write { "write" } else { "read" },
                    t - origin,
                    match (ok, errno) {
                        (true, _) => "ok".to_string(),
                        (false, Some(e)) => format!("error (errno {e})"),
                        (false, None) => "error".to_string(),
                    }
                );
            }
            Line::Command {
                t,
                path,
                port,
                name,
                lba,
                blocks,
                itt,
                fate,
                reached,
                answer,
            } => {
                let fate = match (fate, reached) {
                    (Fate::Delivered, Some(r)) => {
                        format!("reached the target at {:.3} s", r - origin)
                    }
                    (Fate::Dropped, _) => "dropped by the nemesis".to_string(),
                    _ => "made by the switch".to_string(),
                };
                let answer = match answer {
                    Some(a) => format!(
                        "{} at {:.3} s{}",
                        match (a.status, a.sense_key) {
                            (0, _) => "GOOD".to_string(),
                            (st, Some(k)) => format!("status 0x{st:02x} sense key 0x{k:x}"),
                            (st, None) => format!("status 0x{st:02x}"),
                        },
                        a.t - origin,
                        match a.fate {
                            Fate::Dropped => " (dropped by the nemesis)",
                            _ => "",
                        }
                    ),
                    None => "no status seen".to_string(),
                };
                let _ = writeln!(
                    s,
                    "{:>9.3} s  path {path} (port {port}) {name} LBA {lba}+{blocks} ITT 0x{itt:08x}: {fate}; {answer}",
                    t - origin
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_chaos_formats::wire::{Cdb, Pdu, Wire};

    fn pdu(dir: Dir, fate: Fate, itt: u32, cdb: Option<(u8, u64)>, status: Option<u8>) -> Event {
        Event::Wire(Wire {
            path: 1,
            dir,
            port: 4000,
            fate,
            delay_s: Some(0.5),
            what: WireWhat::Pdu(Pdu {
                op: "x".into(),
                opcode: 1,
                itt,
                sn: None,
                data_len: 0,
                cdb: cdb.map(|(op, lba)| Cdb {
                    opcode: op,
                    name: if op == 0x2a { "WRITE(10)" } else { "READ(10)" }.into(),
                    lba: Some(lba),
                    blocks: Some(8),
                }),
                status,
                sense_key: None,
                offset: None,
                code: None,
            }),
        })
    }

    #[test]
    fn a_block_s_writes_are_traced_to_their_status_and_the_probe_s_ops() {
        let mut h = History::default();
        h.push(
            0.0,
            Event::Probe {
                probe: "blk".into(),
                event: ProbeEvent::Start {
                    t: 0.0,
                    device: "/dev/sdx".into(),
                    block_size: 4096,
                    blocks: 100,
                    interval_ms: 20,
                },
            },
        );
        h.push(
            1.2,
            Event::Probe {
                probe: "blk".into(),
                event: ProbeEvent::Op {
                    t: 1.2,
                    start: 1.0,
                    op: OpKind::Write,
                    seq: 7,
                    block: 3,
                    ok: true,
                    errno: None,
                },
            },
        );
        h.push(
            1.01,
            pdu(Dir::ToTarget, Fate::Dropped, 9, Some((0x2a, 24)), None),
        );
        h.push(
            1.02,
            pdu(Dir::ToTarget, Fate::Delivered, 10, Some((0x2a, 40)), None),
        );
        h.push(
            1.1,
            pdu(Dir::ToTarget, Fate::Delivered, 11, Some((0x2a, 24)), None),
        );
        h.push(
            1.15,
            pdu(Dir::ToInitiator, Fate::Delivered, 11, None, Some(0)),
        );
        let lines = trace(&h, 24, 8);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(matches!(lines[0], Line::Op { seq: 7, .. }));
        assert!(matches!(
            &lines[1],
            Line::Command {
                itt: 9,
                fate: Fate::Dropped,
                answer: None,
                ..
            }
        ));
        match &lines[2] {
            Line::Command {
                itt: 11,
                reached: Some(r),
                answer: Some(a),
                ..
            } => {
                assert!((r - 1.6).abs() < 1e-9 && (a.t - 1.15).abs() < 1e-9);
                assert_eq!((a.status, a.fate), (0, Fate::Delivered));
            }
            other => panic!("{other:?}"),
        }
        let text = render(&lines, 1.0);
        assert!(text.contains("probe write seq 7"), "{text}");
        assert!(
            text.contains("WRITE(10) LBA 24+8 ITT 0x00000009: dropped by the nemesis"),
            "{text}"
        );
        assert!(
            text.contains("reached the target at 0.600 s; GOOD at 0.150 s"),
            "{text}"
        );
        // A window from the first fault's begin (1.0 here): the op starts
        // at 0 s, the commands at 0.01 and 0.1 s.
        let w = window(lines.clone(), 1.0, Some(0.005), Some(0.05));
        assert!(matches!(w[..], [Line::Command { itt: 9, .. }]), "{w:?}");
        assert_eq!(window(lines.clone(), 1.0, None, None).len(), 3);
        assert_eq!(window(lines, 1.0, Some(-1.0), Some(0.0)).len(), 1);
    }
}
