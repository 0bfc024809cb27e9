//! `flap`: a blackhole of `on_s` every `period_s`, from the fault's start
//! to its end (one step pair per pulse).

use super::{evidence, Kind, LinkEffect, Options, Pulse, Reach, Registration, MIN_STEP_S};
use crate::model::action::Action;
use crate::model::keys::{Bound, KeySpec, REQUIRED};
use crate::model::needs::NETEM;
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
    doc: "A blackhole of `on_s` every `period_s`, from the fault's start to its end: pulses start at start_s, start_s + period_s, ...",
    options: &pulse_options(REQUIRED),
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
    needs: &[NETEM],
    reach: Reach::Fabric,
    took_effect: evidence::qdisc_dropped,
};

/// The specs of `on_s` and `period_s` (required for a flap; optional, as
/// a pair, for a reset).
pub const fn pulse_options(default: &'static str) -> [KeySpec; 2] {
    let range = Bound::Num {
        min: MIN_STEP_S,
        min_open: false,
        max: MAX_DURATION_S,
    };
    [
        KeySpec {
            unit: "s",
            default,
            bound: range,
            ..KeySpec::new("on_s", "number", "how long each pulse is in place")
        },
        KeySpec {
            unit: "s",
            default,
            bound: Bound::Text("at least on_s + 0.1"),
            ..KeySpec::new(
                "period_s",
                "number",
                "from the start of one pulse to the next",
            )
        },
    ]
}

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
    fn parameters(&self) -> String {
        format!("{} s on every {} s", self.on_s, self.period_s)
    }
}
