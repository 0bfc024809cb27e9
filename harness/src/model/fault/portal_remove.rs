//! `portal_remove`: the target's network portal is removed at the start
//! and restored at the end (tgt: `tgtadm --op delete --mode portal`; LIO:
//! the `np` rmdir). Live sessions do not notice; a blackhole inside it makes
//! the session reconnect while the portal is gone (the oracle models that
//! pair).

use super::{evidence, FaultKind, Holds, Kind, LinkEffect, Notes, Reach, Registration};
use crate::history::Effect;
use crate::model::action::Action;
use crate::model::timing::Timeouts;
use crate::model::{Direction, TargetKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortalRemove;

pub const REGISTRATION: Registration = Registration {
    name: "portal_remove",
    doc: "The target's network portal is removed at the start and restored at the end (tgt: `tgtadm --op delete --mode portal`; LIO: the `np` removed). Live sessions do not notice; it may hold blackholes (run inside it), whose reconnects it refuses.",
    options: &[],
    whole_link: Some("it acts on the target, not on the link: both directions"),
    parse: |_, _| Some(PortalRemove.into()),
    needs: &[],
    reach: Reach::Portal,
    took_effect: |events| evidence::effect(events, |e| matches!(e, Effect::Portal { .. })),
};

impl Kind for PortalRemove {
    fn direction(&self) -> Option<Direction> {
        None
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::SetPortal { present: false },
            Action::SetPortal { present: true },
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Unnoticed
    }
    fn notes(&self, _: &Timeouts, i: usize, _: f64, _: TargetKind) -> Notes {
        Notes {
            borderline: false,
            notes: vec![format!(
                "fault {i}: portal_remove: live sessions do not notice (only the listener goes); only a reconnect during the fault would be refused: no error, no stall"
            )],
        }
    }
    fn holds(&self) -> Option<Holds> {
        Some(Holds {
            kind: |inner| matches!(inner, FaultKind::Blackhole(_)),
            hint: "only a blackhole that ends before the portal is restored may overlap it",
        })
    }
}
