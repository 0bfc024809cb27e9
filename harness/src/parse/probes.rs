//! `[[probe]]`: the probes of a run (one blkprobe by default).

use toml::Spanned;

use super::diag::shorten;
use super::raw::RawProbe;
use super::schema::{MAX_NAME_LEN, MAX_PROBE_INTERVAL_MS};
use super::Ctx;
use crate::model::{
    CommandSpec, FioSpec, FsKind, FsSpec, Probe, ProbeKind, MAX_PROBE_BLOCKS, MAX_PROBE_DEPTH,
};

/// Longest `mount_options`.
const MAX_MOUNT_OPTIONS_LEN: usize = 200;
/// Largest `xfs_eio_max_retries`.
const MAX_XFS_RETRIES: i64 = 1_000_000;

pub(super) fn build_probes(
    ctx: &mut Ctx<'_>,
    raw: Vec<Spanned<RawProbe>>,
    lun_size_mib: Option<u64>,
    hosts: Option<usize>,
    duration_s: Option<f64>,
) -> Option<Vec<Probe>> {
    if raw.is_empty() {
        return Some(vec![Probe {
            name: "blkprobe".into(),
            kind: ProbeKind::Blkprobe,
            interval_ms: crate::model::scenario::DEFAULT_PROBE_INTERVAL_MS,
            blocks: None,
            depth: 1,
            fs: None,
            command: None,
            fio: None,
            host: 0,
            start_s: 0.0,
        }]);
    }
    let mut ok = true;
    // `None`: `[[host]]` did not parse (no cross-check).
    let max_probes = hosts.unwrap_or(crate::model::MAX_HOSTS).max(1);
    if raw.len() > max_probes {
        ctx.err(
            raw[max_probes].span(),
            &format!("probe[{max_probes}]"),
            format!(
                "{} probes: a run has one probe per host ({max_probes} host(s))",
                raw.len()
            ),
            Some(
                "keep one [[probe]] table per host; split other workloads into their own scenarios"
                    .into(),
            ),
        );
        return None;
    }
    let mut probes: Vec<Probe> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let p = p.get_ref();
        let kind = match ProbeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == p.kind.get_ref())
        {
            Some(k) => Some(k),
            None => {
                let other = p.kind.get_ref().as_str();
                let field = format!("probe[{i}].kind");
                let what = format!("probe kind `{}`", shorten(other));
                ctx.unknown(
                    p.kind.span(),
                    &field,
                    &what,
                    other,
                    &ProbeKind::ALL.map(ProbeKind::as_str),
                    "probe kinds",
                );
                None
            }
        };
        let interval_ms = match &p.interval_ms {
            None => kind.map(ProbeKind::default_interval_ms),
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
        let fs = kind.and_then(|k| build_fs(ctx, i, p, k, lun_size_mib));
        let workload = kind.and_then(|k| build_workload(ctx, i, p, k));
        let host = match &p.host {
            None => Some(0),
            Some(v) => {
                let field = format!("probe[{i}].host");
                let h = super::hosts::host_index(ctx, v.span(), *v.get_ref(), &field, hosts);
                if h.is_some_and(|h| probes.iter().any(|q| q.host == h)) {
                    ctx.err(
                        v.span(),
                        &field,
                        format!("host {} has a probe already", h.unwrap_or(0)),
                        Some("one probe per host".into()),
                    );
                    None
                } else {
                    h
                }
            }
        };
        let start_s = build_start(ctx, i, p, kind, duration_s);
        match (
            kind,
            interval_ms,
            blocks,
            depth,
            fs,
            workload,
            host,
            start_s,
        ) {
            (
                Some(kind),
                Some(interval_ms),
                Some(blocks),
                Some(depth),
                Some(fs),
                Some((command, fio)),
                Some(host),
                Some(start_s),
            ) => probes.push(Probe {
                name,
                kind,
                interval_ms,
                blocks,
                depth,
                fs,
                command,
                fio,
                host,
                start_s,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(probes)
}

/// A probe's `start_s` (0 by default): a blkprobe's alone, before the
/// end of the I/O phase.
fn build_start(
    ctx: &mut Ctx<'_>,
    i: usize,
    p: &RawProbe,
    kind: Option<ProbeKind>,
    duration_s: Option<f64>,
) -> Option<f64> {
    let Some(v) = &p.start_s else {
        return Some(0.0);
    };
    let field = format!("probe[{i}].start_s");
    if kind.is_some_and(|k| k != ProbeKind::Blkprobe) {
        ctx.err(
            v.span(),
            &field,
            "applies only to kind = \"blkprobe\"".into(),
            Some("remove `start_s`".into()),
        );
        return None;
    }
    let x = *v.get_ref();
    let end = duration_s.unwrap_or(f64::INFINITY);
    if x.is_finite() && x >= 0.0 && x < end {
        return Some(x);
    }
    ctx.err(
        v.span(),
        &field,
        format!("must be from 0 to less than duration_s ({end} s), got {x}"),
        Some("seconds from the start of the I/O phase, e.g. 10".into()),
    );
    None
}

/// The fs probe's keys (`fs`, `mount_options`, `xfs_eio_max_retries`), and
/// the block probe's (`blocks`, `depth`) refused on the other kind.
/// `Some(None)`: a blkprobe, rightly without them.
fn build_fs(
    ctx: &mut Ctx<'_>,
    i: usize,
    p: &RawProbe,
    kind: ProbeKind,
    lun_size_mib: Option<u64>,
) -> Option<Option<FsSpec>> {
    let mut ok = true;
    let mut refuse = |ctx: &mut Ctx<'_>, span: std::ops::Range<usize>, key: &str, only: &str| {
        ctx.err(
            span,
            &format!("probe[{i}].{key}"),
            format!("applies only to kind = \"{only}\""),
            Some(format!(
                "remove `{key}`, or make the probe kind = \"{only}\""
            )),
        );
        ok = false;
    };
    let fs_keys = p.fs.is_some() || p.mount_options.is_some() || p.xfs_eio_max_retries.is_some();
    match kind {
        ProbeKind::Blkprobe => {
            if let Some(v) = &p.fs {
                refuse(ctx, v.span(), "fs", "fs");
            }
            if let Some(v) = &p.mount_options {
                refuse(ctx, v.span(), "mount_options", "fs");
            }
            if let Some(v) = &p.xfs_eio_max_retries {
                refuse(ctx, v.span(), "xfs_eio_max_retries", "fs");
            }
            return ok.then_some(None);
        }
        ProbeKind::Fs | ProbeKind::Command | ProbeKind::Fio => {
            if let Some(v) = &p.blocks {
                refuse(ctx, v.span(), "blocks", "blkprobe");
            }
            if let Some(v) = &p.depth {
                refuse(ctx, v.span(), "depth", "blkprobe");
            }
        }
    }
    if matches!(kind, ProbeKind::Command | ProbeKind::Fio) && !fs_keys {
        return ok.then_some(None);
    }
    let fs = match &p.fs {
        None => FsKind::Ext4,
        Some(v) => match FsKind::ALL.into_iter().find(|f| f.as_str() == v.get_ref()) {
            Some(f) => {
                if let Some(size) = lun_size_mib.filter(|s| *s < f.min_lun_mib()) {
                    ctx.err(
                        v.span(),
                        &format!("probe[{i}].fs"),
                        format!(
                            "{} needs a LUN of at least {} MiB, lane.lun_size_mib is {size}",
                            f.as_str(),
                            f.min_lun_mib()
                        ),
                        Some(format!("set [lane] lun_size_mib = {}", f.min_lun_mib())),
                    );
                    ok = false;
                }
                f
            }
            None => {
                let got = v.get_ref().as_str();
                ctx.unknown(
                    v.span(),
                    &format!("probe[{i}].fs"),
                    &format!("filesystem `{}`", shorten(got)),
                    got,
                    &FsKind::ALL.map(FsKind::as_str),
                    "filesystems",
                );
                return None;
            }
        },
    };
    let mount_options = match &p.mount_options {
        None => None,
        Some(v) => {
            let o = v.get_ref();
            let allowed = |c: char| c.is_ascii_alphanumeric() || "=,._-".contains(c);
            if o.split(',').any(|opt| opt == "errors=panic") {
                ctx.err(
                    v.span(),
                    &format!("probe[{i}].mount_options"),
                    "errors=panic would panic the kernel the harness runs on".into(),
                    Some("errors=remount-ro or errors=continue".into()),
                );
                ok = false;
            } else if o.is_empty() || o.len() > MAX_MOUNT_OPTIONS_LEN || !o.chars().all(allowed) {
                ctx.err(
                    v.span(),
                    &format!("probe[{i}].mount_options"),
                    format!(
                        "must be 1 to {MAX_MOUNT_OPTIONS_LEN} characters of letters, digits and `=,._-`"
                    ),
                    Some("mount -o options, e.g. \"errors=remount-ro\"".into()),
                );
                ok = false;
            }
            Some(o.clone())
        }
    };
    let xfs_eio_max_retries = match &p.xfs_eio_max_retries {
        None => None,
        Some(v) if fs != FsKind::Xfs => {
            ctx.err(
                v.span(),
                &format!("probe[{i}].xfs_eio_max_retries"),
                "applies only to fs = \"xfs\"".into(),
                None,
            );
            ok = false;
            None
        }
        Some(v) if (-1..=MAX_XFS_RETRIES).contains(v.get_ref()) => Some(*v.get_ref()),
        Some(v) => {
            ctx.err(
                v.span(),
                &format!("probe[{i}].xfs_eio_max_retries"),
                format!("must be from -1 to {MAX_XFS_RETRIES}, got {}", v.get_ref()),
                Some("-1 retries for ever (the kernel's default), 0 fails at once".into()),
            );
            ok = false;
            None
        }
    };
    ok.then_some(Some(FsSpec {
        fs,
        mount_options,
        xfs_eio_max_retries,
    }))
}

/// Longest `command`.
const MAX_COMMAND_LEN: usize = 2000;
/// Longest `timeout_s`.
const MAX_COMMAND_TIMEOUT_S: f64 = 3600.0;

/// Longest fio `job`.
const MAX_JOB_LEN: usize = 20_000;

/// The user's own workload: a command probe's `command` or a fio probe's
/// `job` (each required on its kind), and `timeout_s` on either; refused
/// on the other kinds. `Some((None, None))`: a probe rightly without them.
fn build_workload(
    ctx: &mut Ctx<'_>,
    i: usize,
    p: &RawProbe,
    kind: ProbeKind,
) -> Option<(Option<CommandSpec>, Option<FioSpec>)> {
    let mut ok = true;
    for (key, span, on) in [
        (
            "command",
            p.command.as_ref().map(|v| v.span()),
            &[ProbeKind::Command][..],
        ),
        ("job", p.job.as_ref().map(|v| v.span()), &[ProbeKind::Fio]),
        (
            "timeout_s",
            p.timeout_s.as_ref().map(|v| v.span()),
            &[ProbeKind::Command, ProbeKind::Fio],
        ),
    ] {
        if let Some(span) = span.filter(|_| !on.contains(&kind)) {
            let only = on
                .iter()
                .map(|k| format!("\"{}\"", k.as_str()))
                .collect::<Vec<_>>();
            ctx.err(
                span,
                &format!("probe[{i}].{key}"),
                format!("applies only to kind = {}", only.join(" or ")),
                Some(format!(
                    "remove `{key}`, or make the probe kind = {}",
                    only[0]
                )),
            );
            ok = false;
        }
    }
    let text = |ctx: &mut Ctx<'_>,
                v: &Option<toml::Spanned<String>>,
                key: &str,
                max: usize,
                hint: &str| {
        match v {
            None => {
                ctx.err(
                    p.kind.span(),
                    &format!("probe[{i}].{key}"),
                    format!("a {} probe needs `{key}`", kind.as_str()),
                    Some(hint.into()),
                );
                None
            }
            Some(v)
                if v.get_ref().trim().is_empty()
                    || v.get_ref().len() > max
                    || v.get_ref().contains('\0') =>
            {
                ctx.err(
                    v.span(),
                    &format!("probe[{i}].{key}"),
                    format!("must be 1 to {max} characters, without NUL"),
                    Some(hint.into()),
                );
                None
            }
            Some(v) => Some(v.get_ref().clone()),
        }
    };
    let timeout_s = |ctx: &mut Ctx<'_>, default: f64, hint: &str| match &p.timeout_s {
        None => Some(default),
        Some(v) if *v.get_ref() > 0.0 && *v.get_ref() <= MAX_COMMAND_TIMEOUT_S => {
            Some(*v.get_ref())
        }
        Some(v) => {
            ctx.err(
                v.span(),
                &format!("probe[{i}].timeout_s"),
                format!(
                    "must be more than 0 and at most {MAX_COMMAND_TIMEOUT_S}, got {}",
                    v.get_ref()
                ),
                Some(hint.into()),
            );
            None
        }
    };
    match kind {
        ProbeKind::Command => {
            let command = text(
                ctx,
                &p.command,
                "command",
                MAX_COMMAND_LEN,
                "command = \"ls \\\"$ISCSI_CHAOS_MOUNT\\\"\" (run by sh -c)",
            );
            let timeout_s = timeout_s(
                ctx,
                10.0,
                "seconds one run of the command may take, e.g. 10",
            );
            let spec = CommandSpec {
                command: command?,
                timeout_s: timeout_s?,
            };
            ok.then_some((Some(spec), None))
        }
        ProbeKind::Fio => {
            let job = text(
                ctx,
                &p.job,
                "job",
                MAX_JOB_LEN,
                "job = \"\"\"[randrw]\\nrw=randrw\\nbs=4k\\ndirect=1\"\"\" (a fio job file's text)",
            );
            let timeout_s = timeout_s(
                ctx,
                30.0,
                "seconds fio may run past the scenario's duration before it is killed, e.g. 30",
            );
            let spec = FioSpec {
                job: job?,
                timeout_s: timeout_s?,
            };
            ok.then_some((None, Some(spec)))
        }
        ProbeKind::Blkprobe | ProbeKind::Fs => ok.then_some((None, None)),
    }
}
