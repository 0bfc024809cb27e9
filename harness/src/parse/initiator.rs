//! `[initiator]` and `[initiator.settings]`: the named timers, a profile or
//! an iscsid.conf, and each setting checked against the allow-list
//! ([`crate::model::settings`]).

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::diag::{closest, quote_key, shorten};
use super::raw::RawInitiator;
use super::Ctx;
use crate::model::settings::{self, SettingType, MAX_TIMER_S};
use crate::model::*;

pub(super) fn build_initiator(ctx: &mut Ctx<'_>, raw: RawInitiator) -> Option<Initiator> {
    let mut ok = true;
    if let Some(p) = &raw.profile {
        if crate::model::profiles::profile(p.get_ref()).is_none() {
            ctx.err(
                p.span(),
                "initiator.profile",
                format!("no profile named {:?}", p.get_ref()),
                Some(format!(
                    "one of {}",
                    crate::model::profiles::names().join(", ")
                )),
            );
            ok = false;
        }
        if let Some(c) = &raw.iscsid_conf {
            ctx.err(
                c.span(),
                "initiator.iscsid_conf",
                "give a profile or an iscsid_conf, not both".into(),
                None,
            );
            ok = false;
        }
    }
    let mut seconds = |ctx: &mut Ctx<'_>, v: &Option<Spanned<i64>>, field: &str, default: u32| {
        match v {
            None => Some(default),
            Some(v) => {
                let x = *v.get_ref();
                if (0..=MAX_TIMER_S).contains(&x) {
                    Some(x as u32)
                } else {
                    ctx.err(
                        v.span(),
                        field,
                        format!("must be >= 0 whole seconds (at most {MAX_TIMER_S}), got {x}"),
                        Some("0 turns NOP-Outs off (set both noop_out_interval and noop_out_timeout to 0)".into()),
                    );
                    ok = false;
                    None
                }
            }
        }
    };
    let interval = seconds(
        ctx,
        &raw.noop_out_interval,
        "initiator.noop_out_interval",
        DEFAULT_NOOP_OUT_INTERVAL,
    );
    let timeout = seconds(
        ctx,
        &raw.noop_out_timeout,
        "initiator.noop_out_timeout",
        DEFAULT_NOOP_OUT_TIMEOUT,
    );
    if let (Some(i), Some(n)) = (interval, timeout) {
        // open-iscsi silently swaps in its default when only one is 0
        // (usr/initiator_common.c); refuse instead of measuring the wrong thing.
        if (i == 0) != (n == 0) {
            let (v, field) = if i == 0 {
                (&raw.noop_out_interval, "initiator.noop_out_interval")
            } else {
                (&raw.noop_out_timeout, "initiator.noop_out_timeout")
            };
            let span = v.as_ref().map(|v| v.span()).unwrap_or(0..0);
            ctx.err(
                span,
                field,
                "is 0 while the other NOP-Out setting is not: open-iscsi would replace it with its default".into(),
                Some("set both noop_out_interval and noop_out_timeout to 0 to turn NOP-Outs off, or both > 0".into()),
            );
            ok = false;
        }
    }
    let replacement_timeout = match &raw.replacement_timeout {
        None => Some(DEFAULT_REPLACEMENT_TIMEOUT),
        Some(v) => {
            let x = *v.get_ref();
            if (i64::from(i32::MIN)..=MAX_TIMER_S).contains(&x) {
                Some(x)
            } else {
                ctx.err(
                    v.span(),
                    "initiator.replacement_timeout",
                    if x > 0 {
                        format!("must be at most {MAX_TIMER_S} whole seconds, got {x}")
                    } else {
                        format!("{x} does not fit open-iscsi's 32-bit setting")
                    },
                    Some("whole seconds; 0 fails I/O at once, -1 queues it forever".into()),
                );
                None
            }
        }
    };
    let mut extra = BTreeMap::new();
    // Spans of the login keys, for the total-wait check.
    let mut login_spans: Vec<(Range<usize>, String)> = Vec::new();
    let mut burst_spans: Vec<(Range<usize>, String)> = Vec::new();
    for (key, value) in &raw.settings {
        let k = key.get_ref().as_str();
        let field = format!("initiator.settings.{}", quote_key(k));
        match build_setting(ctx, k, &field, key.span(), value) {
            Some(text) => {
                if k == KEY_LOGIN_TIMEOUT || k == KEY_INITIAL_LOGIN_RETRY_MAX {
                    login_spans.push((value.span(), field));
                } else if k == settings::KEY_FIRST_BURST || k == settings::KEY_MAX_BURST {
                    burst_spans.push((value.span(), field));
                }
                extra.insert(k.to_string(), text);
            }
            None => ok = false,
        }
    }
    if ok {
        let i = Initiator {
            extra: extra.clone(),
            ..Initiator::default()
        };
        // RFC 7143 12.14: FirstBurstLength <= MaxBurstLength, or the
        // login fails (open-iscsi's defaults where one is not given).
        let len = |key: &str, default: u32| -> u32 {
            i.extra
                .get(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let first = len(settings::KEY_FIRST_BURST, settings::DEFAULT_FIRST_BURST);
        let max = len(settings::KEY_MAX_BURST, settings::DEFAULT_MAX_BURST);
        if first > max {
            let (span, field) = first_place(&burst_spans);
            ctx.err(
                span,
                &field,
                format!("FirstBurstLength {first} is larger than MaxBurstLength {max}"),
                Some(
                    "the first burst is part of a burst: FirstBurstLength <= MaxBurstLength".into(),
                ),
            );
            ok = false;
        }
        let wait = i.login_wait_s();
        if wait > settings::MAX_LOGIN_WAIT_S {
            let (span, field) = first_place(&login_spans);
            ctx.err(
                span,
                &field,
                format!(
                    "a login may wait login_timeout × (initial_login_retry_max + 1) = {} × {} = {wait} s: more than {} s",
                    i.login_timeout(),
                    u64::from(i.initial_login_retry_max()) + 1,
                    settings::MAX_LOGIN_WAIT_S
                ),
                Some(format!(
                    "lower login_timeout or initial_login_retry_max (defaults {DEFAULT_LOGIN_TIMEOUT} and {})",
                    settings::DEFAULT_INITIAL_LOGIN_RETRY_MAX
                )),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    Some(Initiator {
        noop_out_interval: interval?,
        noop_out_timeout: timeout?,
        replacement_timeout: replacement_timeout?,
        extra,
    })
}

/// One `[initiator.settings]` entry, checked against the allow-list
/// ([`settings::SETTINGS`]): the value as iscsiadm takes it. A secret's
/// value is never part of a message.
fn build_setting(
    ctx: &mut Ctx<'_>,
    k: &str,
    field: &str,
    key_span: Range<usize>,
    value: &Spanned<toml::Value>,
) -> Option<String> {
    if let Some((_, named)) = settings::NAMED.iter().find(|(n, _)| *n == k) {
        ctx.err(
            key_span,
            field,
            "is set by a named field".into(),
            Some(format!("use {named} instead")),
        );
        return None;
    }
    if let Some(r) = settings::refusal(k) {
        ctx.err(
            key_span,
            field,
            format!("`{k}` may not be set: {}", r.why),
            Some("remove it; the allowed keys: `iscsi-chaos explain`, docs/scenarios.md".into()),
        );
        return None;
    }
    let Some(def) = settings::setting(k) else {
        let known = settings::known_keys();
        let hint = match known.iter().find(|v| v.eq_ignore_ascii_case(k)) {
            Some(v) => format!("did you mean `{v}`? (case matters)"),
            None => match closest(k, &known) {
                Some(v) => format!("did you mean `{v}`?"),
                None => "not a setting the harness allows; the allowed keys are in docs/scenarios.md ([initiator.settings]; quote dotted keys)".into(),
            },
        };
        ctx.err(
            key_span,
            field,
            format!("unknown initiator setting `{}`", shorten(k)),
            Some(hint),
        );
        return None;
    };
    let secret = def.is_secret();
    let shown = |v: &toml::Value| -> String {
        if secret {
            settings::REDACTED.to_string()
        } else {
            shorten(&v.to_string())
        }
    };
    if let toml::Value::Table(_) = value.get_ref() {
        ctx.err(
            value.span(),
            field,
            "expected a value, found a table".into(),
            Some(r#"quote dotted keys: "node.session.x" = "v""#.into()),
        );
        return None;
    }
    match def.ty {
        SettingType::Seconds { min, max } | SettingType::Int { min, max, .. } => {
            let (zero, pow2) = match def.ty {
                SettingType::Int { zero, pow2, .. } => (zero, pow2),
                _ => (false, false),
            };
            let n = match value.get_ref() {
                toml::Value::Integer(i) => Some(*i),
                toml::Value::String(t) => t.trim().parse::<i64>().ok(),
                _ => None,
            };
            let unit = if matches!(def.ty, SettingType::Seconds { .. }) {
                " seconds"
            } else {
                ""
            };
            match n {
                Some(n)
                    if ((min..=max).contains(&n) || (zero && n == 0))
                        && (!pow2 || (n > 0 && (n & (n - 1)) == 0)) =>
                {
                    Some(n.to_string())
                }
                _ => {
                    let range = format!(
                        "{}a whole number >= {min} and <= {max}{unit}{}",
                        if zero { "0 or " } else { "" },
                        if pow2 { ", a power of 2" } else { "" }
                    );
                    ctx.err(
                        value.span(),
                        field,
                        format!("must be {range}, got {}", shown(value.get_ref())),
                        Some(def.what.into()),
                    );
                    None
                }
            }
        }
        SettingType::Word(valid) => match value.get_ref() {
            toml::Value::String(text) if valid.contains(&text.as_str()) => Some(text.clone()),
            toml::Value::String(text) => {
                ctx.unknown(
                    value.span(),
                    field,
                    &format!("value `{}` for {k}", shorten(text)),
                    text,
                    valid,
                    "values",
                );
                None
            }
            other => {
                ctx.err(
                    value.span(),
                    field,
                    format!("expected a string, found {}", other.type_str()),
                    Some(format!("valid values: {}", valid.join(", "))),
                );
                None
            }
        },
        SettingType::Secret => match value.get_ref() {
            toml::Value::String(text)
                if (1..=settings::MAX_SECRET_LEN).contains(&text.len())
                    && text.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Some(text.clone())
            }
            toml::Value::String(_) => {
                ctx.err(
                    value.span(),
                    field,
                    format!(
                        "must be 1 to {} printable ASCII characters without spaces (value not shown)",
                        settings::MAX_SECRET_LEN
                    ),
                    Some(def.what.into()),
                );
                None
            }
            other => {
                ctx.err(
                    value.span(),
                    field,
                    format!(
                        "expected a string, found {} (value not shown)",
                        other.type_str()
                    ),
                    Some(def.what.into()),
                );
                None
            }
        },
    }
}

/// The first of the places a check found (span and field), or the
/// settings table when the keys were not in the file (defaults).
fn first_place(places: &[(Range<usize>, String)]) -> (Range<usize>, String) {
    places
        .first()
        .cloned()
        .unwrap_or((0..0, "initiator.settings".into()))
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::parse::tests::*;

    #[test]
    fn settings_pairs_use_iscsiadm_keys() {
        let s = Scenario::parse(GOOD, "x.toml").unwrap();
        let pairs = s.initiator.iscsiadm_settings();
        let expected: Vec<(String, String)> = [
            ("node.conn[0].timeo.noop_out_interval", "2"),
            ("node.conn[0].timeo.noop_out_timeout", "2"),
            ("node.session.timeo.replacement_timeout", "10"),
            ("node.conn[0].timeo.login_timeout", "5"),
            ("node.session.iscsi.InitialR2T", "No"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn initiator_values_open_iscsi_rejects() {
        let d = one(&GOOD.replace("noop_out_interval = 2", "noop_out_interval = -1"));
        assert_eq!(d.field, "initiator.noop_out_interval");
        assert_eq!(d.line, 11);
        let d = one(&GOOD.replace("noop_out_timeout = 2", "noop_out_timeout = 0"));
        assert_eq!(d.field, "initiator.noop_out_timeout");
        assert!(d.message.contains("would replace it"));
        // Both 0: NOPs off, accepted. Negative replacement_timeout: never.
        let s = Scenario::parse(
            &GOOD
                .replace("noop_out_timeout = 2", "noop_out_timeout = 0")
                .replace("noop_out_interval = 2", "noop_out_interval = 0")
                .replace("replacement_timeout = 10", "replacement_timeout = -1"),
            "x.toml",
        )
        .unwrap();
        assert!(!s.initiator.nops_enabled());
        assert_eq!(s.initiator.replacement_timeout, -1);
        let d = one(&GOOD.replace("login_timeout\" = 5", "login_timeout\" = 0"));
        assert_eq!(
            d.field,
            "initiator.settings.\"node.conn[0].timeo.login_timeout\""
        );
        let d = one(&GOOD.replace(
            "\"node.session.iscsi.InitialR2T\"",
            "\"node.session.timeo.replacement_timeout\"",
        ));
        assert_eq!(
            d.hint.as_deref(),
            Some("use initiator.replacement_timeout instead")
        );
        // Fractional seconds are a type error from serde, still located.
        let d = one(&GOOD.replace("replacement_timeout = 10", "replacement_timeout = 2.5"));
        assert_eq!(d.field, "initiator.replacement_timeout");
        assert_eq!(d.line, 13);
    }

    #[test]
    fn unquoted_dotted_setting_key() {
        let d = one(&GOOD.replace(
            "\"node.session.iscsi.InitialR2T\" = \"No\"",
            "node.session.x = \"No\"",
        ));
        assert!(d.field.starts_with("initiator.settings.node"), "{d}");
    }

    #[test]
    fn iscsiadm_words_are_checked_with_the_closest_hint() {
        let d = one(&GOOD.replace(
            "\"node.session.iscsi.InitialR2T\" = \"No\"",
            "\"node.session.iscsi.InitialR2T\" = \"Noo\"",
        ));
        assert_eq!(
            (d.field.as_str(), d.line),
            ("initiator.settings.\"node.session.iscsi.InitialR2T\"", 17)
        );
        assert_eq!(
            d.message,
            "unknown value `Noo` for node.session.iscsi.InitialR2T"
        );
        assert_eq!(d.hint.as_deref(), Some("did you mean `No`?"));
        let d = one(&GOOD.replace(
            "\"node.session.iscsi.InitialR2T\" = \"No\"",
            "\"node.conn[0].iscsi.HeaderDigest\" = \"crc32c\"",
        ));
        assert_eq!(
            d.hint.as_deref(),
            Some("did you mean `CRC32C`? (case matters)")
        );
        let d = one(&GOOD.replace(
            "\"node.session.iscsi.InitialR2T\" = \"No\"",
            "\"node.session.auth.authmethod\" = \"Kerberos\"",
        ));
        assert_eq!(d.hint.as_deref(), Some("valid values: None, CHAP"));
        // Each valid word passes.
        for v in settings::DIGESTS {
            let text = GOOD.replace(
                "\"node.session.iscsi.InitialR2T\" = \"No\"",
                &format!("\"node.conn[0].iscsi.DataDigest\" = \"{v}\""),
            );
            Scenario::parse(&text, "x.toml").unwrap();
        }
        let d = one(&GOOD.replace("kind = \"blkprobe\"", "kind = \"blkprob\""));
        assert_eq!(d.field, "probe[0].kind");
        assert_eq!(d.message, "unknown probe kind `blkprob`");
        assert_eq!(d.hint.as_deref(), Some("did you mean `blkprobe`?"));
        let d = one(&GOOD.replace("[\"tgt\", \"lio\"]", "\"TGT\""));
        assert_eq!(
            d.hint.as_deref(),
            Some("did you mean `tgt`? (case matters)")
        );
    }

    #[test]
    fn settings_outside_the_allow_list_are_refused_with_the_closest_key() {
        // A typo: line 17, the key's column, the closest allowed key.
        let d = one(&with_setting("\"node.session.iscsi.InitialRT2\" = \"No\""));
        assert_eq!(
            (d.field.as_str(), d.line, d.column),
            (
                "initiator.settings.\"node.session.iscsi.InitialRT2\"",
                17,
                1
            )
        );
        assert_eq!(
            d.message,
            "unknown initiator setting `node.session.iscsi.InitialRT2`"
        );
        assert_eq!(
            d.hint.as_deref(),
            Some("did you mean `node.session.iscsi.InitialR2T`?")
        );
        let d = one(&with_setting("\"node.conn[0].timeo.login_timout\" = 5"));
        assert_eq!(
            d.hint.as_deref(),
            Some("did you mean `node.conn[0].timeo.login_timeout`?")
        );
        let d = one(&with_setting("\"node.session.iscsi.initialr2t\" = \"No\""));
        assert_eq!(
            d.hint.as_deref(),
            Some("did you mean `node.session.iscsi.InitialR2T`? (case matters)")
        );
        // Far from every key: pointed at the list.
        let d = one(&with_setting("\"node.session.xmit_thread_priority\" = -20"));
        assert!(d.hint.as_deref().unwrap().contains("allowed keys"), "{d}");
        // Not a node key at all.
        let d = one(&with_setting("\"foo\" = 1"));
        assert!(d.message.contains("unknown initiator setting `foo`"), "{d}");
    }

    #[test]
    fn dangerous_settings_are_refused_with_the_reason() {
        for (key, why) in [
            ("node.startup", "boot"),
            ("node.conn[0].startup", "boot"),
            ("iface.net_ifacename", "another network interface"),
            ("iface.iscsi_ifacename", "another network interface"),
            ("node.session.scan", "LUN scan"),
            ("node.session.nr_sessions", "one session"),
            ("node.conn[0].address", "lane address"),
        ] {
            let d = one(&with_setting(&format!("\"{key}\" = \"automatic\"")));
            assert_eq!(d.field, format!("initiator.settings.{key:?}"));
            assert_eq!((d.line, d.column), (17, 1), "{d}");
            assert!(d.message.contains("may not be set"), "{d}");
            assert!(d.message.contains(why), "{d}");
        }
    }

    #[test]
    fn settings_values_are_typed_and_bounded() {
        let ok = |line: &str| Scenario::parse(&with_setting(line), "x.toml").unwrap();
        let s = ok("\"node.session.cmds_max\" = 64");
        assert_eq!(s.initiator.extra["node.session.cmds_max"], "64");
        // A number written as a string is normalized.
        let s = ok("\"node.session.queue_depth\" = \" 16\"");
        assert_eq!(s.initiator.extra["node.session.queue_depth"], "16");
        let s = ok("\"node.conn[0].iscsi.MaxXmitDataSegmentLength\" = 0");
        assert_eq!(
            s.initiator.extra["node.conn[0].iscsi.MaxXmitDataSegmentLength"],
            "0"
        );
        ok("\"node.session.iscsi.FirstBurstLength\" = 262144");
        ok("\"node.conn[0].timeo.logout_timeout\" = 25");
        for (line, part) in [
            ("\"node.session.cmds_max\" = 100", "a power of 2"),
            ("\"node.session.cmds_max\" = 4096", "<= 2048"),
            ("\"node.session.queue_depth\" = 0", ">= 1"),
            (
                "\"node.session.iscsi.MaxBurstLength\" = 16777216",
                "<= 16777215",
            ),
            (
                "\"node.conn[0].iscsi.MaxRecvDataSegmentLength\" = 100",
                ">= 512",
            ),
            (
                "\"node.conn[0].timeo.logout_timeout\" = 60",
                "<= 25 seconds",
            ),
            ("\"node.session.err_timeo.abort_timeout\" = -1", ">= 0"),
            (
                "\"node.session.err_timeo.lu_reset_timeout\" = 9223372036854775807",
                "<= 120",
            ),
            (
                "\"node.session.initial_login_retry_max\" = \"many\"",
                ">= 1",
            ),
            ("\"node.session.queue_depth\" = 1.5", "got 1.5"),
        ] {
            let d = one(&with_setting(line));
            assert_eq!(d.line, 17, "{d}");
            assert!(d.field.starts_with("initiator.settings."), "{d}");
            assert!(d.message.contains(part), "{line}: {d}");
        }
        // A word setting takes a string only.
        let d = one(&with_setting("\"node.session.iscsi.ImmediateData\" = 1"));
        assert_eq!(d.hint.as_deref(), Some("valid values: No, Yes"));
    }

    #[test]
    fn the_first_burst_fits_in_a_burst() {
        let d = one(&with_setting(
            "\"node.session.iscsi.FirstBurstLength\" = 65536\n\"node.session.iscsi.MaxBurstLength\" = 8192",
        ));
        assert_eq!(d.line, 17);
        assert!(
            d.message
                .contains("65536 is larger than MaxBurstLength 8192"),
            "{d}"
        );
        // Against open-iscsi's default MaxBurstLength (16776192).
        let d = one(&with_setting(
            "\"node.session.iscsi.FirstBurstLength\" = 16777215",
        ));
        assert!(d.message.contains("MaxBurstLength 16776192"), "{d}");
        Scenario::parse(
            &with_setting("\"node.session.iscsi.MaxBurstLength\" = 262144"),
            "x.toml",
        )
        .unwrap();
    }

    #[test]
    fn a_login_may_not_wait_past_the_cap() {
        let login = |timeout: &str, retries: &str| {
            GOOD.replace(
                "\"node.conn[0].timeo.login_timeout\" = 5",
                &format!(
                    "\"node.conn[0].timeo.login_timeout\" = {timeout}\n\"node.session.initial_login_retry_max\" = {retries}"
                ),
            )
        };
        // open-iscsi's defaults are the cap: 15 s × (8 + 1) = 135 s.
        let s = Scenario::parse(&login("15", "8"), "x.toml").unwrap();
        assert_eq!(s.initiator.login_wait_s(), settings::MAX_LOGIN_WAIT_S);
        let s = Scenario::parse(&login("5", "2"), "x.toml").unwrap();
        assert_eq!(s.initiator.login_wait_s(), 15);
        let d = one(&login("30", "8"));
        assert_eq!(
            (d.field.as_str(), d.line),
            (
                "initiator.settings.\"node.conn[0].timeo.login_timeout\"",
                16
            )
        );
        assert!(d.message.contains("30 × 9 = 270 s: more than 135 s"), "{d}");
        // The default retry count counts when only the timeout is given.
        let d = one(&GOOD.replace("login_timeout\" = 5", "login_timeout\" = 20"));
        assert!(d.message.contains("20 × 9 = 180 s"), "{d}");
        // Each alone within its own range, together too much.
        let d = one(&login("10", "64"));
        assert!(d.message.contains("10 × 65 = 650 s"), "{d}");
        // And the retry count's own range.
        let d = one(&login("1", "65"));
        assert!(d.message.contains("<= 64"), "{d}");
    }

    #[test]
    fn chap_values_are_checked_without_being_echoed() {
        let s = Scenario::parse(
            &with_setting(
                "\"node.session.auth.authmethod\" = \"CHAP\"\n\"node.session.auth.username\" = \"iqn.user\"\n\"node.session.auth.password\" = \"s3cret-pass\"",
            ),
            "x.toml",
        )
        .unwrap();
        assert_eq!(
            s.initiator.extra["node.session.auth.password"],
            "s3cret-pass"
        );
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("s3cret-pass") && !debug.contains("iqn.user"),
            "{debug}"
        );
        assert!(debug.contains(settings::REDACTED));
        let shown = s.initiator.redacted_settings();
        assert!(shown
            .iter()
            .all(|(_, v)| v != "s3cret-pass" && v != "iqn.user"));
        for bad in [
            "\"hunter 2\"",
            "\"hunter2\\n\"",
            "\"\"",
            "12345678",
            "\"é-hunter2\"",
            "[\"hunter2\"]",
        ] {
            let text = with_setting(&format!("\"node.session.auth.password_in\" = {bad}"));
            let e = Scenario::parse(&text, "x.toml").unwrap_err();
            let d = &e.diagnostics()[0];
            assert_eq!(d.line, 17, "{d}");
            assert_eq!(
                d.field,
                "initiator.settings.\"node.session.auth.password_in\""
            );
            let shown = e.to_string();
            assert!(!shown.contains("hunter"), "{shown}");
            assert!(!shown.contains("12345678"), "{shown}");
        }
        let long = format!("\"node.session.auth.password\" = \"{}\"", "x".repeat(300));
        let d = one(&with_setting(&long));
        assert!(d.message.contains("1 to 255"), "{d}");
        assert!(!d.to_string().contains("xxxxxxxx"), "{d}");
    }
}
