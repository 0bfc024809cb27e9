//! `[[fault]]`: the common fields (kind, start_s, duration_s, direction,
//! path), each kind's options handed to its registration
//! ([`crate::model::fault`]), and the checks across faults (overlaps, what a
//! fault may hold, pulses).

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::diag::{closest_hint, fmt_s, shorten};
use super::raw::{field_of, RawFault};
use super::schema;
use super::Ctx;
use crate::model::fault::{self, Reach, Value as FaultValue, MAX_PULSES};
use crate::model::keys::names;
use crate::model::*;

/// Impairment names people write as a kind, and the netem option to use.
const NETEM_KIND_ALIASES: &[(&str, &str)] = &[
    ("delay", "delay_ms"),
    ("jitter", "jitter_ms"),
    ("loss", "loss_pct"),
    ("duplicate", "duplicate_pct"),
    ("corrupt", "corrupt_pct"),
    ("reorder", "reorder_pct"),
    ("rate", "rate_kbit"),
];

/// Whether `key` is one of the fault table's common fields (kind,
/// start_s, duration_s, direction, path).
fn is_common(key: &str) -> bool {
    schema::FAULT.iter().any(|s| s.key == key)
}

/// A fault table's values for its kind's parser, with spans.
fn fault_values(f: &RawFault) -> BTreeMap<String, (Range<usize>, FaultValue)> {
    f.iter()
        .filter(|(k, _)| !is_common(k.get_ref()))
        .map(|(k, v)| {
            let value = match v.get_ref() {
                toml::Value::Float(x) => FaultValue::Float(*x),
                toml::Value::Integer(x) => FaultValue::Int(*x),
                toml::Value::String(s) => FaultValue::Str(s.clone()),
                other => FaultValue::Other(other.type_str()),
            };
            (k.get_ref().clone(), (v.span(), value))
        })
        .collect()
}

/// Whether a fault table has a key no kind takes.
fn has_unknown_key(f: &RawFault) -> bool {
    f.keys().any(|k| {
        let k = k.get_ref().as_str();
        !is_common(k) && !fault::KINDS.iter().any(|r| r.takes(k))
    })
}

/// A required number of a fault table (start_s, duration_s).
fn fault_number(
    ctx: &mut Ctx<'_>,
    f: &Spanned<RawFault>,
    i: usize,
    name: &str,
) -> Option<Spanned<f64>> {
    let field = format!("fault[{i}].{name}");
    match field_of(f.get_ref(), name) {
        // A misspelt key is reported as such (with the closest name), not
        // also as the field it was meant to be.
        None if has_unknown_key(f.get_ref()) => None,
        None => {
            ctx.err(
                f.span(),
                &field,
                format!("missing field `{name}`"),
                Some(format!("add `{name} = ...`")),
            );
            None
        }
        Some(v) => match v.get_ref() {
            toml::Value::Float(x) => Some(Spanned::new(v.span(), *x)),
            toml::Value::Integer(x) => Some(Spanned::new(v.span(), *x as f64)),
            other => {
                ctx.err(
                    v.span(),
                    &field,
                    format!("invalid type: {}, expected a number", other.type_str()),
                    Some("a number of seconds".into()),
                );
                None
            }
        },
    }
}

/// A string field of a fault table (kind, direction).
fn fault_string(
    ctx: &mut Ctx<'_>,
    f: &Spanned<RawFault>,
    i: usize,
    name: &str,
) -> Option<Option<Spanned<String>>> {
    match field_of(f.get_ref(), name) {
        None => Some(None),
        Some(v) => match v.get_ref() {
            toml::Value::String(s) => Some(Some(Spanned::new(v.span(), s.clone()))),
            other => {
                ctx.err(
                    v.span(),
                    &format!("fault[{i}].{name}"),
                    format!("invalid type: {}, expected a string", other.type_str()),
                    None,
                );
                None
            }
        },
    }
}

/// A fault's `path`: `Some(None)` for every path (the default, or
/// "all"), `Some(Some(n))` for path n; `None` after a diagnostic. Only a
/// fault of the fabric (in a path's switch, or a host's cable) takes one,
/// and on a lane of several paths the target's own faults that act on one
/// portal (resets, portal, access) are not modelled yet.
fn fault_path(
    ctx: &mut Ctx<'_>,
    f: &Spanned<RawFault>,
    i: usize,
    kind: &FaultKind,
    lane_paths: Option<u8>,
) -> Option<Option<u8>> {
    let paths = lane_paths.unwrap_or(1);
    if paths > 1 && kind.reach() == Reach::Portal {
        ctx.err(
            field_of(f.get_ref(), "kind").map_or(f.span(), |v| v.span()),
            &format!("fault[{i}].kind"),
            format!(
                "`{}` is not modelled on a lane of several paths yet",
                kind.name()
            ),
            Some(
                "use a fault of the fabric (blackhole, netem, flap, port_down, ...) with path = N"
                    .into(),
            ),
        );
        return None;
    }
    let Some(v) = field_of(f.get_ref(), "path") else {
        return Some(None);
    };
    let field = format!("fault[{i}].path");
    if kind.reach() != Reach::Fabric {
        ctx.err(
            v.span(),
            &field,
            format!("`{}` acts on the target, not on one path", kind.name()),
            Some("remove `path`: only faults of the fabric take one".into()),
        );
        return None;
    }
    match v.get_ref() {
        toml::Value::String(s) if s == "all" => Some(None),
        toml::Value::Integer(n) if (0..i64::from(paths)).contains(n) => Some(Some(*n as u8)),
        other => {
            ctx.err(
                v.span(),
                &field,
                format!(
                    "must be \"all\" or a path from 0 to {}, got {other}",
                    paths - 1
                ),
                Some(format!("the lane has {paths} path(s) ([lane] paths)")),
            );
            None
        }
    }
}

/// A fault's `host` (0 by default). Only a fault of the fabric takes
/// one: the target's own faults reach every host.
fn fault_host(
    ctx: &mut Ctx<'_>,
    f: &Spanned<RawFault>,
    i: usize,
    kind: &FaultKind,
    hosts: Option<usize>,
) -> Option<u8> {
    let Some(v) = field_of(f.get_ref(), "host") else {
        return Some(0);
    };
    let field = format!("fault[{i}].host");
    if kind.reach() != Reach::Fabric {
        ctx.err(
            v.span(),
            &field,
            format!(
                "`{}` acts on the target, which every host shares",
                kind.name()
            ),
            Some("remove `host`: only faults of the fabric take one".into()),
        );
        return None;
    }
    match v.get_ref() {
        toml::Value::Integer(n) => super::hosts::host_index(ctx, v.span(), *n, &field, hosts),
        other => {
            ctx.err(
                v.span(),
                &field,
                format!("expected an integer, found {}", other.type_str()),
                Some("the host's number, e.g. host = 1".into()),
            );
            None
        }
    }
}

pub(super) fn build_faults(
    ctx: &mut Ctx<'_>,
    raw: Vec<Spanned<RawFault>>,
    scenario_duration: Option<f64>,
    // `None`: the lane did not parse (no cross-check); `Some(None)`: default MTU.
    lane_mtu: Option<Option<u32>>,
    lane_paths: Option<u8>,
    hosts: Option<usize>,
) -> Option<Vec<Fault>> {
    let mut ok = true;
    // (fault, span of start_s, span of kind) for the overlap check.
    let mut faults: Vec<(Fault, Range<usize>, Range<usize>)> = Vec::new();
    let mut total_pulses = 0usize;
    let mut pulses_reported = false;
    for (i, f) in raw.iter().enumerate() {
        let kind_field = fault_string(ctx, f, i, "kind");
        let kind_field = match kind_field {
            Some(Some(k)) => Some(k),
            Some(None) => {
                ctx.err(
                    f.span(),
                    &format!("fault[{i}].kind"),
                    "missing field `kind`".into(),
                    Some("add `kind = ...`".into()),
                );
                None
            }
            None => None,
        };
        let direction_field = fault_string(ctx, f, i, "direction");
        let direction = match &direction_field {
            None => None,
            Some(None) => Some(Direction::Both),
            Some(Some(d)) => {
                let all = [Direction::Both, Direction::ToTarget, Direction::ToInitiator];
                match all.iter().find(|x| x.as_str() == d.get_ref()) {
                    Some(x) => Some(*x),
                    None => {
                        let valid: Vec<&str> = all.iter().map(|x| x.as_str()).collect();
                        ctx.err(
                            d.span(),
                            &format!("fault[{i}].direction"),
                            format!("unknown direction `{}`", shorten(d.get_ref())),
                            Some(closest_hint(d.get_ref(), &valid, "directions")),
                        );
                        None
                    }
                }
            }
        };
        let start_s = fault_number(ctx, f, i, "start_s");
        let duration_s = fault_number(ctx, f, i, "duration_s");
        let Some(kind_name) = kind_field else {
            ok = false;
            continue;
        };
        let kind = build_fault_kind(
            ctx,
            i,
            f.get_ref(),
            &kind_name,
            direction,
            direction_field.flatten().as_ref(),
        );
        if let (Some(FaultKind::Mtu(m)), Some(lane_mtu)) = (kind, lane_mtu) {
            let lane_mtu = lane_mtu.unwrap_or(1500);
            if m.mtu >= lane_mtu {
                let span = f
                    .get_ref()
                    .iter()
                    .find(|(k, _)| k.get_ref() == "mtu")
                    .map(|(_, v)| v.span())
                    .unwrap_or(kind_name.span());
                ctx.err(
                    span,
                    &format!("fault[{i}].mtu"),
                    format!("must be below the lane's MTU ({lane_mtu}), got {}", m.mtu),
                    Some(format!(
                        "the fault lowers one hop below the lane's MTU: set [lane] mtu = 9000, or mtu < {lane_mtu} here"
                    )),
                );
                ok = false;
                continue;
            }
        }
        let (Some(start_v), Some(duration_v)) = (start_s, duration_s) else {
            ok = false;
            continue;
        };
        let start = ctx.non_negative(
            &start_v,
            &format!("fault[{i}].start_s"),
            MAX_DURATION_S,
            "seconds from the start of the I/O phase",
        );
        let duration = if *duration_v.get_ref() > 0.0 && *duration_v.get_ref() < fault::MIN_STEP_S {
            ctx.bounded(
                &duration_v,
                &format!("fault[{i}].duration_s"),
                fault::MIN_STEP_S,
                true,
                MAX_DURATION_S,
                "a fault step takes a few milliseconds to apply: shorter faults are not what they say",
            )
        } else {
            ctx.positive(
                &duration_v,
                &format!("fault[{i}].duration_s"),
                MAX_DURATION_S,
                "how long the fault lasts, in seconds",
            )
        };
        let (Some(kind), Some(start_s), Some(duration_s)) = (kind, start, duration) else {
            ok = false;
            continue;
        };
        let Some(path) = fault_path(ctx, f, i, &kind, lane_paths) else {
            ok = false;
            continue;
        };
        let Some(host) = fault_host(ctx, f, i, &kind, hosts) else {
            ok = false;
            continue;
        };
        let fault = Fault {
            index: i,
            kind,
            start_s,
            duration_s,
            path,
            host,
        };
        if let Some(total) = scenario_duration {
            if fault.end_s() > total + 1e-9 {
                ctx.err(
                    duration_v.span(),
                    &format!("fault[{i}].duration_s"),
                    format!(
                        "the fault ends at {} s, past the scenario's end at {total} s",
                        fmt_s(fault.end_s())
                    ),
                    Some(format!(
                        "shorten the fault or set duration_s >= {}",
                        fmt_s(fault.end_s())
                    )),
                );
                ok = false;
            }
        }
        if fault.pulse_count() > MAX_PULSES {
            pulses_reported = true;
            ctx.err(
                duration_v.span(),
                &format!("fault[{i}].duration_s"),
                format!(
                    "{} pulses: more than the {MAX_PULSES} a fault may have",
                    fault.pulse_count()
                ),
                Some("use a longer period_s or a shorter duration_s".into()),
            );
            ok = false;
        }
        total_pulses = total_pulses.saturating_add(fault.pulse_count());
        if total_pulses > MAX_PULSES && !pulses_reported {
            pulses_reported = true;
            ctx.err(
                duration_v.span(),
                &format!("fault[{i}].duration_s"),
                format!("the faults have {total_pulses} pulses in all: more than the {MAX_PULSES} a scenario may have"),
                Some("use fewer faults or longer periods".into()),
            );
            ok = false;
        }
        faults.push((fault, start_v.span(), kind_name.span()));
    }
    // One lane: any two faults in time overlap on it.
    let mut order: Vec<usize> = (0..faults.len()).collect();
    order.sort_by(|&a, &b| faults[a].0.start_s.total_cmp(&faults[b].0.start_s));
    let mut reported: Vec<(usize, usize)> = Vec::new();
    for w in order.windows(2) {
        let (a, b) = (&faults[w[0]], &faults[w[1]]);
        if b.0.start_s < a.0.end_s() - 1e-9 && !a.0.holds(&b.0) {
            reported.push((a.0.index, b.0.index));
            ctx.err(
                b.1.clone(),
                &format!("fault[{}].start_s", b.0.index),
                format!(
                    "overlaps fault[{}] ({} s to {} s) on the lane",
                    a.0.index,
                    fmt_s(a.0.start_s),
                    fmt_s(a.0.end_s())
                ),
                Some(format!(
                    "start it at {} s or later, or merge the two faults",
                    fmt_s(a.0.end_s())
                )),
            );
            ok = false;
        }
    }
    ok &= check_held_overlaps(ctx, &faults, &reported);
    if !ok {
        return None;
    }
    let mut out: Vec<Fault> = faults.into_iter().map(|(f, _, _)| f).collect();
    out.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    Some(out)
}

/// The kind and its own options, through the kind's registration; options
/// of other kinds and unknown keys are errors.
fn build_fault_kind(
    ctx: &mut Ctx<'_>,
    i: usize,
    f: &RawFault,
    kind_name: &Spanned<String>,
    direction: Option<Direction>,
    direction_field: Option<&Spanned<String>>,
) -> Option<FaultKind> {
    let name = kind_name.get_ref().as_str();
    let field = |option: &str| format!("fault[{i}].{option}");
    let Some(reg) = fault::registration(name) else {
        let hint = if let Some((_, opt)) = NETEM_KIND_ALIASES.iter().find(|(k, _)| *k == name) {
            format!("write kind = \"netem\" with {opt} = ...")
        } else {
            closest_hint(name, &fault::kind_names(), "fault kinds")
        };
        ctx.err(
            kind_name.span(),
            &field("kind"),
            format!("unknown fault kind `{}`", shorten(name)),
            Some(hint),
        );
        return None;
    };
    let mut ok = true;
    for key in f.keys() {
        let span = key.span();
        let key = key.get_ref();
        if is_common(key) || reg.takes(key) {
            continue;
        }
        let owners: Vec<&str> = fault::KINDS
            .iter()
            .filter(|r| r.takes(key))
            .map(|r| r.name)
            .collect();
        if owners.is_empty() {
            let mut valid = names(schema::FAULT);
            for o in fault::KINDS.iter().flat_map(|r| names(r.options)) {
                if !valid.contains(&o) {
                    valid.push(o);
                }
            }
            ctx.err(
                span,
                &field(key),
                format!("unknown field `{}`", shorten(key)),
                Some(closest_hint(key, &valid, "keys")),
            );
        } else {
            ctx.err(
                span,
                &field(key),
                format!("does not apply to kind = \"{name}\""),
                Some(format!(
                    "{key} is an option of kind = \"{}\"",
                    owners.join("\" or \"")
                )),
            );
        }
        ok = false;
    }
    if let (Some(why), Some(d)) = (reg.whole_link, direction_field) {
        ctx.err(
            d.span(),
            &field("direction"),
            format!("does not apply to kind = \"{name}\""),
            Some(why.into()),
        );
        ok = false;
    }
    let values = fault_values(f);
    let mut options = fault::Options::new(name, kind_name.span(), &values);
    let kind = (reg.parse)(&mut options, direction.unwrap_or(Direction::Both));
    for p in options.problems {
        ctx.err(p.span, &field(&p.option), p.message, p.hint);
    }
    (ok && direction.is_some()).then_some(kind).flatten()
}

/// Any other fault overlapping a fault that holds others (a
/// `portal_remove`; beyond the neighbours the caller compared, `reported`)
/// is an error.
fn check_held_overlaps(
    ctx: &mut Ctx<'_>,
    faults: &[(Fault, Range<usize>, Range<usize>)],
    reported: &[(usize, usize)],
) -> bool {
    let mut ok = true;
    for (p, holds) in faults
        .iter()
        .filter_map(|(p, _, _)| p.kind.holds().map(|h| (p, h)))
    {
        for (f, span, _) in faults {
            let overlaps =
                f.index != p.index && f.start_s < p.end_s() - 1e-9 && p.start_s < f.end_s() - 1e-9;
            let seen =
                reported.contains(&(p.index, f.index)) || reported.contains(&(f.index, p.index));
            if overlaps && !seen && !p.holds(f) {
                ctx.err(
                    span.clone(),
                    &format!("fault[{}].start_s", f.index),
                    format!(
                        "overlaps {} fault[{}] ({} s to {} s) on the lane",
                        p.kind.name(),
                        p.index,
                        fmt_s(p.start_s),
                        fmt_s(p.end_s())
                    ),
                    Some(holds.hint.into()),
                );
                ok = false;
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::parse::tests::*;

    #[test]
    fn negative_duration_and_start() {
        let d = err(&GOOD
            .replace("start_s = 5", "start_s = -1")
            .replace("duration_s = 25", "duration_s = -3"));
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["duration_s", "fault[1].start_s"]);
    }

    #[test]
    fn overlapping_faults() {
        let d = one(&GOOD.replace("start_s = 5", "start_s = 11"));
        assert_eq!(d.field, "fault[0].start_s");
        assert!(
            d.message.contains("overlaps fault[1] (11 s to 13.5 s)"),
            "{d}"
        );
        assert_eq!(d.line, 25);
    }

    #[test]
    fn fault_past_the_end() {
        let d = one(&GOOD.replace("start_s = 12", "start_s = 22"));
        assert_eq!(d.field, "fault[0].duration_s");
        assert!(
            d.message
                .contains("ends at 26 s, past the scenario's end at 25 s"),
            "{d}"
        );
        assert!(d.hint.as_deref().unwrap().contains("duration_s >= 26"));
    }

    #[test]
    fn unknown_kinds() {
        let d = one(&GOOD.replace(
            "kind = \"blackhole\"\nstart_s = 12",
            "kind = \"blakhole\"\nstart_s = 12",
        ));
        assert_eq!(d.field, "fault[0].kind");
        assert_eq!(d.hint.as_deref(), Some("did you mean `blackhole`?"));
        let d = one(&GOOD.replace(
            "kind = \"blackhole\"\nstart_s = 12",
            "kind = \"mtu\"\nstart_s = 12",
        ));
        assert_eq!(d.field, "fault[0].mtu");
        assert!(d.message.contains("needs mtu"), "{d}");
        let d = one(&GOOD.replace(
            "kind = \"blackhole\"\nstart_s = 12",
            "kind = \"delay\"\nstart_s = 12",
        ));
        assert_eq!(d.field, "fault[0].kind");
        assert_eq!(
            d.hint.as_deref(),
            Some("write kind = \"netem\" with delay_ms = ...")
        );
        let d = one(&GOOD.replace(
            "kind = \"blackhole\"\nstart_s = 12",
            "kind = \"target_stp\"\nstart_s = 12",
        ));
        assert_eq!(d.hint.as_deref(), Some("did you mean `target_stop`?"));
        let d = one(&GOOD.replace("[\"tgt\", \"lio\"]", "\"scst\""));
        assert_eq!(d.field, "lane.target");
        assert_eq!(d.line, 7);
        assert!(d.hint.unwrap().contains("tgt, lio"));
        let d = one(&GOOD.replace("[\"tgt\", \"lio\"]", "\"lo\""));
        assert_eq!(d.hint.as_deref(), Some("did you mean `lio`?"));
    }

    #[test]
    fn parses_netem_flap_and_target_stop() {
        let s = Scenario::parse(
            &with_fault(
                "kind = \"netem\"\ndirection = \"to_initiator\"\ndelay_ms = 25\njitter_ms = 100\nloss_pct = 5\nduplicate_pct = 1\ncorrupt_pct = 0.5\nreorder_pct = 25\nrate_kbit = 8000\n",
            ),
            "x.toml",
        )
        .unwrap();
        assert_eq!(
            s.faults[1].kind,
            FaultKind::Netem(fault::netem::Netem {
                direction: Direction::ToInitiator,
                spec: NetemSpec {
                    delay_ms: 25.0,
                    jitter_ms: 100.0,
                    loss_pct: 5.0,
                    duplicate_pct: 1.0,
                    corrupt_pct: 0.5,
                    reorder_pct: 25.0,
                    rate_kbit: Some(8000),
                }
            })
        );
        let s = Scenario::parse(
            &with_fault("kind = \"flap\"\non_s = 1\nperiod_s = 1.5\n"),
            "x.toml",
        )
        .unwrap();
        let f = &s.faults[1];
        assert_eq!(f.kind.direction(), Some(Direction::Both));
        assert_eq!(f.pulses(), vec![(12.0, 13.0), (13.5, 14.5), (15.0, 16.0)]);
        let s = Scenario::parse(&with_fault("kind = \"target_stop\"\n"), "x.toml").unwrap();
        assert_eq!(
            s.faults[1].kind,
            FaultKind::TargetStop(fault::target_stop::TargetStop)
        );
        assert_eq!(s.faults[1].kind.name(), "target_stop");
        assert_eq!(s.faults[1].pulses(), vec![(12.0, 16.0)]);
    }

    #[test]
    fn netem_values_are_checked_with_their_line() {
        let d = one(&with_fault("kind = \"netem\"\nloss_pct = 120\n"));
        assert_eq!(
            (d.field.as_str(), d.line, d.column),
            ("fault[0].loss_pct", 25, 12)
        );
        assert!(d.message.contains("percentage from 0 to 100"), "{d}");
        let d = one(&with_fault("kind = \"netem\"\ndelay_ms = -5\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].delay_ms", 25));
        let d = one(&with_fault("kind = \"netem\"\njitter_ms = 10\n"));
        assert_eq!(d.field, "fault[0].jitter_ms");
        assert!(d.message.contains("needs delay_ms > 0"));
        let d = one(&with_fault("kind = \"netem\"\nreorder_pct = 10\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].reorder_pct", 25));
        let d = one(&with_fault("kind = \"netem\"\nrate_kbit = 0\n"));
        assert_eq!(d.field, "fault[0].rate_kbit");
        let d = one(&with_fault("kind = \"netem\"\nloss_pct = 100\n"));
        assert!(d.hint.unwrap().contains("blackhole"));
        // No impairment at all: named on the kind's line.
        let d = one(&with_fault("kind = \"netem\"\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].kind", 24));
        assert!(d.message.contains("at least one impairment"));
        // A string where a number goes: a serde type error, still located.
        let d = one(&with_fault("kind = \"netem\"\nloss_pct = \"5%\"\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].loss_pct", 25));
    }

    #[test]
    fn options_of_another_kind_are_refused() {
        let d = one(&with_fault("kind = \"blackhole\"\nloss_pct = 5\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].loss_pct", 25));
        assert_eq!(
            d.hint.as_deref(),
            Some("loss_pct is an option of kind = \"netem\"")
        );
        let d = one(&with_fault("kind = \"netem\"\ndelay_ms = 5\non_s = 2\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].on_s", 26));
        let d = one(&with_fault(
            "kind = \"target_stop\"\ndirection = \"both\"\n",
        ));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].direction", 25));
    }

    #[test]
    fn flap_needs_a_sensible_period() {
        let d = one(&with_fault("kind = \"flap\"\non_s = 2\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].period_s", 24));
        assert!(d.message.contains("needs period_s"));
        let d = one(&with_fault("kind = \"flap\"\non_s = 2\nperiod_s = 2\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].period_s", 26));
        assert!(d.message.contains("larger than on_s"));
        let d = one(&with_fault("kind = \"flap\"\non_s = 0\nperiod_s = 2\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].on_s", 25));
    }

    #[test]
    fn reset_mtu_and_tbf_parse() {
        let s = Scenario::parse(
            &format!(
                "{NEW_KINDS_HEAD}mtu = 9000\n\
                 [[fault]]\nkind = \"reset\"\nstart_s = 1\nduration_s = 0.5\n\
                 [[fault]]\nkind = \"reset\"\non_s = 0.5\nperiod_s = 5\nstart_s = 2\nduration_s = 10\n\
                 [[fault]]\nkind = \"mtu\"\nmtu = 1500\nstart_s = 20\nduration_s = 10\n\
                 [[fault]]\nkind = \"tbf\"\nrate_kbit = 2000\ndirection = \"to_target\"\nstart_s = 40\nduration_s = 10\n"
            ),
            "k.toml",
        )
        .unwrap();
        assert_eq!(s.lane.mtu, Some(9000));
        let kinds: Vec<FaultKind> = s.faults.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            vec![
                FaultKind::Reset(fault::reset::Reset { pulse: None }),
                FaultKind::Reset(fault::reset::Reset {
                    pulse: Some(Pulse {
                        on_s: 0.5,
                        period_s: 5.0
                    })
                }),
                FaultKind::Mtu(fault::mtu::Mtu { mtu: 1500 }),
                FaultKind::Tbf(fault::tbf::Tbf {
                    direction: Direction::ToTarget,
                    rate_kbit: 2000
                }),
            ]
        );
        // A pulsed reset is one span per pulse: 2, 7 (12 is the end).
        assert_eq!(s.faults[1].pulses(), vec![(2.0, 2.5), (7.0, 7.5)]);
        assert_eq!(s.faults[0].pulses(), vec![(1.0, 1.5)]);
    }

    #[test]
    fn new_kinds_reject_bad_options() {
        let fault = |body: &str| {
            one(&format!(
                "{NEW_KINDS_HEAD}\n[[fault]]\n{body}\nstart_s = 1\nduration_s = 5\n"
            ))
        };
        // The MTU fault needs a lane MTU above it (default 1500).
        let d = fault("kind = \"mtu\"\nmtu = 1500");
        assert_eq!((d.field.as_str(), d.line), ("fault[0].mtu", 8));
        assert!(d.message.contains("below the lane's MTU (1500)"), "{d}");
        assert!(d.hint.unwrap().contains("mtu = 9000"));
        let d = fault("kind = \"mtu\"\nmtu = 20");
        assert!(d.message.contains("from 576 to 65535"), "{d}");
        let d = fault("kind = \"tbf\"");
        assert_eq!(d.field, "fault[0].rate_kbit");
        let d = fault("kind = \"reset\"\ndirection = \"to_target\"");
        assert_eq!(d.field, "fault[0].direction");
        let d = fault("kind = \"reset\"\non_s = 2");
        assert_eq!(d.field, "fault[0].period_s");
        assert!(d.message.contains("kind = \"reset\" needs period_s"), "{d}");
        let d = fault("kind = \"blackhole\"\nmtu = 1500");
        assert_eq!(d.field, "fault[0].mtu");
        let d = fault("kind = \"flap\"\non_s = 1\nperiod_s = 2\nrate_kbit = 5");
        assert!(d.hint.unwrap().contains("tbf"));
        let d = one(&format!("{NEW_KINDS_HEAD}mtu = 100000\n"));
        assert_eq!(d.field, "lane.mtu");
    }

    #[test]
    fn parses_target_side_faults() {
        for (text, kind) in [
            (
                "kind = \"portal_remove\"\n",
                FaultKind::PortalRemove(fault::portal_remove::PortalRemove),
            ),
            (
                "kind = \"access_revoke\"\n",
                FaultKind::AccessRevoke(fault::access_revoke::AccessRevoke),
            ),
            (
                "kind = \"slow_store\"\nio_delay_ms = 2500\n",
                FaultKind::SlowStore(fault::slow_store::SlowStore {
                    io_delay_ms: 2500.0,
                }),
            ),
        ] {
            let s = Scenario::parse(&with_fault(text), "x.toml").unwrap();
            assert_eq!(s.faults[1].kind, kind);
            assert_eq!(s.faults[1].kind.direction(), None);
            assert!(fault::kind_names().contains(&kind.name()));
            assert!(fault::registration(kind.name())
                .unwrap()
                .whole_link
                .is_some());
            assert_eq!(s.needs_slow_store(), kind.name() == "slow_store");
        }
    }

    #[test]
    fn target_side_faults_are_checked_with_their_line() {
        // No direction: they act on the target.
        for kind in ["portal_remove", "access_revoke"] {
            let d = one(&with_fault(&format!(
                "kind = \"{kind}\"\ndirection = \"to_target\"\n"
            )));
            assert_eq!(
                (d.field.as_str(), d.line, d.column),
                ("fault[0].direction", 25, 13)
            );
            assert!(d.message.contains(kind), "{d}");
        }
        // slow_store needs its delay, named on the kind's line.
        let d = one(&with_fault("kind = \"slow_store\"\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].io_delay_ms", 24));
        assert!(d.message.contains("needs io_delay_ms"), "{d}");
        for bad in ["0", "-5", "60001"] {
            let d = one(&with_fault(&format!(
                "kind = \"slow_store\"\nio_delay_ms = {bad}\n"
            )));
            assert_eq!(
                (d.field.as_str(), d.line, d.column),
                ("fault[0].io_delay_ms", 25, 15)
            );
        }
        // ... and only slow_store takes it; its delay is not netem's.
        let d = one(&with_fault("kind = \"blackhole\"\nio_delay_ms = 5\n"));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].io_delay_ms", 25));
        assert_eq!(
            d.hint.as_deref(),
            Some("io_delay_ms is an option of kind = \"slow_store\"")
        );
        let d = one(&with_fault(
            "kind = \"slow_store\"\ndelay_ms = 5\nio_delay_ms = 5\n",
        ));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].delay_ms", 25));
        // A typo gets a hint.
        let d = one(&with_fault("kind = \"portal_remov\"\n"));
        assert_eq!(d.hint.as_deref(), Some("did you mean `portal_remove`?"));
    }

    #[test]
    fn a_portal_removal_may_hold_a_blackhole_only() {
        let head = "version = 1\nduration_s = 40\n[lane]\ntarget = \"tgt\"\n";
        let portal = "[[fault]]\nkind = \"portal_remove\"\nstart_s = 3\nduration_s = 20\n";
        let ok =
            format!("{head}{portal}[[fault]]\nkind = \"blackhole\"\nstart_s = 3\nduration_s = 6\n");
        let s = Scenario::parse(&ok, "p.toml").unwrap();
        assert_eq!(s.faults.len(), 2);
        // Not a blackhole: refused, on the inner fault's start_s line.
        let d = one(&format!(
            "{head}{portal}[[fault]]\nkind = \"access_revoke\"\nstart_s = 5\nduration_s = 2\n"
        ));
        assert_eq!((d.field.as_str(), d.line), ("fault[1].start_s", 11));
        // A blackhole outlasting the portal removal: refused.
        let d = one(&format!(
            "{head}{portal}[[fault]]\nkind = \"blackhole\"\nstart_s = 20\nduration_s = 6\n"
        ));
        assert_eq!(d.field, "fault[1].start_s");
        // A fault overlapping the portal but not its neighbour in time.
        let text = format!(
            "{head}{portal}[[fault]]\nkind = \"blackhole\"\nstart_s = 4\nduration_s = 2\n\
             [[fault]]\nkind = \"target_stop\"\nstart_s = 10\nduration_s = 2\n"
        );
        let d = one(&text);
        assert_eq!((d.field.as_str(), d.line), ("fault[2].start_s", 15));
        assert!(d.message.contains("portal_remove fault[0]"), "{d}");
    }
}
