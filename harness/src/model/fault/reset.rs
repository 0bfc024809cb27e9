//! `reset`: the target's end answers every packet to the portal with a TCP
//! RST for the fault's duration, or for `on_s` every `period_s`: the live
//! connection is reset at once, reconnects are refused meanwhile.

use super::{evidence, flap, Kind, LinkEffect, Pulse, Reach, Registration};
use crate::model::action::Action;
use crate::model::needs::FIREWALL;
use crate::model::timing::OutageMode;
use crate::model::{Direction, TargetKind};
use crate::wire::nft::Rule;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reset {
    pub pulse: Option<Pulse>,
}

pub const REGISTRATION: Registration = Registration {
    name: "reset",
    doc: "The target's end answers every packet to the portal with a TCP RST (nftables `reject with tcp reset` in the lane's namespace): the live connection is reset at once, new ones refused, for the fault's duration; with `on_s` and `period_s`, for `on_s` every `period_s` (as for flap).",
    options: &flap::pulse_options(""),
    whole_link: Some("the target's end resets the connection: both directions"),
    parse: |o, _| {
        let pulse = if o.has("on_s") || o.has("period_s") {
            Some(flap::pulse(o)?)
        } else {
            None
        };
        Some(Reset { pulse }.into())
    },
    needs: FIREWALL,
    reach: Reach::Portal,
    took_effect: |events| evidence::rule_matched(events) && evidence::wire_reset_sent(events),
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
    fn parameters(&self) -> String {
        self.pulse.map_or(String::new(), |p| {
            format!("{} s on every {} s", p.on_s, p.period_s)
        })
    }
}
