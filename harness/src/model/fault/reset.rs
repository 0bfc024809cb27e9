//! `reset`: the target's end answers every packet to the portal with a TCP
//! RST for the fault's duration, or for `on_s` every `period_s`: the live
//! connection is reset at once, reconnects are refused meanwhile.

use super::{evidence, flap, Kind, LinkEffect, Pulse, Reach, Registration};
use crate::model::action::Action;
use crate::model::needs::{Requirement, FIREWALL};
use crate::model::timing::OutageMode;
use crate::model::{Direction, TargetKind};
use crate::wire::nft::Rule;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reset {
    pub pulse: Option<Pulse>,
}

pub const REGISTRATION: Registration = Registration {
    name: "reset",
    options: &["on_s", "period_s"],
    whole_link: Some("the target's end resets the connection: both directions"),
    parse: |o, _| {
        let pulse = if o.has("on_s") || o.has("period_s") {
            Some(flap::pulse(o)?)
        } else {
            None
        };
        Some(Reset { pulse }.into())
    },
    took_effect: evidence::rule_matched,
};

impl Kind for Reset {
    fn direction(&self) -> Option<Direction> {
        None
    }
    fn pulse(&self) -> Option<Pulse> {
        self.pulse
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::Firewall { rule: Rule::Reset },
            Action::ClearFirewall,
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Outage(OutageMode::Reset)
    }
    fn needs(&self) -> &'static [Requirement] {
        FIREWALL
    }
    fn reach(&self) -> Reach {
        Reach::Portal
    }
    fn parameters(&self) -> String {
        self.pulse.map_or(String::new(), |p| {
            format!("{} s on every {} s", p.on_s, p.period_s)
        })
    }
}
