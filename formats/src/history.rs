//! The history: one timeline, on one clock (CLOCK_MONOTONIC seconds), of
//! everything that happened in a scenario run: fault steps, probe operations,
//! the session's state as sysfs showed it, and the kernel's iSCSI log lines.
//!
//! The checker reads only this; a history can be saved as JSON lines and
//! checked again later, which is how the checker is tested without root.

use crate::probe::ProbeEvent;
use serde::{Deserialize, Serialize};

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// CLOCK_MONOTONIC seconds.
    pub t: f64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Event {
    /// A fault step of the scenario's timeline was put in place (`Begin`) or
    /// cleared (`End`). `step` indexes the scenario's fault list.
    Fault {
        step: usize,
        phase: FaultPhase,
        kind: String,
        /// When the step was scheduled to happen; `t` is when it was in place.
        scheduled: f64,
        /// The path it addressed (`None`: every path).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<u8>,
    },
    /// A probe's own record.
    Probe {
        probe: String,
        /// Nested, not flattened: the probe event has its own `t`.
        event: ProbeEvent,
    },
    /// The iSCSI session's state in sysfs changed (LOGGED_IN, FAILED, FREE).
    Session { state: String },
    /// A path of a multipath lane changed: its session's state in sysfs
    /// (`session`, as in `Session`) or its state in the dm-multipath map
    /// (`dm`: "active" or "failed", as `dmsetup status` shows it).
    Path {
        path: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dm: Option<String>,
    },
    /// A kernel log line about iSCSI or SCSI, with the kernel's own timestamp.
    Kernel { line: String },
    /// A note from the harness itself (setup done, teardown started, ...).
    Note { text: String },
    /// The timers the kernel really uses, read from sysfs (`when`:
    /// "after_login", before the I/O starts, or "at_end"): key (object and
    /// attribute, such as `session.recovery_tmo`) -> value as sysfs shows it.
    Settings {
        when: String,
        values: std::collections::BTreeMap<String, String>,
    },
    /// Counters of a qdisc the nemesis installed for fault `step`, read just
    /// before it was removed: proof that the fault really touched packets.
    /// `side`: "to_target" (host end) or "to_initiator" (target end).
    Qdisc {
        step: usize,
        side: String,
        kind: String,
        packets: u64,
        bytes: u64,
        drops: u64,
    },
    /// What a fault step did, read back from the system it acted on: the
    /// typed evidence of target-side and link faults (qdiscs and firewall
    /// rules have their own entries above and below).
    Effect { step: usize, effect: Effect },
    /// Packets the firewall rule of fault `step` matched (`reset`: answered
    /// with a RST; `drop_oversize`: dropped), read just before it was removed.
    Firewall {
        step: usize,
        rule: String,
        packets: u64,
    },
    /// A TCP mark or an iSCSI PDU read from the switch's capture.
    Wire(crate::wire::Wire),
    /// The capture's own account, at the run's end.
    Capture(crate::wire::CaptureSummary),
    /// A SCSI-3 persistent reservation action of the run's fencing, sent
    /// through host `host`'s disk (`register`, `reserve`,
    /// `preempt-and-abort`, or `read` alone), whether the target took it,
    /// and the LUN's reservation state read back after it.
    Reservation {
        host: u8,
        action: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<PrState>,
    },
}

/// A LUN's persistent reservations: the registered keys, and the
/// reservation's holder and type if one is held (keys as `0x...`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PrState {
    pub generation: u32,
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The effect of one fault step, as the harness saw it happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Effect {
    /// The target process was killed (its pid, if it had one).
    TargetKilled { pid: Option<u32> },
    /// The target process was started again.
    TargetStarted { pid: Option<u32> },
    /// The target's portal was removed (`present: false`) or restored.
    Portal { present: bool, detail: String },
    /// The initiator's access was revoked (`allowed: false`) or restored.
    Access { allowed: bool, detail: String },
    /// The backing store's delay per I/O, and its dm table after the switch.
    StoreDelay {
        name: String,
        ms: u64,
        table: String,
    },
    /// A veth end's administrative state, and its operational state after
    /// the change (`end`: "initiator" or "target").
    Link { end: String, up: bool, oper: String },
    /// The MTU the switch's ports were set to, and the frames each had
    /// dropped as they came in so far, read right before the change
    /// (`[port facing the initiator, port facing the target]`).
    PortMtu { mtu: u32, rx_dropped: [u64; 2] },
    /// A switch port stopped forwarding (`forwarding: false`) or resumed,
    /// and its bridge port state after the change (`port`: the side it
    /// faces, "initiator" or "target").
    Port {
        port: String,
        forwarding: bool,
        state: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPhase {
    Begin,
    End,
}

/// The whole timeline of one scenario run, kept sorted by time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub entries: Vec<Entry>,
}

impl History {
    pub fn push(&mut self, t: f64, event: Event) {
        self.entries.push(Entry { t, event });
    }

    /// Sorts by time; entries from different sources arrive out of order.
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| a.t.total_cmp(&b.t));
    }

    /// The history as JSON lines, one entry per line.
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            out.push_str(&serde_json::to_string(entry).expect("history entries serialize"));
            out.push('\n');
        }
        out
    }

    /// Reads a history saved by [`History::to_json_lines`].
    pub fn from_json_lines(text: &str) -> Result<History, serde_json::Error> {
        let entries = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        Ok(History { entries })
    }

    /// When the first fault step was put in place: the origin the check
    /// measures the first error from.
    pub fn first_fault_begin(&self) -> Option<f64> {
        self.entries.iter().find_map(|e| match e.event {
            Event::Fault {
                phase: FaultPhase::Begin,
                ..
            } => Some(e.t),
            _ => None,
        })
    }

    /// Probe events in time order, with the probe's name.
    pub fn probe_events(&self) -> impl Iterator<Item = (f64, &str, &ProbeEvent)> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::Probe { probe, event } => Some((e.t, probe.as_str(), event)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::OpKind;

    #[test]
    fn history_round_trips_through_json_lines() {
        let mut h = History::default();
        h.push(
            1.0,
            Event::Fault {
                step: 0,
                phase: FaultPhase::Begin,
                kind: "blackhole".into(),
                scheduled: 0.999,
                path: Some(1),
            },
        );
        h.push(
            1.5,
            Event::Probe {
                probe: "blk".into(),
                event: ProbeEvent::Op {
                    t: 1.5,
                    start: 1.4,
                    op: OpKind::Read,
                    seq: 1,
                    block: 1,
                    ok: true,
                    errno: None,
                },
            },
        );
        h.push(
            2.0,
            Event::Session {
                state: "FAILED".into(),
            },
        );
        let text = h.to_json_lines();
        assert_eq!(text.lines().count(), 3);
        assert_eq!(History::from_json_lines(&text).unwrap(), h);
    }
}
