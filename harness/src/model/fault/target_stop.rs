//! `target_stop`: the target process is killed at the start and started
//! again at the end (tgt: tgtd killed, connections reset, then refused
//! while it is down; LIO: the TPG disabled, logins rejected).

use super::{evidence, Kind, LinkEffect, Notes, Reach, Registration};
use crate::history::Effect;
use crate::model::action::Action;
use crate::model::timing::{OutageMode, Timeouts, LOGIN_REJECTED_RETRY_S};
use crate::model::{Direction, TargetKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetStop;

pub const REGISTRATION: Registration = Registration {
    name: "target_stop",
    doc: "The target process is killed at the start and started again at the end (LIO: the TPG disabled, then enabled): connections are refused meanwhile.",
    options: &[],
    whole_link: Some("target_stop stops the target process: both directions"),
    parse: |_, _| Some(TargetStop.into()),
    needs: &[],
    reach: Reach::Target,
    took_effect: |events| {
        evidence::effect(events, |e| {
            matches!(
                e,
                Effect::TargetKilled { .. } | Effect::TargetStarted { .. }
            )
        })
    },
};

impl Kind for TargetStop {
    fn direction(&self) -> Option<Direction> {
        None
    }
    fn actions(&self) -> (Action, Action) {
        (Action::StopTarget, Action::StartTarget)
    }
    fn link_effect(&self, target: TargetKind) -> LinkEffect {
        LinkEffect::Outage(match target {
            // A killed tgtd: its kernel closes the connections, connects
            // are refused.
            TargetKind::Tgt => OutageMode::Refused,
            // A disabled TPG accepts connections and rejects logins.
            TargetKind::Lio => OutageMode::LoginRejected,
        })
    }
    fn notes(&self, _: &Timeouts, i: usize, _: f64, target: TargetKind) -> Notes {
        let mut notes = vec![
            "target_stop: the target is killed (connections close: conn error 1020 at once) and restarted at the fault's end; its restart time is not modelled"
                .to_string(),
        ];
        if target == TargetKind::Lio {
            notes.push(format!(
                "fault {i}: target_stop on LIO disables the TPG: sessions close at once, connections are accepted and logins rejected (retried every {LOGIN_REJECTED_RETRY_S} s) until it is enabled again"
            ));
        }
        Notes {
            borderline: false,
            notes,
        }
    }
}
