//! `netem`: partial impairments (delay, jitter, loss, duplication,
//! corruption, reordering, a rate) for the fault's duration.

use std::time::Duration;

use super::{evidence, Kind, LinkEffect, Options, Reach, Registration};
use crate::model::action::Action;
use crate::model::keys::{Bound, KeySpec};
use crate::model::needs::NETEM;
use crate::model::{Direction, NetemSpec, TargetKind};
use crate::wire::tc::{self, NetemRate, Qdisc};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Netem {
    pub direction: Direction,
    pub spec: NetemSpec,
}

/// A percentage of packets.
const fn pct(key: &'static str, meaning: &'static str) -> KeySpec {
    KeySpec {
        unit: "%",
        default: "0",
        bound: Bound::Num {
            min: 0.0,
            min_open: false,
            max: 100.0,
        },
        ..KeySpec::new(key, "number", meaning)
    }
}

/// A time in ms, up to [`MAX_DELAY_MS`].
const fn ms(key: &'static str, meaning: &'static str) -> KeySpec {
    KeySpec {
        unit: "ms",
        default: "0",
        bound: Bound::Num {
            min: 0.0,
            min_open: false,
            max: MAX_DELAY_MS,
        },
        ..KeySpec::new(key, "number", meaning)
    }
}

/// `rate_kbit` (netem's rate emulation; tbf's cap, required there).
pub const RATE_KBIT: KeySpec = KeySpec {
    unit: "kbit/s",
    bound: Bound::Int {
        min: 1,
        max: MAX_RATE_KBIT,
    },
    ..KeySpec::new(
        "rate_kbit",
        "integer",
        "the link's rate: packets wait to fit it",
    )
};

/// netem's options: the impairments in the order of [`NetemSpec`], then
/// `rate_kbit`.
const OPTIONS: &[KeySpec] = &[
    ms("delay_ms", "added one-way delay"),
    ms("jitter_ms", "+/- around delay_ms (needs delay_ms > 0)"),
    pct("loss_pct", "packets dropped (100: use blackhole)"),
    pct("duplicate_pct", "packets sent twice"),
    pct("corrupt_pct", "packets with one flipped bit"),
    pct(
        "reorder_pct",
        "packets sent at once instead of delayed (needs delay_ms > 0)",
    ),
    RATE_KBIT,
];
const IMPAIRMENTS: &[KeySpec] = OPTIONS.split_at(6).0;

/// Largest rate a scenario may give, in kbit/s (100 Gbit/s).
pub const MAX_RATE_KBIT: i64 = 100_000_000;

pub const REGISTRATION: Registration = Registration {
    name: "netem",
    doc: "Partial impairments (netem) for the fault's duration: delay, jitter, loss, duplication, corruption, reordering, a rate. At least one option; 100 % loss is a blackhole.",
    options: OPTIONS,
    whole_link: None,
    parse: |o, direction| {
        Some(
            Netem {
                direction,
                spec: parse(o)?,
            }
            .into(),
        )
    },
    needs: &[NETEM],
    reach: Reach::Fabric,
    took_effect: evidence::qdisc_saw_packets,
};

/// `rate_kbit`: `Some(None)` when absent and optional, `None` when invalid
/// (or absent and `required`).
pub fn rate_kbit(o: &mut Options<'_>, required: bool) -> Option<Option<u64>> {
    let hint = "kilobits per second, e.g. 10000 for 10 Mbit/s";
    match o.integer("rate_kbit", hint) {
        Err(_) => None,
        Ok(None) if required => {
            o.missing("rate_kbit", &format!("add `rate_kbit = ...` ({hint})"));
            None
        }
        Ok(None) => Some(None),
        Ok(Some(v)) if v > 0 && v <= MAX_RATE_KBIT => Some(Some(v as u64)),
        Ok(Some(v)) => {
            o.err(
                o.span("rate_kbit"),
                "rate_kbit",
                if v > 0 {
                    format!("must be at most {MAX_RATE_KBIT}, got {v}")
                } else {
                    format!("must be > 0, got {v}")
                },
                Some(hint.into()),
            );
            None
        }
    }
}

/// The impairments that are set, in the order of [`OPTIONS`]:
/// "delay 200 ms ± 50 ms, loss 30%".
fn describe(s: &NetemSpec) -> String {
    let mut parts = Vec::new();
    if s.delay_ms > 0.0 {
        parts.push(if s.jitter_ms > 0.0 {
            format!("delay {} ms ± {} ms", s.delay_ms, s.jitter_ms)
        } else {
            format!("delay {} ms", s.delay_ms)
        });
    }
    for (name, pct) in [
        ("loss", s.loss_pct),
        ("duplicate", s.duplicate_pct),
        ("corrupt", s.corrupt_pct),
        ("reorder", s.reorder_pct),
    ] {
        if pct > 0.0 {
            parts.push(format!("{name} {pct}%"));
        }
    }
    if let Some(r) = s.rate_kbit {
        parts.push(format!("rate {r} kbit/s"));
    }
    parts.join(", ")
}

/// Largest delay or jitter, in ms (netem takes more, but a minute per
/// packet is an outage).
pub const MAX_DELAY_MS: f64 = 60_000.0;

/// netem for a scenario's impairments (tc's units: `delay 50ms 100ms loss 5%`).
/// Never panics: a delay outside `0..=MAX_DELAY_MS` (which the parser
/// refuses) is clamped into it.
pub fn netem_for(spec: &NetemSpec) -> tc::Netem {
    let ms = |x: f64| {
        let x = if x.is_nan() {
            0.0
        } else {
            x.clamp(0.0, MAX_DELAY_MS)
        };
        Duration::try_from_secs_f64(x / 1000.0).unwrap_or(Duration::ZERO)
    };
    tc::Netem {
        delay: ms(spec.delay_ms),
        jitter: ms(spec.jitter_ms),
        loss: spec.loss_pct,
        duplicate: spec.duplicate_pct,
        corrupt: spec.corrupt_pct,
        reorder: spec.reorder_pct,
        rate: spec.rate_kbit.map(|k| NetemRate {
            bytes_per_s: k.saturating_mul(1000) / 8,
            packet_overhead: 0,
            cell_size: 0,
            cell_overhead: 0,
        }),
        ..tc::Netem::default()
    }
}

fn parse(o: &mut Options<'_>) -> Option<NetemSpec> {
    let mut ok = true;
    let mut values = [0.0f64; 6];
    for (slot, spec) in values.iter_mut().zip(IMPAIRMENTS) {
        let name = spec.key;
        let pct = name.ends_with("_pct");
        let hint = if pct {
            "5 means 5 % of packets"
        } else {
            "milliseconds, e.g. 50"
        };
        let x = match o.number(name, hint) {
            Err(_) => {
                ok = false;
                continue;
            }
            Ok(None) => continue,
            Ok(Some(x)) => x,
        };
        let valid = x.is_finite() && x >= 0.0 && if pct { x <= 100.0 } else { x <= MAX_DELAY_MS };
        if valid {
            *slot = x;
        } else {
            let msg = if pct {
                format!("must be a percentage from 0 to 100, got {x}")
            } else if x > MAX_DELAY_MS {
                format!("must be at most {MAX_DELAY_MS}, got {x}")
            } else {
                format!("must be >= 0, got {x}")
            };
            o.err(o.span(name), name, msg, Some(hint.into()));
            ok = false;
        }
    }
    let [delay_ms, jitter_ms, loss_pct, duplicate_pct, corrupt_pct, reorder_pct] = values;
    let rate_kbit = rate_kbit(o, false);
    ok &= rate_kbit.is_some();
    let rate_kbit = rate_kbit.flatten();
    if !ok {
        return None;
    }
    // netem takes jitter and reordering only around a delay.
    for (name, x) in [("jitter_ms", jitter_ms), ("reorder_pct", reorder_pct)] {
        if x > 0.0 && delay_ms == 0.0 {
            o.err(
                o.span(name),
                name,
                "needs delay_ms > 0".into(),
                Some("netem applies it around a delay: add delay_ms = ...".into()),
            );
            ok = false;
        }
    }
    if loss_pct == 100.0 {
        o.err(
            o.span("loss_pct"),
            "loss_pct",
            "100 % loss is an outage".into(),
            Some("write kind = \"blackhole\", which the oracle models".into()),
        );
        ok = false;
    }
    let spec = NetemSpec {
        delay_ms,
        jitter_ms,
        loss_pct,
        duplicate_pct,
        corrupt_pct,
        reorder_pct,
        rate_kbit,
    };
    if ok && spec == NetemSpec::default() {
        o.err(
            o.kind_span.clone(),
            "kind",
            "a netem fault needs at least one impairment".into(),
            Some(
                "set delay_ms, jitter_ms, loss_pct, duplicate_pct, corrupt_pct, reorder_pct or rate_kbit"
                    .into(),
            ),
        );
        ok = false;
    }
    ok.then_some(spec)
}

impl Kind for Netem {
    fn direction(&self) -> Option<Direction> {
        Some(self.direction)
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::Shape {
                direction: self.direction,
                qdisc: Qdisc::Netem(netem_for(&self.spec)),
            },
            Action::Clear {
                direction: self.direction,
            },
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Impaired {
            direction: self.direction,
            spec: self.spec,
        }
    }
    fn parameters(&self) -> String {
        describe(&self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impairments_map_to_netem_options() {
        let n = netem_for(&NetemSpec {
            delay_ms: 50.0,
            jitter_ms: 100.0,
            loss_pct: 5.0,
            duplicate_pct: 1.0,
            corrupt_pct: 0.5,
            reorder_pct: 25.0,
            rate_kbit: Some(8000),
        });
        assert_eq!(n.delay, Duration::from_millis(50));
        assert_eq!(n.jitter, Duration::from_millis(100));
        assert_eq!(
            (n.loss, n.duplicate, n.corrupt, n.reorder),
            (5.0, 1.0, 0.5, 25.0)
        );
        assert_eq!(n.rate.unwrap().bytes_per_s, 1_000_000);
        assert_eq!(n.limit, 1000);
        // And the encoder accepts it (reorder with a delay).
        crate::wire::tc::new_qdisc_request(3, &Qdisc::Netem(n), 1).unwrap();
        let plain = netem_for(&NetemSpec {
            loss_pct: 5.0,
            ..NetemSpec::default()
        });
        assert_eq!(plain.rate, None);
        assert_eq!(plain.delay, Duration::ZERO);
    }

    #[test]
    fn conversions_never_panic_outside_the_parser_bounds() {
        // The parser refuses these; a hand-made spec still converts.
        for x in [f64::NAN, f64::INFINITY, -1.0, 1e308] {
            let n = netem_for(&NetemSpec {
                delay_ms: x,
                jitter_ms: x,
                rate_kbit: Some(u64::MAX),
                ..NetemSpec::default()
            });
            assert!(n.delay <= Duration::from_secs(60), "{x}: {:?}", n.delay);
            assert_eq!(n.rate.unwrap().bytes_per_s, u64::MAX / 8);
        }
    }
}
