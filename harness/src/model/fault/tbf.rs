//! `tbf`: a bandwidth cap (tbf) on the sending end(s) of `direction`.

use super::{evidence, netem::rate_kbit, Kind, LinkEffect, Reach, Registration};
use crate::model::action::{tbf_for, Action};
use crate::model::keys::{KeySpec, REQUIRED};
use crate::model::needs::Requirement;
use crate::model::{Direction, TargetKind};
use crate::wire::tc::Qdisc;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tbf {
    pub direction: Direction,
    pub rate_kbit: u64,
}

pub const REGISTRATION: Registration = Registration {
    name: "tbf",
    doc: "A bandwidth cap (tbf) on the sending end(s) of `direction`: stalls, no error.",
    options: &[KeySpec {
        default: REQUIRED,
        ..super::netem::RATE_KBIT
    }],
    whole_link: None,
    parse: |o, direction| {
        let rate_kbit = rate_kbit(o, true).flatten()?;
        Some(
            Tbf {
                direction,
                rate_kbit,
            }
            .into(),
        )
    },
    needs: &[Requirement::Module("sch_tbf")],
    reach: Reach::Fabric,
    took_effect: evidence::qdisc_saw_packets,
};

impl Kind for Tbf {
    fn direction(&self) -> Option<Direction> {
        Some(self.direction)
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::Shape {
                direction: self.direction,
                qdisc: Qdisc::Tbf(tbf_for(self.rate_kbit)),
            },
            Action::Clear {
                direction: self.direction,
            },
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Capped {
            rate_kbit: self.rate_kbit,
        }
    }
    fn parameters(&self) -> String {
        format!("{} kbit/s", self.rate_kbit)
    }
}
