//! `controller_stall`: the path's controller stops taking commands and
//! later resumes, carrying out everything that was queued for it. The
//! switch port in front of the target holds every frame toward it (the
//! plug qdisc, `sch_plug`) and lets them all go, in order, when the fault
//! ends: the target receives and executes the commands late, as a hung
//! controller of a dual-controller array would when it comes back.
//!
//! To the initiator it is a silent outage of the path. Under
//! dm-multipath a write held there is failed on that path (detection +
//! fast_io_fail_tmo) and retried on another; if the probe then writes
//! newer data to the block before the controller resumes, the held copy
//! lands over it: a lost update (a ghost write). The oracle says when
//! that is possible ([`crate::oracle::multipath`]).
//!
//! `held_at` says whose copy is held. `"controller"` (the default): the
//! frames are what was sent, as in a real switch or controller (the
//! initiator's end copies data into its frames: no zero-copy). `"host"`:
//! the frames are held inside the host's own kernel (a qdisc, bridge or
//! veth of its own, a paused NIC queue), where a zero-copy frame still
//! points at the writer's buffer: reused after the failover, it carries
//! the new bytes to the old block (a misdirected write).

use super::{evidence, Kind, LinkEffect, Notes, Reach, Registration};
use crate::model::action::{hold, Action};
use crate::model::keys::{Bound, KeySpec};
use crate::model::needs::Requirement;
use crate::model::timing::{OutageMode, Timeouts};
use crate::model::{Direction, TargetKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerStall {
    pub held_at: HeldAt,
}

/// Whose copy of the frames is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldAt {
    /// Outside the host: the bytes that were sent.
    Controller,
    /// Inside the host's kernel: zero-copy frames still pointing at the
    /// writer's buffers.
    Host,
}

impl HeldAt {
    pub fn as_str(self) -> &'static str {
        match self {
            HeldAt::Controller => "controller",
            HeldAt::Host => "host",
        }
    }
}

pub const REGISTRATION: Registration = Registration {
    name: "controller_stall",
    doc: "The path's controller stops taking commands for the fault's duration, then resumes and carries out everything queued for it: the switch port in front of the target holds every frame toward it (the plug qdisc) and delivers them all, in order, when the fault ends. To the initiator a silent outage; under dm-multipath a write failed over to another path and rewritten there can be overwritten by its held copy (a ghost write).",
    options: &[KeySpec {
        default: "\"controller\"",
        bound: Bound::Words(&["controller", "host"]),
        ..KeySpec::new("held_at", "string", "whose copy of the frames is held: the controller's (the bytes that were sent) or the host's own stack's (zero-copy frames that still point at the writer's buffers, which it may have reused)")
    }],
    whole_link: Some("it holds what goes to the controller; the controller has nothing to answer meanwhile"),
    parse: |o, _| {
        let hint = "\"controller\" (the bytes sent) or \"host\" (zero-copy frames held in the host)";
        let held_at = match o.string("held_at", hint).ok()?.as_deref() {
            None | Some("controller") => HeldAt::Controller,
            Some("host") => HeldAt::Host,
            Some(other) => {
                o.err(
                    o.span("held_at"),
                    "held_at",
                    format!("`{other}` is neither \"controller\" nor \"host\""),
                    Some(hint.into()),
                );
                return None;
            }
        };
        Some(ControllerStall { held_at }.into())
    },
    needs: &[Requirement::Module("sch_plug")],
    reach: Reach::Fabric,
    took_effect: |events| evidence::qdisc_saw_packets(events) && evidence::wire_held(events),
};

impl Kind for ControllerStall {
    fn direction(&self) -> Option<Direction> {
        None
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::Shape {
                direction: Direction::ToTarget,
                qdisc: hold(),
            },
            Action::Release {
                direction: Direction::ToTarget,
            },
        )
    }
    fn copies_at_send(&self) -> bool {
        self.held_at == HeldAt::Controller
    }
    fn parameters(&self) -> String {
        match self.held_at {
            HeldAt::Controller => String::new(),
            HeldAt::Host => "held in the host".into(),
        }
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Outage(OutageMode::SilentDrop)
    }
    fn notes(&self, _: &Timeouts, index: usize, duration_s: f64, _: TargetKind) -> Notes {
        Notes {
            borderline: false,
            notes: vec![format!(
                "fault {index}: the controller carries out what it held after {duration_s} s; with one path nothing newer can reach the disk first (the relogin queues behind the held commands): no lost update"
            )],
        }
    }
}
