//! Scenario files end to end: text in, a scenario or its diagnostics out;
//! and the texts and helpers the sections' tests share.

use super::*;

pub(super) const GOOD: &str = r#"
version = 1
description = "short blackhole"
duration_s = 25

[lane]
target = ["tgt", "lio"]
lun_size_mib = 32

[initiator]
noop_out_interval = 2
noop_out_timeout = 2
replacement_timeout = 10

[initiator.settings]
"node.conn[0].timeo.login_timeout" = 5
"node.session.iscsi.InitialR2T" = "No"

[[probe]]
kind = "blkprobe"
interval_ms = 10

[[fault]]
kind = "blackhole"
start_s = 12
duration_s = 4

[[fault]]
kind = "blackhole"
direction = "to_target"
start_s = 5
duration_s = 2.5

[expect]
max_stall_s = 8
"#;

pub(super) fn err(text: &str) -> Vec<Diagnostic> {
    match Scenario::parse(text, "scenarios/x.toml") {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e.diagnostics().to_vec(),
    }
}

pub(super) fn one(text: &str) -> Diagnostic {
    let d = err(text);
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap()
}

/// GOOD on two paths under multipath, with `extra` appended.
pub(super) fn two_paths(extra: &str) -> String {
    format!(
        "{}{extra}",
        GOOD.replace("lun_size_mib = 32", "lun_size_mib = 32\npaths = 2")
    )
}

#[test]
fn parses_a_full_scenario() {
    let s = Scenario::parse(GOOD, "scenarios/outage/short.toml").unwrap();
    assert_eq!(s.name, "short");
    assert_eq!(s.duration_s, 25.0);
    assert_eq!(s.lane.targets, vec![TargetKind::Tgt, TargetKind::Lio]);
    assert_eq!(s.lane.lun_size_mib, 32);
    assert_eq!(s.initiator.noop_out_interval, 2);
    assert_eq!(s.initiator.login_timeout(), 5);
    assert_eq!(s.probes[0].interval_ms, 10);
    // Sorted by start, indexes kept from the file.
    assert_eq!(s.faults.len(), 2);
    assert_eq!(s.faults[0].index, 1);
    assert_eq!(s.faults[0].start_s, 5.0);
    assert_eq!(
        s.faults[0].kind,
        FaultKind::Blackhole(fault::blackhole::Blackhole {
            direction: Direction::ToTarget
        })
    );
    assert_eq!(s.faults[1].end_s(), 16.0);
    assert_eq!(s.expect.first_error, FirstErrorExpect::Oracle);
    assert_eq!(s.expect.max_stall_s, Some(8.0));
    assert!(s.expect.recovered);
}

#[test]
fn defaults_follow_open_iscsi() {
    let s = Scenario::parse(
        "version = 1\nduration_s = 10\n[lane]\ntarget = \"tgt\"\n",
        "d.toml",
    )
    .unwrap();
    assert_eq!(s.initiator, Initiator::default());
    assert_eq!(s.initiator.replacement_timeout, 120);
    assert_eq!(s.probes.len(), 1);
    assert_eq!(s.probes[0].kind, ProbeKind::Blkprobe);
    assert!(s.faults.is_empty());
    assert_eq!(s.expect, Expect::default());
}

#[test]
fn expands_one_run_per_target() {
    let s = Scenario::parse(GOOD, "scenarios/short.toml").unwrap();
    let runs = s.expand();
    let ids: Vec<String> = runs.iter().map(Run::id).collect();
    assert_eq!(ids, vec!["short@tgt", "short@lio"]);
    assert_eq!(runs[1].target, TargetKind::Lio);
}

#[test]
fn several_errors_reported_together() {
    let d = err(&GOOD
        .replace("interval_ms = 10", "interval_ms = 0")
        .replace("lun_size_mib = 32", "lun_size_mib = 0"));
    let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, vec!["lane.lun_size_mib", "probe[0].interval_ms"]);
}

/// GOOD's first fault (line 22) replaced by `fault`.
pub(super) fn with_fault(fault: &str) -> String {
    GOOD.replace(
        "kind = \"blackhole\"\nstart_s = 12\nduration_s = 4\n",
        &format!("{fault}start_s = 12\nduration_s = 4\n"),
    )
}

/// GOOD with its InitialR2T setting replaced by `line`.
pub(super) fn with_setting(line: &str) -> String {
    GOOD.replace("\"node.session.iscsi.InitialR2T\" = \"No\"", line)
}

pub(super) const NEW_KINDS_HEAD: &str = "version = 1\nduration_s = 60\n[lane]\ntarget = \"tgt\"\n";

#[test]
fn a_probe_without_interval_gets_the_documented_default() {
    let text = GOOD.replace("interval_ms = 10\n", "");
    assert_ne!(text, GOOD, "GOOD sets interval_ms");
    let s = Scenario::parse(&text, "p.toml").unwrap();
    assert_eq!(
        s.probes[0].interval_ms,
        crate::model::scenario::DEFAULT_PROBE_INTERVAL_MS
    );
    assert_eq!(crate::model::scenario::DEFAULT_PROBE_INTERVAL_MS, 20);
}

#[test]
fn a_probe_s_hot_set_is_read_and_bounded() {
    let s = Scenario::parse(
        &GOOD.replace("interval_ms = 10\n", "interval_ms = 10\nblocks = 16\n"),
        "p.toml",
    )
    .unwrap();
    assert_eq!(s.probes[0].blocks, Some(16));
    assert_eq!(
        Scenario::parse(GOOD, "p.toml").unwrap().probes[0].blocks,
        None
    );
    for bad in ["blocks = 0", "blocks = -3", "blocks = 99999999999"] {
        let d = err(&GOOD.replace("interval_ms = 10\n", &format!("interval_ms = 10\n{bad}\n")));
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["probe[0].blocks"], "{bad}");
        assert!(
            d[0].message.contains("must be from 1 to 16777216"),
            "{}",
            d[0].message
        );
    }
}

#[test]
fn a_probe_s_depth_is_bounded_and_needs_a_block_per_writer() {
    let with = |extra: &str| {
        GOOD.replace(
            "interval_ms = 10\n",
            &format!("interval_ms = 10\n{extra}\n"),
        )
    };
    let s = Scenario::parse(&with("blocks = 16\ndepth = 4"), "p.toml").unwrap();
    assert_eq!((s.probes[0].blocks, s.probes[0].depth), (Some(16), 4));
    assert_eq!(Scenario::parse(GOOD, "p.toml").unwrap().probes[0].depth, 1);
    for (bad, says) in [
        ("depth = 0", "must be from 1 to 64"),
        ("depth = 65", "must be from 1 to 64"),
        ("blocks = 2\ndepth = 3", "3 writers need at least 3 blocks"),
    ] {
        let d = err(&with(bad));
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["probe[0].depth"], "{bad}");
        assert!(d[0].message.contains(says), "{}", d[0].message);
    }
}

#[test]
fn an_fs_probe_names_its_filesystem_and_refuses_the_other_kind_s_keys() {
    let probe = |kind: &str, extra: &str| {
        GOOD.replace(
            "kind = \"blkprobe\"\ninterval_ms = 10\n",
            &format!("kind = \"{kind}\"\ninterval_ms = 10\n{extra}\n"),
        )
    };
    let s = Scenario::parse(
        &probe("fs", "mount_options = \"errors=remount-ro\""),
        "p.toml",
    )
    .unwrap();
    let fs = s.probes[0].fs.clone().unwrap();
    assert_eq!(s.probes[0].kind, crate::model::ProbeKind::Fs);
    assert_eq!(fs.fs, crate::model::FsKind::Ext4);
    assert_eq!(fs.mount_options.as_deref(), Some("errors=remount-ro"));
    // A command probe: on the bare disk, or on a filesystem it makes.
    let bare = Scenario::parse(&probe("command", "command = \"ls\""), "p.toml").unwrap();
    let c = &bare.probes[0];
    assert_eq!(
        (c.fs.clone(), c.command.as_ref().unwrap().timeout_s),
        (None, 10.0)
    );
    let on_fs =
        probe("command", "command = \"ls\"\nfs = \"ext4\"").replace("interval_ms = 10\n", "");
    let c = Scenario::parse(&on_fs, "p.toml").unwrap().probes[0].clone();
    assert_eq!(
        (c.fs.unwrap().fs, c.interval_ms),
        (crate::model::FsKind::Ext4, 1000)
    );
    // A fio probe: its job's text, fio's bound past the run.
    let f = Scenario::parse(
        &probe(
            "fio",
            "job = \"\"\"\n[w]\nrw=randwrite\n\"\"\"\nfs = \"ext4\"",
        ),
        "p.toml",
    )
    .unwrap()
    .probes[0]
        .clone();
    let spec = f.fio.unwrap();
    assert_eq!(
        (f.kind, spec.job.as_str(), spec.timeout_s, f.fs.is_some()),
        (
            crate::model::ProbeKind::Fio,
            "[w]\nrw=randwrite\n",
            30.0,
            true
        )
    );
    let big = probe("fs", "fs = \"xfs\"\nxfs_eio_max_retries = -1")
        .replace("lun_size_mib = 32", "lun_size_mib = 300");
    let fs = Scenario::parse(&big, "p.toml").unwrap().probes[0]
        .fs
        .clone()
        .unwrap();
    assert_eq!(
        (fs.fs, fs.xfs_eio_max_retries),
        (crate::model::FsKind::Xfs, Some(-1))
    );
    for (text, field, says) in [
        (
            probe("blkprobe", "fs = \"ext4\""),
            "probe[0].fs",
            "applies only to kind = \"fs\"",
        ),
        (
            probe("fs", "depth = 2"),
            "probe[0].depth",
            "applies only to kind = \"blkprobe\"",
        ),
        (
            probe("fs", "fs = \"xfs\""),
            "probe[0].fs",
            "at least 300 MiB, lane.lun_size_mib is 32",
        ),
        (
            probe("fs", "fs = \"btrfs\""),
            "probe[0].fs",
            "filesystem `btrfs`",
        ),
        (
            probe("fs", "mount_options = \"errors=panic\""),
            "probe[0].mount_options",
            "panic the kernel",
        ),
        (
            probe("fs", "mount_options = \"a b\""),
            "probe[0].mount_options",
            "letters, digits",
        ),
        (
            probe("fs", "xfs_eio_max_retries = 3"),
            "probe[0].xfs_eio_max_retries",
            "only to fs = \"xfs\"",
        ),
        (
            probe("fsprobe", ""),
            "probe[0].kind",
            "probe kind `fsprobe`",
        ),
        (
            probe("blkprobe", "command = \"ls\""),
            "probe[0].command",
            "only to kind = \"command\"",
        ),
        (probe("command", ""), "probe[0].command", "needs `command`"),
        (
            probe("command", "command = \"ls\"\ntimeout_s = 0"),
            "probe[0].timeout_s",
            "more than 0",
        ),
        (
            probe("command", "command = \"ls\"\ndepth = 2"),
            "probe[0].depth",
            "only to kind = \"blkprobe\"",
        ),
        (probe("fio", ""), "probe[0].job", "a fio probe needs `job`"),
        (
            probe("fio", "job = \"[w]\"\ncommand = \"ls\""),
            "probe[0].command",
            "only to kind = \"command\"",
        ),
        (
            probe("command", "command = \"ls\"\njob = \"[w]\""),
            "probe[0].job",
            "only to kind = \"fio\"",
        ),
        (
            probe("blkprobe", "timeout_s = 3"),
            "probe[0].timeout_s",
            "only to kind = \"command\" or \"fio\"",
        ),
        (
            probe("fio", "job = \" \""),
            "probe[0].job",
            "1 to 20000 characters",
        ),
    ] {
        let d = one(&text);
        assert_eq!(d.field, field, "{d:?}");
        assert!(d.message.contains(says), "{field}: {}", d.message);
        assert!(d.line > 1, "{d:?}");
    }
}

#[test]
fn a_controller_stall_is_held_at_the_controller_unless_told_the_host() {
    use crate::model::fault::controller_stall::{ControllerStall, HeldAt};
    let fault = |extra: &str| {
        format!("version = 1\nduration_s = 40\n[lane]\ntarget = \"lio\"\npaths = 2\n[[fault]]\nkind = \"controller_stall\"\npath = 1\nstart_s = 5\nduration_s = 10\n{extra}")
    };
    for (extra, want) in [
        ("", HeldAt::Controller),
        ("held_at = \"host\"", HeldAt::Host),
    ] {
        let s = Scenario::parse(&fault(extra), "p.toml").unwrap();
        assert_eq!(
            s.faults[0].kind,
            ControllerStall { held_at: want }.into(),
            "{extra}"
        );
        assert_eq!(
            s.faults[0].kind.copies_at_send(),
            want == HeldAt::Controller
        );
    }
    let d = err(&fault("held_at = \"switch\""));
    assert_eq!(d[0].field, "fault[0].held_at");
    assert!(d[0].message.contains("`switch`"), "{}", d[0].message);
    let d = err(&fault("direction = \"to_initiator\""));
    assert_eq!(d[0].field, "fault[0].direction", "{d:?}");
}
