//! `flap`: a blackhole of `on_s` every `period_s`, from the fault's start
//! to its end (one step pair per pulse).

use super::{evidence, Kind, LinkEffect, Options, Pulse, Registration};
use crate::model::action::Action;
use crate::model::needs::{Requirement, NETEM};
use crate::model::timing::OutageMode;
use crate::model::{Direction, TargetKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flap {
    pub direction: Direction,
    pub on_s: f64,
    pub period_s: f64,
}

pub const REGISTRATION: Registration = Registration {
    name: "flap",
    options: &["on_s", "period_s"],
    whole_link: None,
    parse: |o, direction| {
        let p = pulse(o)?;
        Some(
            Flap {
                direction,
                on_s: p.on_s,
                period_s: p.period_s,
            }
            .into(),
        )
    },
    took_effect: evidence::qdisc_dropped,
};

/// `on_s` and `period_s` of a pulsed fault (flap, reset): both > 0, the
/// period longer than the pulse.
pub fn pulse(o: &mut Options<'_>) -> Option<Pulse> {
    let on = o.need_positive("on_s", "seconds in place per period");
    let period = o.need_positive("period_s", "seconds from one pulse to the next");
    let (on_s, period_s) = (on?, period?);
    if period_s <= on_s {
        o.err(
            o.span("period_s"),
            "period_s",
            format!("must be larger than on_s ({period_s} <= {on_s})"),
            Some("the link must come back between pulses; use blackhole for one outage".into()),
        );
        return None;
    }
    Some(Pulse { on_s, period_s })
}

impl Kind for Flap {
    fn direction(&self) -> Option<Direction> {
        Some(self.direction)
    }
    fn pulse(&self) -> Option<Pulse> {
        Some(Pulse {
            on_s: self.on_s,
            period_s: self.period_s,
        })
    }
    fn actions(&self) -> (Action, Action) {
        super::blackhole::actions(self.direction)
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Outage(OutageMode::SilentDrop)
    }
    fn needs(&self) -> &'static [Requirement] {
        &[NETEM]
    }
}
