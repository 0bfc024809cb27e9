//! `[[probe]]`: the probes of a run (one blkprobe by default).

use toml::Spanned;

use super::diag::shorten;
use super::raw::RawProbe;
use super::schema::{MAX_NAME_LEN, MAX_PROBES, MAX_PROBE_INTERVAL_MS};
use super::Ctx;
use crate::model::{Probe, ProbeKind, MAX_PROBE_BLOCKS, MAX_PROBE_DEPTH};

pub(super) fn build_probes(ctx: &mut Ctx<'_>, raw: Vec<Spanned<RawProbe>>) -> Option<Vec<Probe>> {
    if raw.is_empty() {
        return Some(vec![Probe {
            name: "blkprobe".into(),
            kind: ProbeKind::Blkprobe,
            interval_ms: crate::model::scenario::DEFAULT_PROBE_INTERVAL_MS,
            blocks: None,
            depth: 1,
        }]);
    }
    let mut ok = true;
    if raw.len() > MAX_PROBES {
        ctx.err(
            raw[MAX_PROBES].span(),
            &format!("probe[{MAX_PROBES}]"),
            format!(
                "{} probes: a run has {MAX_PROBES} probe (the runner starts no other)",
                raw.len()
            ),
            Some("keep one [[probe]] table; split other workloads into their own scenarios".into()),
        );
        return None;
    }
    let mut probes: Vec<Probe> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let p = p.get_ref();
        let kind = match p.kind.get_ref().as_str() {
            "blkprobe" => Some(ProbeKind::Blkprobe),
            other => {
                let field = format!("probe[{i}].kind");
                let what = format!("probe kind `{}`", shorten(other));
                ctx.unknown(
                    p.kind.span(),
                    &field,
                    &what,
                    other,
                    &["blkprobe"],
                    "probe kinds",
                );
                None
            }
        };
        let interval_ms = match &p.interval_ms {
            None => Some(crate::model::scenario::DEFAULT_PROBE_INTERVAL_MS),
            Some(v) if (1..=MAX_PROBE_INTERVAL_MS).contains(v.get_ref()) => {
                Some(*v.get_ref() as u64)
            }
            Some(v) => {
                ctx.err(
                    v.span(),
                    &format!("probe[{i}].interval_ms"),
                    if *v.get_ref() > 0 {
                        format!(
                            "must be from 1 to {MAX_PROBE_INTERVAL_MS}, got {}",
                            v.get_ref()
                        )
                    } else {
                        format!("must be > 0, got {}", v.get_ref())
                    },
                    Some("milliseconds between operations, e.g. 10".into()),
                );
                None
            }
        };
        let blocks = match &p.blocks {
            None => Some(None),
            Some(v) if (1..=MAX_PROBE_BLOCKS as i64).contains(v.get_ref()) => {
                Some(Some(*v.get_ref() as u64))
            }
            Some(v) => {
                ctx.err(
                    v.span(),
                    &format!("probe[{i}].blocks"),
                    format!("must be from 1 to {MAX_PROBE_BLOCKS}, got {}", v.get_ref()),
                    Some(
                        "the blocks written in turn, e.g. 16 for a hot set rewritten every 16 writes"
                            .into(),
                    ),
                );
                None
            }
        };
        let depth = match &p.depth {
            None => Some(1),
            Some(v) if (1..=MAX_PROBE_DEPTH as i64).contains(v.get_ref()) => {
                let d = *v.get_ref() as u64;
                if blocks.flatten().is_some_and(|b| b < d) {
                    ctx.err(
                        v.span(),
                        &format!("probe[{i}].depth"),
                        format!(
                            "{d} writers need at least {d} blocks, `blocks` is {}",
                            blocks.flatten().unwrap_or(0)
                        ),
                        Some("each writer owns its share of the blocks".into()),
                    );
                    None
                } else {
                    Some(d)
                }
            }
            Some(v) => {
                ctx.err(
                    v.span(),
                    &format!("probe[{i}].depth"),
                    format!("must be from 1 to {MAX_PROBE_DEPTH}, got {}", v.get_ref()),
                    Some("writers at once, e.g. 4".into()),
                );
                None
            }
        };
        let name = match &p.name {
            Some(n) => n.get_ref().clone(),
            None => kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        };
        let name_span = p.name.as_ref().map(|n| n.span()).unwrap_or(p.kind.span());
        if name.is_empty() && p.name.is_some() {
            ctx.err(
                name_span,
                &format!("probe[{i}].name"),
                "must not be empty".into(),
                None,
            );
            ok = false;
        } else if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            ctx.err(
                name_span,
                &format!("probe[{i}].name"),
                format!("must be at most {MAX_NAME_LEN} characters, without control characters"),
                Some("a short word, e.g. \"blk\"".into()),
            );
            ok = false;
        } else if probes.iter().any(|q| q.name == name) {
            ctx.err(
                name_span,
                &format!("probe[{i}].name"),
                format!("a probe named `{name}` already exists"),
                Some("give each probe its own name = \"...\"".into()),
            );
            ok = false;
        }
        match (kind, interval_ms, blocks, depth) {
            (Some(kind), Some(interval_ms), Some(blocks), Some(depth)) => probes.push(Probe {
                name,
                kind,
                interval_ms,
                blocks,
                depth,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(probes)
}
