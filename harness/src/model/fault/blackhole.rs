//! `blackhole`: every packet dropped silently (netem `loss 100%`): no RST,
//! no ICMP. The outage the open-iscsi timeout model is built on.

use super::{evidence, Kind, LinkEffect, Reach, Registration};
use crate::model::action::{blackhole, Action};
use crate::model::needs::NETEM;
use crate::model::timing::OutageMode;
use crate::model::{Direction, TargetKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blackhole {
    pub direction: Direction,
}

pub const REGISTRATION: Registration = Registration {
    name: "blackhole",
    doc: "Every packet dropped silently (netem `loss 100%`): no RST, no ICMP. The outage the open-iscsi timeout model is built on.",
    options: &[],
    whole_link: None,
    parse: |_, direction| Some(Blackhole { direction }.into()),
    needs: &[NETEM],
    reach: Reach::Fabric,
    took_effect: |events| evidence::qdisc_dropped(events) && evidence::wire_silenced(events),
};

/// A blackhole on `direction`, and its removal (also each pulse of a flap).
pub fn actions(direction: Direction) -> (Action, Action) {
    (
        Action::Shape {
            direction,
            qdisc: blackhole(),
        },
        Action::Clear { direction },
    )
}

impl Kind for Blackhole {
    fn direction(&self) -> Option<Direction> {
        Some(self.direction)
    }
    fn actions(&self) -> (Action, Action) {
        actions(self.direction)
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Outage(OutageMode::SilentDrop)
    }
}
