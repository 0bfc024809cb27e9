//! `[expect]`: what the run must show (the oracle's prediction by
//! default), and the deadline after the I/O phase.

use super::diag::{closest_hint, fmt_s, shorten};
use super::raw::RawExpect;
use super::schema::MIN_DEADLINE_S;
use super::Ctx;
use crate::model::*;

pub(super) fn build_expect(ctx: &mut Ctx<'_>, raw: RawExpect) -> Option<Expect> {
    let mut ok = true;
    let mut e = Expect::default();
    if let Some(v) = &raw.first_error {
        let hint = r#"first_error = "oracle", "none", or seconds after the first fault starts"#;
        match v.get_ref() {
            toml::Value::String(s) if s == "oracle" => e.first_error = FirstErrorExpect::Oracle,
            toml::Value::String(s) if s == "none" => e.first_error = FirstErrorExpect::None,
            toml::Value::String(s) => {
                ctx.err(
                    v.span(),
                    "expect.first_error",
                    format!("unknown value `{}`", shorten(s)),
                    Some(closest_hint(s, &["oracle", "none"], "words")),
                );
                ok = false;
            }
            toml::Value::Integer(_) | toml::Value::Float(_) => {
                let x = v
                    .get_ref()
                    .as_float()
                    .or(v.get_ref().as_integer().map(|i| i as f64));
                match x {
                    Some(x) if x.is_finite() && (0.0..=MAX_DURATION_S).contains(&x) => {
                        e.first_error = FirstErrorExpect::At(x)
                    }
                    _ => {
                        ctx.err(
                            v.span(),
                            "expect.first_error",
                            format!("must be from 0 to {MAX_DURATION_S} seconds"),
                            Some(hint.into()),
                        );
                        ok = false;
                    }
                }
            }
            other => {
                ctx.err(
                    v.span(),
                    "expect.first_error",
                    format!("expected a string or a number, found {}", other.type_str()),
                    Some(hint.into()),
                );
                ok = false;
            }
        }
    }
    if let Some(t) = &raw.tolerance_s {
        match ctx.positive(t, "expect.tolerance_s", MAX_DURATION_S, "seconds, e.g. 1.5") {
            Some(x) if matches!(e.first_error, FirstErrorExpect::At(_)) => e.tolerance_s = x,
            Some(_) => {
                ctx.err(
                    t.span(),
                    "expect.tolerance_s",
                    "applies only when first_error is a number".into(),
                    Some("the oracle gives its own tolerance; remove tolerance_s".into()),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    for (v, field, slot) in [
        (&raw.max_stall_s, "expect.max_stall_s", &mut e.max_stall_s),
        (&raw.min_stall_s, "expect.min_stall_s", &mut e.min_stall_s),
        (
            &raw.max_recovery_s,
            "expect.max_recovery_s",
            &mut e.max_recovery_s,
        ),
    ] {
        if let Some(v) = v {
            match ctx.non_negative(v, field, MAX_DURATION_S + MAX_DEADLINE_S, "seconds") {
                Some(x) => *slot = Some(x),
                None => ok = false,
            }
        }
    }
    if let (Some(min), Some(max), Some(v)) = (e.min_stall_s, e.max_stall_s, &raw.min_stall_s) {
        if min > max {
            ctx.err(
                v.span(),
                "expect.min_stall_s",
                format!("is larger than max_stall_s ({min} > {max})"),
                None,
            );
            ok = false;
        }
    }
    e.split_brain = raw.split_brain.as_ref().map(|v| *v.get_ref());
    if let Some(r) = &raw.recovered {
        e.recovered = *r.get_ref();
    }
    if let Some(v) = &raw.max_lost_writes {
        if *v.get_ref() >= 0 {
            e.max_lost_writes = *v.get_ref() as u64;
        } else {
            ctx.err(
                v.span(),
                "expect.max_lost_writes",
                format!("must be >= 0, got {}", v.get_ref()),
                None,
            );
            ok = false;
        }
    }
    if let Some(v) = &raw.deadline_s {
        match ctx.positive(
            v,
            "expect.deadline_s",
            MAX_DEADLINE_S,
            "seconds after duration_s for the probe to verify and end, e.g. 50",
        ) {
            Some(x) if x >= MIN_DEADLINE_S => e.deadline_s = x,
            Some(x) => {
                ctx.err(
                    v.span(),
                    "expect.deadline_s",
                    format!("must be >= {MIN_DEADLINE_S} s, got {}", fmt_s(x)),
                    Some("the probe needs time to read back its writes".into()),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(e)
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::parse::tests::*;

    #[test]
    fn deadline_is_validated_and_split_into_verify_and_slack() {
        let s = Scenario::parse(GOOD, "x.toml").unwrap();
        assert_eq!(s.expect.deadline_s, DEFAULT_DEADLINE_S);
        assert_eq!(s.expect.verify_deadline_s(), 30.0);
        let s = Scenario::parse(
            &GOOD.replace("max_stall_s = 8", "deadline_s = 10"),
            "x.toml",
        )
        .unwrap();
        assert_eq!(
            (s.expect.deadline_s, s.expect.verify_deadline_s()),
            (10.0, 5.0)
        );
        let d = one(&GOOD.replace("max_stall_s = 8", "deadline_s = 0"));
        assert_eq!((d.field.as_str(), d.line), ("expect.deadline_s", 35));
        assert!(d.message.contains("must be > 0"));
        let d = one(&GOOD.replace("max_stall_s = 8", "deadline_s = 2"));
        assert_eq!(d.field, "expect.deadline_s");
        assert!(d.message.contains("must be >= 4"), "{d}");
    }
}
