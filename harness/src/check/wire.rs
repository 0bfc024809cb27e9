//! What the switch's capture saw while each fault was in place: the
//! report's counts of commands, statuses, data sent again and resets per
//! fault window.

use iscsi_chaos_formats::report::WireWindow;
use iscsi_chaos_formats::wire::{Fate, WireWhat};

use crate::history::{Event, FaultPhase, History};

/// One count per fault step that has wire events in its window (from its
/// begin's record to its end's; a step never ended runs to the history's
/// end).
pub fn windows(history: &History) -> Vec<WireWindow> {
    let mut spans: Vec<(usize, f64, f64)> = Vec::new();
    for e in &history.entries {
        if let Event::Fault { step, phase, .. } = &e.event {
            match phase {
                FaultPhase::Begin => spans.push((*step, e.t, f64::INFINITY)),
                FaultPhase::End => {
                    if let Some(s) = spans
                        .iter_mut()
                        .rev()
                        .find(|s| s.0 == *step && s.2.is_infinite())
                    {
                        s.2 = e.t;
                    }
                }
            }
        }
    }
    let mut out: Vec<WireWindow> = Vec::new();
    for e in &history.entries {
        let Event::Wire(w) = &e.event else {
            continue;
        };
        for &(step, from, until) in &spans {
            if e.t < from || e.t > until {
                continue;
            }
            let k = match out.iter().position(|c| c.step == step) {
                Some(k) => k,
                None => {
                    out.push(WireWindow {
                        step,
                        ..WireWindow::default()
                    });
                    out.len() - 1
                }
            };
            let c = &mut out[k];
            match &w.what {
                WireWhat::Tcp {
                    flags,
                    retransmission,
                } => {
                    c.retransmissions += u64::from(*retransmission);
                    c.resets += u64::from(flags == "RST");
                }
                WireWhat::Pdu(p) if p.cdb.is_some() => {
                    c.commands += 1;
                    c.commands_dropped += u64::from(w.fate == Fate::Dropped);
                }
                WireWhat::Pdu(p) => {
                    if let Some(status) = p.status {
                        c.statuses += 1;
                        c.bad_statuses += u64::from(status != 0);
                    }
                }
            }
        }
    }
    out.sort_by_key(|c| c.step);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_chaos_formats::wire::{Cdb, Dir, Pdu, Wire};

    fn wire(fate: Fate, what: WireWhat) -> Event {
        Event::Wire(Wire {
            path: 0,
            dir: Dir::ToTarget,
            port: 1,
            fate,
            delay_s: None,
            what,
        })
    }

    fn pdu(cdb: bool, status: Option<u8>) -> WireWhat {
        WireWhat::Pdu(Pdu {
            op: "x".into(),
            opcode: if cdb { 1 } else { 0x21 },
            itt: 1,
            sn: None,
            data_len: 0,
            cdb: cdb.then(|| Cdb {
                opcode: 0x2a,
                name: "WRITE(10)".into(),
                lba: Some(1),
                blocks: Some(8),
            }),
            status,
            sense_key: None,
            offset: None,
            code: None,
        })
    }

    fn fault(phase: FaultPhase) -> Event {
        Event::Fault {
            step: 0,
            phase,
            kind: "blackhole".into(),
            scheduled: 0.0,
            path: None,
        }
    }

    #[test]
    fn only_what_crossed_while_a_fault_was_in_place_counts() {
        let mut h = History::default();
        h.push(0.5, wire(Fate::Delivered, pdu(true, None)));
        h.push(1.0, fault(FaultPhase::Begin));
        h.push(1.1, wire(Fate::Dropped, pdu(true, None)));
        h.push(1.2, wire(Fate::Delivered, pdu(false, Some(0x18))));
        h.push(1.3, wire(Fate::Delivered, pdu(false, Some(0))));
        h.push(
            1.4,
            wire(
                Fate::Made,
                WireWhat::Tcp {
                    flags: "RST".into(),
                    retransmission: false,
                },
            ),
        );
        h.push(2.0, fault(FaultPhase::End));
        h.push(2.5, wire(Fate::Delivered, pdu(true, None)));
        let w = windows(&h);
        assert_eq!(
            w,
            [WireWindow {
                step: 0,
                commands: 1,
                commands_dropped: 1,
                statuses: 2,
                bad_statuses: 1,
                retransmissions: 0,
                resets: 1,
            }]
        );
    }
}
