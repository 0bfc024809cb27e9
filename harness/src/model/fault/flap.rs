//! `flap`: a blackhole of `on_s` every `period_s`, from the fault's start
//! to its end (one step pair per pulse).

use super::{evidence, Kind, LinkEffect, Options, Pulse, Reach, Registration, MIN_STEP_S};
use crate::model::action::Action;
use crate::model::needs::{Requirement, NETEM};
use crate::model::timing::OutageMode;
use crate::model::{Direction, TargetKind, MAX_DURATION_S};

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

/// `on_s` and `period_s` of a pulsed fault (flap, reset): both > 0 and at
/// most [`MAX_DURATION_S`], the period longer than the pulse; the pulse and
/// the gap between pulses at least [`MIN_STEP_S`].
pub fn pulse(o: &mut Options<'_>) -> Option<Pulse> {
    let on = o.need_positive("on_s", "seconds in place per period");
    let period = o.need_positive("period_s", "seconds from one pulse to the next");
    let mut ok = true;
    for (name, x) in [("on_s", on), ("period_s", period)] {
        match x {
            Some(x) if x > MAX_DURATION_S => {
                o.err(
                    o.span(name),
                    name,
                    format!("must be from {MIN_STEP_S} to {MAX_DURATION_S}, got {x}"),
                    Some("seconds, no longer than the longest scenario".into()),
                );
                ok = false;
            }
            Some(x) if name == "on_s" && x < MIN_STEP_S => {
                o.err(
                    o.span(name),
                    name,
                    format!("must be >= {MIN_STEP_S} s, got {x}"),
                    Some("a fault step takes a few milliseconds to apply: shorter pulses are not what they say".into()),
                );
                ok = false;
            }
            _ => {}
        }
    }
    let (on_s, period_s) = (on?, period?);
    if !ok {
        return None;
    }
    if period_s <= on_s {
        o.err(
            o.span("period_s"),
            "period_s",
            format!("must be larger than on_s ({period_s} <= {on_s})"),
            Some("the link must come back between pulses; use blackhole for one outage".into()),
        );
        return None;
    }
    if period_s - on_s < MIN_STEP_S {
        o.err(
            o.span("period_s"),
            "period_s",
            format!(
                "leaves {} s between pulses: less than {MIN_STEP_S} s",
                ((period_s - on_s) * 1e6).round() / 1e6
            ),
            Some(format!("set period_s >= on_s + {MIN_STEP_S}")),
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
    fn reach(&self) -> Reach {
        Reach::Fabric
    }
    fn parameters(&self) -> String {
        format!("{} s on every {} s", self.on_s, self.period_s)
    }
}
