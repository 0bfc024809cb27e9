//! `access_revoke`: the initiator's access is revoked at the start (tgt:
//! unbind its address and close its connections; LIO: remove its ACL, which
//! closes its sessions) and restored at the end: relogins are refused
//! meanwhile.

use super::{evidence, Kind, LinkEffect, Notes, Reach, Registration};
use crate::history::Effect;
use crate::model::action::Action;
use crate::model::timing::{OutageMode, Timeouts, LOGIN_REJECTED_RETRY_S};
use crate::model::{Direction, TargetKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccessRevoke;

pub const REGISTRATION: Registration = Registration {
    name: "access_revoke",
    doc: "The initiator's access is revoked at the start (tgt: its address unbound and its connections closed; LIO: its ACL removed, which closes its sessions) and restored at the end: relogins are refused meanwhile.",
    options: &[],
    whole_link: Some("it acts on the target, not on the link: both directions"),
    parse: |_, _| Some(AccessRevoke.into()),
    needs: &[],
    reach: Reach::Portal,
    took_effect: |events| evidence::effect(events, |e| matches!(e, Effect::Access { .. })),
};

impl Kind for AccessRevoke {
    fn direction(&self) -> Option<Direction> {
        None
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::SetAccess { allowed: false },
            Action::SetAccess { allowed: true },
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Outage(OutageMode::LoginRejected)
    }
    fn notes(&self, _: &Timeouts, i: usize, _: f64, target: TargetKind) -> Notes {
        let note = match target {
            TargetKind::Tgt => format!(
                "fault {i}: access_revoke on tgt: unbind (live connections survive it), then their connections closed; logins rejected every {LOGIN_REJECTED_RETRY_S} s until bound again"
            ),
            TargetKind::Lio => format!(
                "fault {i}: access_revoke on LIO: the ACL's sessions shut down, then the ACL removed; logins rejected every {LOGIN_REJECTED_RETRY_S} s until it is made again"
            ),
        };
        Notes {
            borderline: false,
            notes: vec![note],
        }
    }
}
