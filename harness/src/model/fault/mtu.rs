//! `mtu`: jumbo frames on one hop only: packets longer than `mtu` vanish
//! both ways while both hosts keep the lane's larger MTU (so TCP keeps
//! sending large segments, on new connections too); small ones (login,
//! NOP-Out) pass. The lane's MTU must be larger (checked by the parser).

use super::{evidence, Kind, LinkEffect, Registration};
use crate::model::action::Action;
use crate::model::needs::{Requirement, FIREWALL};
use crate::model::{Direction, TargetKind, MTU_RANGE};
use crate::wire::nft::Rule;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mtu {
    pub mtu: u32,
}

pub const REGISTRATION: Registration = Registration {
    name: "mtu",
    options: &["mtu"],
    whole_link: Some("a hop's MTU applies to both directions"),
    parse: |o, _| {
        let hint = "bytes, e.g. 1500";
        match o.integer("mtu", hint).ok()? {
            None => {
                o.missing(
                    "mtu",
                    "add `mtu = 1500`: the MTU of the hop that drops larger frames",
                );
                None
            }
            Some(v) if MTU_RANGE.contains(&v) => Some(Mtu { mtu: v as u32 }.into()),
            Some(v) => {
                o.err(
                    o.span("mtu"),
                    "mtu",
                    format!(
                        "must be from {} to {}, got {v}",
                        MTU_RANGE.start(),
                        MTU_RANGE.end()
                    ),
                    Some(hint.into()),
                );
                None
            }
        }
    },
    took_effect: evidence::rule_matched,
};

impl Kind for Mtu {
    fn direction(&self) -> Option<Direction> {
        Some(Direction::Both)
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::Firewall {
                rule: Rule::DropOversize { mtu: self.mtu },
            },
            Action::ClearFirewall,
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Oversize { mtu: self.mtu }
    }
    fn needs(&self) -> &'static [Requirement] {
        FIREWALL
    }
}
