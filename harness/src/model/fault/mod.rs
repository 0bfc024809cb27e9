//! Fault kinds. A kind is one unit, one file: its options and their
//! validation, the direction it shapes, its timeline steps and their undo
//! (as [`Action`]s the nemesis carries out), what the oracle makes of it on
//! each target ([`LinkEffect`] and notes), what it needs of the host, and
//! which typed evidence in the history proves it took effect.
//!
//! [`FaultKind`] only delegates: the `kinds!` list below is the one place a
//! kind is registered, and a kind that forgets a part does not compile.

use std::fmt;

use crate::history::{Effect, Entry, Event, FaultPhase};
use crate::model::action::Action;
use crate::model::keys::KeySpec;
use crate::model::needs::Requirement;
use crate::model::timing::{OutageMode, Timeouts};
use crate::model::{Direction, NetemSpec, TargetKind};

pub mod options;

pub mod access_revoke;
pub mod blackhole;
pub mod controller_stall;
pub mod flap;
pub mod link_down;
pub mod mtu;
pub mod netem;
pub mod port_down;
pub mod portal_remove;
pub mod reset;
pub mod slow_store;
pub mod target_stop;
pub mod tbf;

pub use options::{Options, Problem, Value};

/// A repeated fault: `on_s` in place every `period_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pulse {
    pub on_s: f64,
    pub period_s: f64,
}

/// Most pulses one fault (and one scenario) may have: a flap of 1 s over a
/// 10-hour run.
pub const MAX_PULSES: usize = 36_000;

/// Shortest fault, pulse or gap between pulses, in seconds: a step takes
/// milliseconds to apply (a netlink or nft call, more under TCG), so a
/// shorter one would not be what the scenario says.
pub const MIN_STEP_S: f64 = 0.1;

/// What a fault does to the link, in the oracle's terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkEffect {
    /// Each pulse is an outage of this mode.
    Outage(OutageMode),
    /// Packets longer than `mtu` vanish: the retry-limit model.
    Oversize { mtu: u32 },
    /// netem impairments on `direction`.
    Impaired {
        direction: Direction,
        spec: NetemSpec,
    },
    /// A bandwidth cap: stalls, no error.
    Capped { rate_kbit: u64 },
    /// Nothing a live session notices (the kind's notes say why).
    Unnoticed,
}

/// What every fault kind provides.
pub trait Kind: fmt::Debug {
    /// The link direction a network fault shapes; `None` for faults of the
    /// target's end.
    fn direction(&self) -> Option<Direction>;
    /// Pulses, for a repeated fault.
    fn pulse(&self) -> Option<Pulse> {
        None
    }
    /// The step that puts the fault in place, and the one that undoes it.
    fn actions(&self) -> (Action, Action);
    /// What the fault does to the link on `target`.
    fn link_effect(&self, target: TargetKind) -> LinkEffect;
    /// Notes (and whether the outcome is borderline) beyond the outage
    /// model, for fault `index` on `target`; `duration_s` is the fault's.
    fn notes(&self, t: &Timeouts, index: usize, duration_s: f64, target: TargetKind) -> Notes {
        let _ = (t, index, duration_s, target);
        Notes::default()
    }
    /// The faults it may hold: run inside it (and only inside it) while it
    /// is in place, where any other overlap is an error.
    fn holds(&self) -> Option<Holds> {
        None
    }
    /// Whether the initiator's end of the paths it addresses must send
    /// frames that own their bytes (no zero-copy), because it holds frames
    /// as something outside the host would.
    fn copies_at_send(&self) -> bool {
        false
    }
    /// Its options in a few words, for labels ("loss 30%"); empty when it
    /// has none beyond its direction.
    fn parameters(&self) -> String {
        String::new()
    }
}

/// Where a kind acts ([`Registration::reach`]), which decides where a scenario may
/// aim it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The fabric (a path's switch, or a host's cable): the only faults a
    /// scenario may aim at one path (`path = N`).
    Fabric,
    /// One portal of the target (its listener, its answers, its ACL): not
    /// modelled on a lane of several paths yet.
    Portal,
    /// The whole target (its process, its store).
    Target,
}

/// Which faults a kind may hold ([`Kind::holds`]), and what a scenario that
/// overlaps it otherwise is told.
#[derive(Debug, Clone, Copy)]
pub struct Holds {
    pub kind: fn(&FaultKind) -> bool,
    pub hint: &'static str,
}

/// A kind's notes for the oracle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notes {
    pub borderline: bool,
    pub notes: Vec<String>,
}

/// How a kind is found by name: its options and constructor, and its check
/// of the evidence.
pub struct Registration {
    pub name: &'static str,
    /// What it does, for the reference (`docs/scenarios.md`, `iscsi-chaos
    /// explain`): a sentence or a short paragraph.
    pub doc: &'static str,
    /// Options it takes besides kind, start_s, duration_s, direction and
    /// path, with their types, units, defaults and ranges.
    pub options: &'static [KeySpec],
    /// What it needs of the host beyond every run's needs.
    pub needs: &'static [Requirement],
    /// Where it acts: the fabric, one portal, or the whole target.
    pub reach: Reach,
    /// Why `direction` does not apply, when it does not.
    pub whole_link: Option<&'static str>,
    /// Builds the kind from its options (problems go into `o`).
    pub parse: fn(&mut Options<'_>, Direction) -> Option<FaultKind>,
    /// Whether the history entries of one of its steps prove it took effect.
    pub took_effect: fn(&[&Event]) -> bool,
}

impl Registration {
    /// Whether it takes option `key`.
    pub fn takes(&self, key: &str) -> bool {
        self.options.iter().any(|o| o.key == key)
    }
}

macro_rules! kinds {
    ($($variant:ident($module:ident::$ty:ident)),* $(,)?) => {
        /// What a fault does: one variant per kind, each its own file.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum FaultKind {
            $($variant($module::$ty)),*
        }

        /// Every kind, in the order `iscsi-chaos` lists them.
        pub const KINDS: &[Registration] = &[$($module::REGISTRATION),*];

        impl FaultKind {
            fn kind(&self) -> &dyn Kind {
                match self {
                    $(FaultKind::$variant(k) => k),*
                }
            }

            /// Its registration.
            pub fn registration(&self) -> &'static Registration {
                match self {
                    $(FaultKind::$variant(_) => &$module::REGISTRATION),*
                }
            }
        }

        $(impl From<$module::$ty> for FaultKind {
            fn from(k: $module::$ty) -> FaultKind {
                FaultKind::$variant(k)
            }
        })*
    };
}

kinds! {
    Blackhole(blackhole::Blackhole),
    Netem(netem::Netem),
    Flap(flap::Flap),
    Reset(reset::Reset),
    Mtu(mtu::Mtu),
    Tbf(tbf::Tbf),
    TargetStop(target_stop::TargetStop),
    PortalRemove(portal_remove::PortalRemove),
    AccessRevoke(access_revoke::AccessRevoke),
    SlowStore(slow_store::SlowStore),
    LinkDown(link_down::LinkDown),
    PortDown(port_down::PortDown),
    ControllerStall(controller_stall::ControllerStall),
}

impl FaultKind {
    /// The name used in scenario files and in history entries.
    pub fn name(&self) -> &'static str {
        self.registration().name
    }
    pub fn direction(&self) -> Option<Direction> {
        self.kind().direction()
    }
    pub fn pulse(&self) -> Option<Pulse> {
        self.kind().pulse()
    }
    pub fn actions(&self) -> (Action, Action) {
        self.kind().actions()
    }
    pub fn link_effect(&self, target: TargetKind) -> LinkEffect {
        self.kind().link_effect(target)
    }
    pub fn notes(&self, t: &Timeouts, index: usize, duration_s: f64, target: TargetKind) -> Notes {
        self.kind().notes(t, index, duration_s, target)
    }
    pub fn needs(&self) -> &'static [Requirement] {
        self.registration().needs
    }
    pub fn reach(&self) -> Reach {
        self.registration().reach
    }
    pub fn holds(&self) -> Option<Holds> {
        self.kind().holds()
    }
    pub fn copies_at_send(&self) -> bool {
        self.kind().copies_at_send()
    }
}

/// The registration of kind `name`.
pub fn registration(name: &str) -> Option<&'static Registration> {
    KINDS.iter().find(|r| r.name == name)
}

/// Names of every kind.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|r| r.name).collect()
}

/// Whether fault `step` (of kind `kind`, on `path`, `None`: every path)
/// shows its effect in `history`: its typed evidence, and what the switch's
/// capture decoded on its path(s) around it:
/// frames dropped or made from when the step was due to when it was
/// cleared, frames delivered only while it was surely in place (from its
/// begin's record to when its end was due).
pub fn took_effect(kind: &str, step: usize, path: Option<u8>, history: &[Entry]) -> bool {
    let of_step: Vec<&Event> = step_evidence(step, path, history)
        .map(|e| &e.event)
        .collect();
    registration(kind).is_some_and(|r| (r.took_effect)(&of_step))
}

/// What a step's evidence counted, in words, for an error that says it
/// took no effect: its qdiscs' and rules' counters, and the capture's
/// frames while it was in place, delivered and dropped per path and way
/// (with the first delivered one's time).
pub fn evidence_seen(step: usize, path: Option<u8>, history: &[Entry]) -> String {
    use std::collections::BTreeMap;
    let mut parts = Vec::new();
    let mut wire: BTreeMap<String, (u64, u64, Option<f64>)> = BTreeMap::new();
    let begin = history.iter().find_map(|e| match &e.event {
        Event::Fault {
            step: s,
            phase: FaultPhase::Begin,
            ..
        } if *s == step => Some(e.t),
        _ => None,
    });
    for entry in step_evidence(step, path, history) {
        match &entry.event {
            Event::Qdisc {
                side,
                packets,
                drops,
                ..
            } => parts.push(format!(
                "qdisc on {side}: {packets} passed, {drops} dropped"
            )),
            Event::Firewall { rule, packets, .. } => {
                parts.push(format!("rule {rule}: {packets} matched"))
            }
            Event::Wire(w) => {
                let n = wire
                    .entry(format!("path {} {:?}", w.path, w.dir))
                    .or_default();
                if w.fate == iscsi_chaos_formats::wire::Fate::Dropped {
                    n.1 += 1;
                } else {
                    n.0 += 1;
                    n.2.get_or_insert(entry.t - begin.unwrap_or(entry.t));
                }
            }
            _ => {}
        }
    }
    for (way, (delivered, dropped, first)) in wire {
        let first = first.map_or(String::new(), |t| format!(", the first {t:+.3} s in"));
        parts.push(format!(
            "capture {way}: {delivered} delivered{first}, {dropped} dropped"
        ));
    }
    if parts.is_empty() {
        "no counters, no capture".into()
    } else {
        parts.join("; ")
    }
}

/// The events that can show step `step` took effect: its counters and
/// effects, and the capture's frames on its path while it was in place
/// (delivered ones from when it was in place until its end was due;
/// dropped ones from its begin being due until its end was done).
fn step_evidence(step: usize, path: Option<u8>, history: &[Entry]) -> impl Iterator<Item = &Entry> {
    // (due, in place) of the begin; (due, cleared) of the end.
    let (mut begin, mut end) = (
        (f64::INFINITY, f64::INFINITY),
        (f64::NEG_INFINITY, f64::NEG_INFINITY),
    );
    for e in history {
        if let Event::Fault {
            step: s,
            phase,
            scheduled,
            ..
        } = &e.event
        {
            if *s == step {
                match phase {
                    FaultPhase::Begin => begin = (begin.0.min(*scheduled), begin.1.min(e.t)),
                    FaultPhase::End => end = (end.0.max(*scheduled), end.1.max(e.t)),
                }
            }
        }
    }
    history.iter().filter(move |e| match &e.event {
        Event::Qdisc { step: s, .. }
        | Event::Firewall { step: s, .. }
        | Event::Effect { step: s, .. } => *s == step,
        Event::Wire(w) if path.is_some_and(|p| p != w.path) => false,
        Event::Wire(w) if w.fate == iscsi_chaos_formats::wire::Fate::Delivered => {
            begin.1 < e.t && e.t < end.0
        }
        Event::Wire(_) => begin.0 <= e.t && e.t <= end.1,
        _ => false,
    })
}

/// Evidence helpers for the kinds' `took_effect`.
pub mod evidence {
    use super::*;

    /// A qdisc of the step that dropped packets.
    pub fn qdisc_dropped(events: &[&Event]) -> bool {
        events
            .iter()
            .any(|e| matches!(e, Event::Qdisc { drops, .. } if *drops > 0))
    }

    /// A qdisc of the step that saw packets.
    pub fn qdisc_saw_packets(events: &[&Event]) -> bool {
        events
            .iter()
            .any(|e| matches!(e, Event::Qdisc { packets, .. } if *packets > 0))
    }

    /// A firewall rule of the step that matched packets.
    pub fn rule_matched(events: &[&Event]) -> bool {
        events
            .iter()
            .any(|e| matches!(e, Event::Firewall { packets, .. } if *packets > 0))
    }

    /// The switch's capture while the step was in place: if it saw a
    /// frame dropped on a path and way, it saw none delivered there (a
    /// blackhole: frames before the nemesis, none after it). True without
    /// a capture (the counters stand alone then).
    pub fn wire_silenced(events: &[&Event]) -> bool {
        use iscsi_chaos_formats::wire::Fate;
        let wire: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Wire(w) => Some(w),
                _ => None,
            })
            .collect();
        let dropped: std::collections::HashSet<_> = wire
            .iter()
            .filter(|w| w.fate == Fate::Dropped)
            .map(|w| (w.path, w.dir))
            .collect();
        !wire
            .iter()
            .any(|w| w.fate == Fate::Delivered && dropped.contains(&(w.path, w.dir)))
            && (wire.is_empty() || !dropped.is_empty())
    }

    /// The switch's capture while the step was in place holds a RST the
    /// switch made (true without a capture).
    pub fn wire_reset_sent(events: &[&Event]) -> bool {
        use iscsi_chaos_formats::wire::{Fate, WireWhat};
        let mut wire = events.iter().filter_map(|e| match e {
            Event::Wire(w) => Some(w),
            _ => None,
        });
        let mut any = false;
        let sent = wire.any(|w| {
            any = true;
            w.fate == Fate::Made && matches!(&w.what, WireWhat::Tcp { flags, .. } if flags == "RST")
        });
        sent || !any
    }

    /// The switch's capture while the step was in place holds a frame
    /// the nemesis delivered a second or more after it came in (true
    /// without a capture).
    pub fn wire_held(events: &[&Event]) -> bool {
        use iscsi_chaos_formats::wire::Fate;
        let mut wire = events
            .iter()
            .filter_map(|e| match e {
                Event::Wire(w) => Some(w),
                _ => None,
            })
            .peekable();
        wire.peek().is_none()
            || wire.any(|w| w.fate == Fate::Delivered && w.delay_s.is_some_and(|d| d >= 1.0))
    }

    /// An effect of the step for which `f` holds.
    pub fn effect(events: &[&Event], f: impl Fn(&Effect) -> bool) -> bool {
        events
            .iter()
            .any(|e| matches!(e, Event::Effect { effect, .. } if f(effect)))
    }
}

/// One fault of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Index in the file's `[[fault]]` list (the history's `step`).
    pub index: usize,
    pub kind: FaultKind,
    /// Seconds from the start of the I/O phase.
    pub start_s: f64,
    pub duration_s: f64,
    /// The lane's path it breaks (`None`: every path).
    pub path: Option<u8>,
    /// The host whose paths it breaks (a fault of the target reaches
    /// every host).
    pub host: u8,
}

impl Fault {
    /// Kind, duration, direction and parameters, as pictures and reports
    /// label the fault: "netem 20 s, to_target, loss 30%".
    pub fn label(&self) -> String {
        let mut label = format!("{} {} s", self.kind.name(), self.duration_s);
        if let Some(d) = self.kind.direction() {
            label.push_str(&format!(", {}", d.as_str()));
        }
        let p = self.kind.kind().parameters();
        if !p.is_empty() {
            label.push_str(&format!(", {p}"));
        }
        if let Some(path) = self.path {
            label.push_str(&format!(", path {path}"));
        }
        if self.host > 0 {
            label.push_str(&format!(", host {}", self.host));
        }
        label
    }

    pub fn end_s(&self) -> f64 {
        self.start_s + self.duration_s
    }

    /// Whether this fault holds `inner`: its kind may hold `inner`'s
    /// ([`Kind::holds`]), and `inner` runs inside it. (A `portal_remove`
    /// holding a blackhole: the session reconnects while the portal is gone,
    /// which the live session would not notice by itself.)
    pub fn holds(&self, inner: &Fault) -> bool {
        self.kind.holds().is_some_and(|h| (h.kind)(&inner.kind))
            && inner.start_s >= self.start_s - 1e-9
            && inner.end_s() <= self.end_s() + 1e-9
    }

    /// How many pulses the fault has (1 unless it repeats).
    pub fn pulse_count(&self) -> usize {
        match self.kind.pulse() {
            Some(Pulse { period_s, .. }) => {
                let n = (self.duration_s / period_s - 1e-9).ceil();
                if n.is_finite() && n >= 1.0 {
                    n.min(usize::MAX as f64) as usize
                } else {
                    1
                }
            }
            None => 1,
        }
    }

    /// When the fault is really in place, as (start_s, end_s) from the start
    /// of the I/O phase: one span, or one per pulse.
    pub fn pulses(&self) -> Vec<(f64, f64)> {
        match self.kind.pulse() {
            Some(Pulse { on_s, period_s }) => {
                let end = self.end_s();
                let mut out = Vec::new();
                let mut k = 0u64;
                loop {
                    let s = self.start_s + k as f64 * period_s;
                    if s >= end - 1e-9 || out.len() >= MAX_PULSES {
                        break out;
                    }
                    out.push((s, (s + on_s).min(end)));
                    k += 1;
                }
            }
            None => vec![(self.start_s, self.end_s())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use iscsi_chaos_formats::wire::{Dir, Fate, Wire, WireWhat};

    fn entry(event: Event) -> Entry {
        Entry { t: 1.0, event }
    }

    fn qdisc(step: usize, packets: u64, drops: u64) -> Entry {
        entry(Event::Qdisc {
            step,
            side: "to_target".into(),
            kind: "netem".into(),
            packets,
            bytes: packets * 100,
            drops,
        })
    }

    fn at(t: f64, event: Event) -> Entry {
        Entry { t, event }
    }

    fn fault(kind: &str, phase: FaultPhase, scheduled: f64, t: f64) -> Entry {
        at(
            t,
            Event::Fault {
                step: 0,
                phase,
                kind: kind.into(),
                scheduled,
                path: None,
            },
        )
    }

    fn wire(t: f64, fate: Fate, flags: &str) -> Entry {
        at(
            t,
            Event::Wire(Wire {
                path: 0,
                dir: Dir::ToTarget,
                port: 1,
                fate,
                delay_s: None,
                what: WireWhat::Tcp {
                    flags: flags.into(),
                    retransmission: false,
                },
            }),
        )
    }

    #[test]
    fn a_captured_blackhole_delivered_nothing_while_in_place() {
        let mut h = vec![
            fault("blackhole", FaultPhase::Begin, 10.0, 10.05),
            wire(10.02, Fate::Delivered, "SYN"),
            wire(11.0, Fate::Dropped, "SYN"),
            fault("blackhole", FaultPhase::End, 20.0, 20.05),
            wire(20.03, Fate::Delivered, "SYN"),
            qdisc(0, 10, 7),
        ];
        // Delivered before it was surely in place and after its end was
        // due: not against it.
        assert!(took_effect("blackhole", 0, None, &h));
        // Another path's capture is not this fault's evidence: a frame the
        // capture took for dropped on path 1 (a pairing it missed) does not
        // count against a fault on path 0.
        let mut other = wire(12.0, Fate::Dropped, "");
        let mut passed = wire(12.5, Fate::Delivered, "");
        for e in [&mut other, &mut passed] {
            if let Event::Wire(w) = &mut e.event {
                w.path = 1;
            }
        }
        h.extend([other, passed]);
        assert!(took_effect("blackhole", 0, Some(0), &h));
        h.push(wire(15.0, Fate::Delivered, "SYN"));
        assert!(
            !took_effect("blackhole", 0, Some(0), &h),
            "a frame got through"
        );
        // The error says what the evidence counted and when the frame got
        // through.
        assert_eq!(
            evidence_seen(0, Some(0), &h),
            "qdisc on to_target: 10 passed, 7 dropped; \
             capture path 0 ToTarget: 1 delivered, the first +4.950 s in, 1 dropped"
        );
    }

    #[test]
    fn a_captured_reset_shows_the_rst_the_switch_made() {
        let rule = at(
            2.0,
            Event::Firewall {
                step: 0,
                rule: "reset".into(),
                packets: 1,
            },
        );
        let mut h = vec![
            fault("reset", FaultPhase::Begin, 10.0, 10.05),
            wire(10.2, Fate::Delivered, "FIN"),
            fault("reset", FaultPhase::End, 10.5, 10.55),
            rule,
        ];
        assert!(
            !took_effect("reset", 0, None, &h),
            "captured, and no RST made"
        );
        // Made before the begin was recorded, once the rule was in.
        h.push(wire(10.04, Fate::Made, "RST"));
        assert!(took_effect("reset", 0, None, &h));
        // Without a capture, the rule's counter stands alone.
        h.retain(|e| !matches!(e.event, Event::Wire(_)));
        assert!(took_effect("reset", 0, None, &h));
    }

    #[test]
    fn kinds_are_registered_once_each() {
        let names = kind_names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
        assert_eq!(names[0], "blackhole");
        for r in KINDS {
            assert_eq!(registration(r.name).unwrap().name, r.name);
        }
        assert!(registration("nonesuch").is_none());
    }

    #[test]
    fn evidence_is_read_per_step_and_per_kind() {
        let h = vec![
            entry(Event::Fault {
                step: 0,
                phase: FaultPhase::Begin,
                kind: "blackhole".into(),
                scheduled: 1.0,
                path: None,
            }),
            qdisc(0, 10, 0),
            qdisc(1, 10, 7),
        ];
        // Packets without drops: no outage happened on step 0.
        assert!(!took_effect("blackhole", 0, None, &h));
        assert!(took_effect("netem", 0, None, &h));
        assert!(took_effect("blackhole", 1, None, &h));
        assert!(!took_effect("flap", 2, None, &h));
        let killed = vec![entry(Event::Effect {
            step: 3,
            effect: Effect::TargetKilled { pid: Some(42) },
        })];
        assert!(took_effect("target_stop", 3, None, &killed));
        assert!(!took_effect("access_revoke", 3, None, &killed));
        assert!(!took_effect("target_stop", 2, None, &killed));
        // A note says nothing: only typed evidence counts.
        let note = vec![entry(Event::Note {
            text: "fault[0]: target process pid 1 killed".into(),
        })];
        assert!(!took_effect("target_stop", 0, None, &note));
        assert!(!took_effect("nonesuch", 3, None, &killed));
    }

    #[test]
    fn pulses_are_bounded() {
        let f = Fault {
            index: 0,
            kind: flap::Flap {
                direction: Direction::Both,
                on_s: 0.000_000_5,
                period_s: 0.000_001,
            }
            .into(),
            start_s: 0.0,
            duration_s: 1e6,
            path: None,
            host: 0,
        };
        assert!(f.pulse_count() > MAX_PULSES);
        assert_eq!(f.pulses().len(), MAX_PULSES);
    }
}
