//! The keys of each section of a scenario file, as data ([`KeySpec`]):
//! the parser's list of the `[[fault]]` table's common fields is
//! [`FAULT`], and the reference (`docs/scenarios.md`, `iscsi-chaos
//! explain`, made by [`super::reference`]) renders every table; a test
//! checks the serde structs of `raw.rs` accept exactly these keys. The
//! bounds name the constants the builders check against.

use crate::model::fault::MIN_STEP_S;
use crate::model::keys::{Bound, KeySpec, REQUIRED};
use crate::model::multipath::{MAX_FAST_IO_FAIL_TMO_S, MAX_NO_PATH_RETRY, MAX_POLLING_INTERVAL_S};
use crate::model::names::MAX_PATHS;
use crate::model::settings::MAX_TIMER_S;
use crate::model::{
    MAX_CAPTURE_MIB, MAX_DEADLINE_S, MAX_DURATION_S, MAX_SNAPLEN, MIN_SNAPLEN, MTU_RANGE, VERSION,
};

/// Largest LUN a scenario may ask for (sparse file or loop device), MiB.
pub const MAX_LUN_SIZE_MIB: i64 = 1024 * 1024;
/// Longest probe name, characters.
pub const MAX_NAME_LEN: usize = 64;
/// Longest probe interval, ms.
pub const MAX_PROBE_INTERVAL_MS: i64 = 60_000;
/// Longest description, characters.
pub const MAX_DESCRIPTION_LEN: usize = 4096;
/// The shortest `[expect] deadline_s`: time to read back a few writes.
pub const MIN_DEADLINE_S: f64 = 4.0;

/// One table of a scenario file and its keys.
pub struct Section {
    /// As written in the file: `[lane]`, `[[fault]]`; empty for the top
    /// level.
    pub table: &'static str,
    /// What the table is for.
    pub doc: &'static str,
    pub keys: &'static [KeySpec],
}

const fn seconds(key: &'static str, default: &'static str, meaning: &'static str) -> KeySpec {
    KeySpec {
        unit: "s",
        default,
        bound: Bound::Num {
            min: 0.0,
            min_open: false,
            max: MAX_DURATION_S + MAX_DEADLINE_S,
        },
        ..KeySpec::new(key, "number", meaning)
    }
}

const fn timer(key: &'static str, default: &'static str, meaning: &'static str) -> KeySpec {
    KeySpec {
        unit: "s",
        default,
        bound: Bound::Int {
            min: 0,
            max: MAX_TIMER_S,
        },
        ..KeySpec::new(key, "integer", meaning)
    }
}

pub const TOP: &[KeySpec] = &[
    KeySpec {
        default: REQUIRED,
        bound: Bound::Int {
            min: VERSION,
            max: VERSION,
        },
        ..KeySpec::new("version", "integer", "the file format's version")
    },
    KeySpec {
        bound: Bound::Text("at most 4096 characters"),
        ..KeySpec::new(
            "description",
            "string",
            "what the scenario shows, for `list` and reports",
        )
    },
    KeySpec {
        unit: "s",
        default: REQUIRED,
        bound: Bound::Num {
            min: 0.0,
            min_open: true,
            max: MAX_DURATION_S,
        },
        ..KeySpec::new(
            "duration_s",
            "number",
            "the length of the I/O phase; every fault time is from its start",
        )
    },
    KeySpec {
        default: "false",
        ..KeySpec::new(
            "long",
            "boolean",
            "minutes long: run only with `run --long`",
        )
    },
];

pub const LANE: &[KeySpec] = &[
    KeySpec {
        default: REQUIRED,
        bound: Bound::Text("\"tgt\", \"lio\", or a list of them"),
        ..KeySpec::new("target", "string or array", "the target implementation(s): one run per target")
    },
    KeySpec {
        unit: "MiB",
        default: "64",
        bound: Bound::Int {
            min: 1,
            max: MAX_LUN_SIZE_MIB,
        },
        ..KeySpec::new("lun_size_mib", "integer", "the LUN's size")
    },
    KeySpec {
        unit: "bytes",
        default: "the kernel's (1500)",
        bound: Bound::Int {
            min: *MTU_RANGE.start(),
            max: *MTU_RANGE.end(),
        },
        ..KeySpec::new("mtu", "integer", "link MTU of both veth ends")
    },
    KeySpec {
        default: "false",
        ..KeySpec::new("alone", "boolean", "with --jobs, no other run shares the host meanwhile")
    },
    KeySpec {
        default: "1",
        bound: Bound::Int {
            min: 1,
            max: MAX_PATHS as i64,
        },
        ..KeySpec::new("paths", "integer", "2 or more: a switch, subnet, portal and session per path, and a dm-multipath map over them (one such run at a time: multipathd is host-wide)")
    },
];

pub const MULTIPATH: &[KeySpec] = &[
    KeySpec {
        unit: "s",
        default: "5",
        bound: Bound::Int {
            min: 1,
            max: MAX_POLLING_INTERVAL_S as i64,
        },
        ..KeySpec::new("polling_interval", "integer", "time between path checks")
    },
    KeySpec {
        default: "\"tur\"",
        bound: Bound::Words(&["tur", "directio"]),
        ..KeySpec::new("path_checker", "string", "how multipathd checks a path")
    },
    KeySpec {
        default: "\"fail\"",
        bound: Bound::WordsOrInt {
            words: &["fail", "queue"],
            min: 1,
            max: MAX_NO_PATH_RETRY as i64,
        },
        ..KeySpec::new(
            "no_path_retry",
            "string or integer",
            "what I/O does with every path down: fail at once, wait, or wait N × polling_interval",
        )
    },
    KeySpec {
        unit: "s",
        default: "5",
        bound: Bound::WordsOrInt {
            words: &["off"],
            min: 1,
            max: MAX_FAST_IO_FAIL_TMO_S as i64,
        },
        ..KeySpec::new(
            "fast_io_fail_tmo",
            "integer or string",
            "multipathd writes it into each session's recovery_tmo",
        )
    },
    KeySpec {
        default: "\"multibus\"",
        bound: Bound::Words(&["multibus", "failover"]),
        ..KeySpec::new(
            "path_grouping_policy",
            "string",
            "I/O on every path (multibus) or one at a time (failover)",
        )
    },
    KeySpec {
        default: "\"0\"",
        bound: Bound::Text("a count, then that many words"),
        ..KeySpec::new(
            "features",
            "string",
            "the map's features; queueing is no_path_retry's",
        )
    },
];

pub const INITIATOR: &[KeySpec] = &[
    timer("noop_out_interval", "5", "seconds between NOP-Outs; 0 (with noop_out_timeout = 0) turns them off"),
    timer("noop_out_timeout", "5", "seconds a NOP-Out may go unanswered before the connection is dropped"),
    KeySpec {
        unit: "s",
        default: "120",
        bound: Bound::Int {
            min: i32::MIN as i64,
            max: MAX_TIMER_S,
        },
        ..KeySpec::new("replacement_timeout", "integer", "how long I/O waits for a lost session to come back before it fails; 0: at once, < 0: never (queued forever)")
    },
    KeySpec {
        bound: Bound::Text("a profile below"),
        ..KeySpec::new("profile", "string", "a named initiator profile: its node settings, under this file's own keys")
    },
    KeySpec {
        bound: Bound::Text("a file beside the scenario"),
        ..KeySpec::new("iscsid_conf", "string", "an iscsid.conf whose node settings apply, under this file's own keys (not with profile)")
    },
    KeySpec {
        bound: Bound::Text("see [initiator.settings]"),
        ..KeySpec::new("settings", "table", "iscsiadm node keys from the allow-list")
    },
];

pub const PROBE: &[KeySpec] = &[
    KeySpec {
        default: REQUIRED,
        bound: Bound::Words(&["blkprobe", "fs", "command", "fio"]),
        ..KeySpec::new(
            "kind",
            "string",
            "the probe: `blkprobe`, O_DIRECT writes and reads of the disk, each verified; `fs`, a filesystem made on the disk and a file workload (create, write, fsync or fdatasync, rename, fsync of the folder, read), its state over time, what it took to work again after the fault (nothing, a remount, umount + repair) and which fsynced files survived; `command`, your own command run again and again (on the disk, or on a filesystem made on it with `fs`), each run's time and exit status; `fio`, your fio job (on the disk, or on a filesystem made on it with `fs`), every I/O from fio's latency log and every failed one from its error lines",
        )
    },
    KeySpec {
        default: "the kind",
        bound: Bound::Text("at most 64 characters, no control characters"),
        ..KeySpec::new("name", "string", "the probe's name in reports, unique")
    },
    KeySpec {
        unit: "ms",
        default: "20 (fs: 100, command: 1000)",
        bound: Bound::Int {
            min: 1,
            max: MAX_PROBE_INTERVAL_MS,
        },
        ..KeySpec::new("interval_ms", "integer", "time between operations (fio keeps its job's own pace: there, the longest quiet gap between its I/Os, which the oracle's detection window uses)")
    },
    KeySpec {
        unit: "blocks",
        default: "the whole LUN",
        bound: Bound::Int {
            min: 1,
            max: crate::model::MAX_PROBE_BLOCKS as i64,
        },
        ..KeySpec::new(
            "blocks",
            "integer",
            "the blocks written in turn (4 KiB each): a small number makes a hot set, each block rewritten with a newer version every `blocks` writes, so a stale version landing over a newer acknowledged one shows",
        )
    },
    KeySpec {
        unit: "writers",
        default: "1",
        bound: Bound::Int {
            min: 1,
            max: crate::model::MAX_PROBE_DEPTH as i64,
        },
        ..KeySpec::new(
            "depth",
            "integer",
            "writers at once, each on its own share of the blocks (block mod depth), each writing, reading back and reading again before its next write: up to `depth` operations in flight",
        )
    },
    KeySpec {
        default: "\"ext4\"",
        bound: Bound::Words(&["ext4", "xfs"]),
        ..KeySpec::new(
            "fs",
            "string",
            "kind = \"fs\" (or \"command\" or \"fio\", to run it on a filesystem): the filesystem made on the disk (xfs needs lane.lun_size_mib of at least 300)",
        )
    },
    KeySpec {
        default: "none",
        bound: Bound::Text("letters, digits and `=,._-`, at most 200"),
        ..KeySpec::new(
            "mount_options",
            "string",
            "kind = \"fs\": mount -o options, e.g. \"errors=remount-ro\"",
        )
    },
    KeySpec {
        default: "the kernel's (-1: for ever)",
        bound: Bound::Int {
            min: -1,
            max: 1_000_000,
        },
        ..KeySpec::new(
            "xfs_eio_max_retries",
            "integer",
            "fs = \"xfs\": /sys/fs/xfs/<dev>/error/metadata/EIO/max_retries, how often XFS retries a failed metadata write",
        )
    },
    KeySpec {
        default: REQUIRED,
        bound: Bound::Text("at most 2000 characters"),
        ..KeySpec::new(
            "command",
            "string",
            "kind = \"command\": run by sh -c, again every interval_ms (default 1000), with ISCSI_CHAOS_DEVICE (the disk) and, with `fs`, ISCSI_CHAOS_MOUNT (the filesystem's folder) set; a run that exits 0 within timeout_s is ok, any other an error",
        )
    },
    KeySpec {
        unit: "s",
        default: "10 (fio: 30)",
        bound: Bound::Num {
            min: 0.0,
            min_open: true,
            max: 3600.0,
        },
        ..KeySpec::new("timeout_s", "number", "kind = \"command\": bound of one run (default 10); past it the run is killed and counts as an error; kind = \"fio\": how long fio may run past the scenario's duration (default 30) before it is killed")
    },
    KeySpec {
        default: REQUIRED,
        bound: Bound::Text("at most 20000 characters"),
        ..KeySpec::new(
            "job",
            "string",
            "kind = \"fio\": a fio job file's text; the probe puts its own [global] defaults first (filename=${ISCSI_CHAOS_DEVICE}, or directory=${ISCSI_CHAOS_MOUNT} with `fs`; the latency log; continue_on_error=all; error_dump=1; time_based for the scenario's duration), which the job's own [global] may override",
        )
    },
    KeySpec {
        default: "0",
        bound: Bound::Text("0 to hosts - 1; one probe per host"),
        ..KeySpec::new("host", "integer", "the host whose disk the probe does its I/O on")
    },
    KeySpec {
        unit: "s",
        default: "0",
        bound: Bound::Text("0 to less than duration_s; blkprobe only"),
        ..KeySpec::new(
            "start_s",
            "number",
            "when its I/O begins, from the start of the I/O phase: a second host taking the disk over",
        )
    },
];

pub const HOST: &[KeySpec] = &[KeySpec {
    default: "\"host<N>\"",
    bound: Bound::Text("at most 64 characters, unique"),
    ..KeySpec::new("name", "string", "the host's name in reports")
}];

pub const FENCING: &[KeySpec] = &[
    KeySpec {
        default: REQUIRED,
        bound: Bound::Text("0 to hosts - 1"),
        ..KeySpec::new("survivor", "integer", "the host that fences the other and goes on")
    },
    KeySpec {
        default: REQUIRED,
        bound: Bound::Text("0 to hosts - 1, not the survivor"),
        ..KeySpec::new("victim", "integer", "the host fenced off (it holds the reservation first)")
    },
    KeySpec {
        unit: "s",
        default: "one of at_s and after_victim_stall_s",
        bound: Bound::Text("0 to less than duration_s"),
        ..KeySpec::new(
            "at_s",
            "number",
            "when the survivor fences the victim (PREEMPT AND ABORT of its key), from the start of the I/O phase",
        )
    },
    KeySpec {
        unit: "s",
        default: "one of at_s and after_victim_stall_s",
        bound: Bound::Text("0.5 to less than duration_s"),
        ..KeySpec::new(
            "after_victim_stall_s",
            "number",
            "fence once an operation of the victim's probe has been blocked this long, as a cluster manager's monitor would (the probe reports a stall about once a second: the fence comes up to a second after)",
        )
    },
];

/// The common fields of every `[[fault]]` table; the rest are the kind's
/// options.
pub const FAULT: &[KeySpec] = &[
    KeySpec {
        default: REQUIRED,
        bound: Bound::Text("a fault kind below"),
        ..KeySpec::new("kind", "string", "what the fault does")
    },
    KeySpec {
        unit: "s",
        default: REQUIRED,
        bound: Bound::Num {
            min: 0.0,
            min_open: false,
            max: MAX_DURATION_S,
        },
        ..KeySpec::new("start_s", "number", "from the start of the I/O phase")
    },
    KeySpec {
        unit: "s",
        default: REQUIRED,
        bound: Bound::Num {
            min: MIN_STEP_S,
            min_open: false,
            max: MAX_DURATION_S,
        },
        ..KeySpec::new("duration_s", "number", "how long the fault lasts")
    },
    KeySpec {
        default: "\"both\"",
        bound: Bound::Words(&["both", "to_target", "to_initiator"]),
        ..KeySpec::new(
            "direction",
            "string",
            "the direction a network fault shapes (kinds that act on both say so)",
        )
    },
    KeySpec {
        default: "\"all\"",
        bound: Bound::Text("\"all\", or 0 to paths - 1"),
        ..KeySpec::new(
            "path",
            "integer or string",
            "on a lane of several paths, the path a fault of the fabric breaks",
        )
    },
    KeySpec {
        default: "0",
        bound: Bound::Text("0 to hosts - 1"),
        ..KeySpec::new(
            "host",
            "integer",
            "with several `[[host]]`s, the host whose storage network a fault of the fabric breaks",
        )
    },
];

pub const CAPTURE: &[KeySpec] = &[
    KeySpec {
        default: "\"faults\"",
        bound: Bound::Text("\"off\", \"faults\" or \"all\""),
        ..KeySpec::new(
            "mode",
            "string",
            "which frames go into `<run>.pcapng` and the history: none, a window around each fault (3 s before it to 15 s after it, and every connection's setup and end), or the whole run (`--capture` overrides it)",
        )
    },
    KeySpec {
        unit: "bytes",
        default: "65535",
        bound: Bound::Int {
            min: MIN_SNAPLEN as i64,
            max: MAX_SNAPLEN as i64,
        },
        ..KeySpec::new(
            "snaplen",
            "integer",
            "bytes kept of each frame in the file (the decoder reads whole frames either way)",
        )
    },
    KeySpec {
        unit: "MiB",
        default: "64",
        bound: Bound::Int {
            min: 1,
            max: MAX_CAPTURE_MIB as i64,
        },
        ..KeySpec::new(
            "max_mib",
            "integer",
            "the capture file's size cap: past it no frame is added, and the history says when",
        )
    },
];

pub const EXPECT: &[KeySpec] = &[
    KeySpec {
        default: "\"oracle\"",
        bound: Bound::Text("\"oracle\", \"none\", or 0 to 36000 s after the first fault starts"),
        ..KeySpec::new(
            "first_error",
            "string or number",
            "when the first I/O error comes: as the oracle predicts, never, or at a time",
        )
    },
    KeySpec {
        unit: "s",
        default: "1.5",
        bound: Bound::Num {
            min: 0.0,
            min_open: true,
            max: MAX_DURATION_S,
        },
        ..KeySpec::new(
            "tolerance_s",
            "number",
            "around a first_error given as a number (only then)",
        )
    },
    seconds("max_stall_s", "", "a bound on the longest stall"),
    seconds(
        "min_stall_s",
        "",
        "the longest stall must be at least this (<= max_stall_s)",
    ),
    KeySpec {
        default: "true",
        ..KeySpec::new(
            "recovered",
            "boolean",
            "I/O succeeds again after the last fault ends",
        )
    },
    seconds("max_recovery_s", "", "a bound on the time to recover"),
    KeySpec {
        default: "0",
        bound: Bound::Text(">= 0"),
        ..KeySpec::new(
            "max_lost_writes",
            "integer",
            "acknowledged writes that may read back wrong (a block another host wrote over is counted apart, as split brain)",
        )
    },
    KeySpec {
        default: "",
        bound: Bound::Text("true or false"),
        ..KeySpec::new(
            "split_brain",
            "boolean",
            "with several hosts: whether blocks written by both hosts after the later one began must be seen (true) or must not (false); without it they are reported only",
        )
    },
    KeySpec {
        unit: "s",
        default: "50",
        bound: Bound::Num {
            min: MIN_DEADLINE_S,
            min_open: false,
            max: MAX_DEADLINE_S,
        },
        ..KeySpec::new(
            "deadline_s",
            "number",
            "after duration_s: time to verify and end; past it the run ends with \"probe hung\"",
        )
    },
];

/// Every table with fixed keys, in the order of the reference.
pub const SECTIONS: &[Section] = &[
    Section {
        table: "",
        doc: "The top level: the format's version and the I/O phase.",
        keys: TOP,
    },
    Section {
        table: "[lane]",
        doc: "The targets, the LUN, the link and its paths. Required.",
        keys: LANE,
    },
    Section {
        table: "[multipath]",
        doc: "dm-multipath's settings, only with `[lane] paths` > 1 (such a lane gets multipath-tools' defaults without it). Written into the run's multipath.conf, where every device but the run's map is blacklisted.",
        keys: MULTIPATH,
    },
    Section {
        table: "[initiator]",
        doc: "open-iscsi's timers (whole seconds; open-iscsi's defaults) and where other node settings come from.",
        keys: INITIATOR,
    },
    Section {
        table: "[[host]]",
        doc: "The initiator hosts, at most 2 (one without any): each its own initiator name (an open-iscsi iface record of the run's), switch, subnet, session and disk of the one LUN, so the target sees one I_T nexus per host. A host's probe and faults name it by number (`host = N`). Not with `[lane] paths` > 1.",
        keys: HOST,
    },
    Section {
        table: "[fencing]",
        doc: "SCSI-3 persistent-reservation fencing between two `[[host]]`s, fence_scsi's protocol through sg_persist (sg3-utils): every host registers a key of its own through its own disk, the victim holds a Write Exclusive, Registrants Only reservation, and at `at_s` (or once the victim's I/O has been stuck `after_victim_stall_s`) the survivor removes the victim's key with PREEMPT AND ABORT, after which the target refuses the victim's writes with RESERVATION CONFLICT (errno EBADE). The reservation state is read back after each action into the history. tgt has no PREEMPT AND ABORT: a fenced run on tgt is skipped. LIO keeps the state under its db_root: `/var/target/pr` must exist.",
        keys: FENCING,
    },
    Section {
        table: "[[probe]]",
        doc: "The I/O whose errors and stalls are measured: one probe per host.",
        keys: PROBE,
    },
    Section {
        table: "[[fault]]",
        doc: "Any number of faults, not overlapping (but a fault may hold those its kind holds). Besides these common fields, each kind takes its own options (below).",
        keys: FAULT,
    },
    Section {
        table: "[capture]",
        doc: "The switch's packet capture: every frame of each path, seen where it came into the switch and where it left it (so what the nemesis dropped or made is told apart), decoded into the history (TCP marks, iSCSI PDUs) and written to `<run>.pcapng` beside it.",
        keys: CAPTURE,
    },
    Section {
        table: "[expect]",
        doc: "What the run must show. Default: as the oracle predicts, recovered, nothing lost.",
        keys: EXPECT,
    },
];

/// The section written as `table`, without its brackets (`lane`, `fault`).
pub fn section(table: &str) -> Option<&'static Section> {
    SECTIONS
        .iter()
        .find(|s| s.table.trim_matches(|c| c == '[' || c == ']') == table)
}
