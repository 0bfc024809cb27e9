//! `[lane]` and `[multipath]`: the targets, the LUN, the link, the paths
//! and dm-multipath's settings.

use std::ops::Range;

use toml::Spanned;

use super::diag::shorten;
use super::raw::{RawLane, RawMultipath};
use super::schema::MAX_LUN_SIZE_MIB;
use super::Ctx;
use crate::model::multipath::{
    Checker, Grouping, Multipath, NoPathRetry, MAX_FAST_IO_FAIL_TMO_S, MAX_NO_PATH_RETRY,
    MAX_POLLING_INTERVAL_S,
};
use crate::model::names::MAX_PATHS;
use crate::model::{Lane, TargetKind, MTU_RANGE};

/// `[multipath]`: only for a lane of several paths (and such a lane gets
/// multipath-tools' defaults without it).
pub(super) fn build_multipath(
    ctx: &mut Ctx<'_>,
    raw: Option<Spanned<RawMultipath>>,
    lane_paths: Option<u8>,
) -> Option<Option<Multipath>> {
    let paths = lane_paths?;
    let Some(raw) = raw else {
        return Some((paths > 1).then(Multipath::default));
    };
    if paths < 2 {
        ctx.err(
            raw.span(),
            "multipath",
            "needs a lane of several paths".into(),
            Some("set [lane] paths = 2 (or more)".into()),
        );
        return None;
    }
    let raw = raw.into_inner();
    let mut m = Multipath::default();
    let mut ok = true;
    if let Some(v) = &raw.polling_interval {
        match u32::try_from(*v.get_ref()) {
            Ok(p) if (1..=MAX_POLLING_INTERVAL_S).contains(&p) => m.polling_interval = p,
            _ => {
                ctx.err(
                    v.span(),
                    "multipath.polling_interval",
                    format!(
                        "must be from 1 to {MAX_POLLING_INTERVAL_S}, got {}",
                        v.get_ref()
                    ),
                    Some("seconds between path checks; multipath-tools' default is 5".into()),
                );
                ok = false;
            }
        }
    }
    if let Some(v) = &raw.path_checker {
        let all = [Checker::Tur, Checker::Directio].map(|c| (c.as_str(), c));
        match ctx.one_of(v, "multipath.path_checker", &all, "path checkers") {
            Some(c) => m.path_checker = c,
            None => ok = false,
        }
    }
    if let Some(v) = &raw.path_grouping_policy {
        let all = [Grouping::Multibus, Grouping::Failover].map(|g| (g.as_str(), g));
        match ctx.one_of(v, "multipath.path_grouping_policy", &all, "policies") {
            Some(g) => m.grouping = g,
            None => ok = false,
        }
    }
    if let Some(v) = &raw.no_path_retry {
        match v.get_ref() {
            toml::Value::String(s) if s == "queue" => m.no_path_retry = NoPathRetry::Queue,
            toml::Value::String(s) if s == "fail" => m.no_path_retry = NoPathRetry::Fail,
            toml::Value::Integer(n) if (1..=i64::from(MAX_NO_PATH_RETRY)).contains(n) => {
                m.no_path_retry = NoPathRetry::Polls(*n as u32)
            }
            other => {
                ctx.err(
                    v.span(),
                    "multipath.no_path_retry",
                    format!("must be \"queue\", \"fail\" or 1 to {MAX_NO_PATH_RETRY} polling intervals, got {other}"),
                    Some("what I/O does with every path down: wait (queue), fail at once, or wait N checks".into()),
                );
                ok = false;
            }
        }
    }
    if let Some(v) = &raw.fast_io_fail_tmo {
        match v.get_ref() {
            toml::Value::String(s) if s == "off" => m.fast_io_fail_tmo = None,
            toml::Value::Integer(n) if (1..=i64::from(MAX_FAST_IO_FAIL_TMO_S)).contains(n) => {
                m.fast_io_fail_tmo = Some(*n as u32)
            }
            other => {
                ctx.err(
                    v.span(),
                    "multipath.fast_io_fail_tmo",
                    format!(
                        "must be 1 to {MAX_FAST_IO_FAIL_TMO_S} seconds or \"off\", got {other}"
                    ),
                    Some("multipathd writes it into each session's recovery_tmo; default 5".into()),
                );
                ok = false;
            }
        }
    }
    if let Some(v) = &raw.features {
        if crate::model::multipath::valid_features(v.get_ref()) {
            m.features = Some(v.get_ref().clone());
        } else {
            ctx.err(
                v.span(),
                "multipath.features",
                format!("not a features list: {:?}", shorten(v.get_ref())),
                Some("a count, then that many words: \"1 retain_attached_hw_handler\"; queueing is no_path_retry's".into()),
            );
            ok = false;
        }
    }
    ok.then_some(Some(m))
}

pub(super) fn build_lane(ctx: &mut Ctx<'_>, raw: RawLane) -> Option<Lane> {
    let span = raw.target.span();
    let mut targets = Vec::new();
    let mut ok = true;
    let names: Vec<(String, Range<usize>)> = match raw.target.get_ref() {
        toml::Value::String(s) => vec![(s.clone(), span.clone())],
        toml::Value::Array(items) if !items.is_empty() => {
            let mut v = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) => v.push((s.to_string(), span.clone())),
                    None => {
                        ctx.err(
                            span.clone(),
                            "lane.target",
                            format!("expected target names, found {}", item.type_str()),
                            Some(r#"write target = "tgt" or target = ["tgt", "lio"]"#.into()),
                        );
                        ok = false;
                    }
                }
            }
            v
        }
        other => {
            ctx.err(
                span.clone(),
                "lane.target",
                format!("expected a target name or a non-empty list, found {}", {
                    match other {
                        toml::Value::Array(_) => "an empty array",
                        v => v.type_str(),
                    }
                }),
                Some(r#"write target = "tgt" or target = ["tgt", "lio"]"#.into()),
            );
            return None;
        }
    };
    for (name, span) in names {
        match TargetKind::ALL.iter().find(|t| t.as_str() == name) {
            Some(t) if targets.contains(t) => {
                ctx.err(
                    span,
                    "lane.target",
                    format!("target `{name}` is listed twice"),
                    Some("list each target once".into()),
                );
                ok = false;
            }
            Some(t) => targets.push(*t),
            None => {
                let valid: Vec<&str> = TargetKind::ALL.iter().map(|t| t.as_str()).collect();
                let what = format!("target kind `{}`", shorten(&name));
                ctx.unknown(span, "lane.target", &what, &name, &valid, "target kinds");
                ok = false;
            }
        }
    }
    let lun_size_mib = match raw.lun_size_mib {
        None => Some(64),
        Some(v) if (1..=MAX_LUN_SIZE_MIB).contains(v.get_ref()) => Some(*v.get_ref() as u64),
        Some(v) => {
            ctx.err(
                v.span(),
                "lane.lun_size_mib",
                format!("must be from 1 to {MAX_LUN_SIZE_MIB}, got {}", v.get_ref()),
                Some("the LUN's size in MiB, e.g. 64".into()),
            );
            None
        }
    };
    let mtu = match &raw.mtu {
        None => None,
        Some(v) if MTU_RANGE.contains(v.get_ref()) => Some(*v.get_ref() as u32),
        Some(v) => {
            ctx.err(
                v.span(),
                "lane.mtu",
                format!(
                    "must be from {} to {}, got {}",
                    MTU_RANGE.start(),
                    MTU_RANGE.end(),
                    v.get_ref()
                ),
                Some("bytes, e.g. 9000 for jumbo frames".into()),
            );
            ok = false;
            None
        }
    };
    if !ok {
        return None;
    }
    let paths = match &raw.paths {
        None => 1,
        Some(v) if (1..=i64::from(MAX_PATHS)).contains(v.get_ref()) => *v.get_ref() as u8,
        Some(v) => {
            ctx.err(
                v.span(),
                "lane.paths",
                format!("must be from 1 to {MAX_PATHS}, got {}", v.get_ref()),
                Some("paths between initiator and target; 2 or more make a multipath map".into()),
            );
            return None;
        }
    };
    Some(Lane {
        targets,
        mtu,
        lun_size_mib: lun_size_mib?,
        alone: raw.alone,
        paths,
    })
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::parse::tests::*;

    #[test]
    fn a_lane_of_two_paths_gets_multipath_and_per_path_faults() {
        let text = two_paths("[multipath]\nno_path_retry = 3\nfast_io_fail_tmo = \"off\"\n")
            .replace(
                "direction = \"to_target\"",
                "direction = \"to_target\"\npath = 1",
            );
        let s = Scenario::parse(&text, "scenarios/x.toml").unwrap();
        assert_eq!(s.lane.paths, 2);
        assert!(
            !s.lane.alone,
            "a multipath run shares the host (it holds multipathd, see plan::exclusive)"
        );
        let mp = s.multipath.unwrap();
        assert_eq!(
            mp.no_path_retry,
            crate::model::multipath::NoPathRetry::Polls(3)
        );
        assert_eq!(mp.fast_io_fail_tmo, None);
        assert_eq!(s.faults[0].path, Some(1));
        assert_eq!(s.faults[1].path, None);
        assert!(s.faults[0].label().ends_with(", path 1"));
        // Without the table: multipath-tools' defaults.
        let s = Scenario::parse(&two_paths(""), "scenarios/x.toml").unwrap();
        assert_eq!(
            s.multipath,
            Some(crate::model::multipath::Multipath::default())
        );
    }

    #[test]
    fn bad_paths_and_multipath_keys_are_named() {
        let d = one(&GOOD.replace("lun_size_mib = 32", "lun_size_mib = 32\npaths = 5"));
        assert_eq!((d.field.as_str(), d.line), ("lane.paths", 9), "{d}");
        let d = one(&format!("{GOOD}[multipath]\npolling_interval = 2\n"));
        assert_eq!(d.field, "multipath", "{d}");
        assert!(d.message.contains("several paths"), "{d}");
        let d = one(&two_paths("[multipath]\nno_path_retry = \"sometimes\"\n"));
        assert_eq!(d.field, "multipath.no_path_retry", "{d}");
        let d = one(&two_paths("[multipath]\npath_checker = \"tru\"\n"));
        assert!(d.hint.as_deref().unwrap_or("").contains("tur"), "{d}");
        let d = one(&two_paths(
            "[multipath]\npath_grouping_policy = \"multbus\"\n",
        ));
        assert_eq!(d.field, "multipath.path_grouping_policy", "{d}");
        assert!(d.hint.as_deref().unwrap_or("").contains("multibus"), "{d}");
        let d = one(&two_paths(
            "[multipath]\nfeatures = \"2 queue_if_no_path\"\n",
        ));
        assert_eq!(d.field, "multipath.features", "{d}");
        let d = one(&two_paths("[multipath]\npolling_interval = 0\n"));
        assert_eq!(d.field, "multipath.polling_interval", "{d}");
        let d = one(&two_paths("").replace("direction = \"to_target\"", "path = 2"));
        assert_eq!(d.field, "fault[1].path", "{d}");
        assert!(d.message.contains("from 0 to 1"), "{d}");
        let d = one(&two_paths(
            "[[fault]]\nkind = \"target_stop\"\npath = 0\nstart_s = 20\nduration_s = 2\n",
        ));
        assert_eq!(d.field, "fault[2].path", "{d}");
        let d = one(&two_paths(
            "[[fault]]\nkind = \"reset\"\nstart_s = 20\nduration_s = 1\n",
        ));
        assert_eq!(d.field, "fault[2].kind", "{d}");
    }

    #[test]
    fn a_huge_lun_is_refused_not_overflowed() {
        let huge = one(&GOOD.replace("lun_size_mib = 32", "lun_size_mib = 9223372036854775807"));
        assert_eq!(huge.field, "lane.lun_size_mib");
        assert!(huge.message.contains("from 1 to 1048576"), "{huge}");
    }
}
