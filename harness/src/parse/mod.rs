//! Scenario files: TOML, `version = 1`, one file per scenario, named by its
//! file stem.
//!
//! Parsing is two-staged: serde (with `deny_unknown_fields` and
//! [`toml::Spanned`] on every value we validate) turns the text into raw
//! structs, then [`Scenario::parse`] checks the values and builds the typed
//! [`Scenario`]. Every problem becomes a [`Diagnostic`] naming the file,
//! line, column and field, rendered as
//! `scenarios/x.toml:12:5: fault[1].duration_s: must be > 0 (hint: ...)`.
//!
//! Schema (all durations in seconds, floats or integers):
//!
//! ```toml
//! version = 1                      # required
//! description = "..."              # optional
//! duration_s = 25                  # required: length of the I/O phase
//! long = true                      # default false: minutes long; run only with `run --long`
//!
//! [lane]
//! target = "tgt"                   # "tgt" | "lio" | ["tgt", "lio"]: one run per target
//! lun_size_mib = 64                # default 64; 1..1048576
//! mtu = 9000                       # link MTU of both veth ends, 576..65535 (default: the kernel's 1500)
//! alone = true                     # default false: with --jobs, no other run shares the host meanwhile
//! paths = 2                        # default 1; 2..4: a switch, subnet, portal and session
//!                                  # per path, and a dm-multipath map over them (one such run
//!                                  # at a time: multipathd is host-wide; other runs go beside it)
//!
//! [multipath]                      # only with paths > 1; multipath-tools' defaults:
//! polling_interval = 5             # 1..60 s between path checks
//! path_checker = "tur"             # "tur" | "directio"
//! no_path_retry = "fail"           # "fail" | "queue" | polls 1..1000 (N * polling_interval)
//! fast_io_fail_tmo = 5             # 1..600 s, or "off": multipathd writes it to recovery_tmo
//! path_grouping_policy = "multibus" # "multibus" (I/O on every path) | "failover"
//! features = "0"                   # the map's features: a count, then that many words
//!
//! [initiator]                      # whole seconds, 0..86400; open-iscsi defaults 5, 5, 120
//! noop_out_interval = 2            # 0 (with noop_out_timeout = 0) turns NOP-Outs off
//! noop_out_timeout = 2
//! replacement_timeout = 10         # 0: fail at once; < 0: queue forever
//! profile = "multipath"            # or iscsid_conf = "my.conf" (beside this file):
//!                                  # its node settings, under this file's own keys
//! [initiator.settings]             # allowed node keys only (quoted), see below
//! "node.conn[0].timeo.login_timeout" = 15
//!
//! [[probe]]                        # default: one blkprobe every 20 ms; at most 16
//! kind = "blkprobe"
//! interval_ms = 20
//! name = "blk"                     # default: the kind
//!
//! [[fault]]                        # any number, not overlapping
//! kind = "blackhole"               # 100 % loss (netem)
//! direction = "both"               # "both" | "to_target" | "to_initiator"
//! path = 0                         # network faults on a lane of several paths:
//!                                  # 0.. or "all" (the default)
//! start_s = 5                      # from the start of the I/O phase
//! duration_s = 4
//!
//! [[fault]]                        # impairments (netem), at least one option
//! kind = "netem"                   # direction as for blackhole
//! delay_ms = 50                    # added one-way delay, 0..60000
//! jitter_ms = 100                  # +/- around delay_ms (needs delay_ms > 0)
//! loss_pct = 5                     # 0..100 (100: use blackhole)
//! duplicate_pct = 1
//! corrupt_pct = 1                  # one flipped bit per chosen packet
//! reorder_pct = 25                 # sent at once instead of delayed (needs delay_ms > 0)
//! rate_kbit = 10000                # netem's rate emulation, 1..100000000
//! start_s = 5
//! duration_s = 10
//!
//! [[fault]]                        # blackhole for on_s every period_s
//! kind = "flap"                    # direction as for blackhole
//! on_s = 2
//! period_s = 6                     # >= on_s + 0.1 (on_s >= 0.1)
//! start_s = 5
//! duration_s = 18                  # pulses start at 5, 11, 17
//!
//! [[fault]]                        # the target answers with TCP RST (nftables
//! kind = "reset"                   # `reject with tcp reset` in the lane's namespace):
//! start_s = 5                      # the live connection is reset, new ones refused,
//! duration_s = 0.5                 # for duration_s; with on_s and period_s (as for
//!                                  # flap) for on_s every period_s
//!
//! [[fault]]                        # jumbo frames on one hop only: packets longer than
//! kind = "mtu"                     # `mtu` vanish both ways (as at a switch port) while
//! mtu = 1500                       # the hosts keep [lane] mtu (must be larger)
//! start_s = 5
//! duration_s = 40
//!
//! [[fault]]                        # a bandwidth cap (tbf); direction as for blackhole
//! kind = "tbf"
//! rate_kbit = 2000
//! start_s = 5
//! duration_s = 10
//!
//! [[fault]]                        # the target process killed, started again
//! kind = "target_stop"             # at the end: connections refused meanwhile
//! start_s = 5                      # (LIO: the TPG disabled, then enabled)
//! duration_s = 4
//!
//! [[fault]]                        # the target's portal removed, then restored
//! kind = "portal_remove"           # (live sessions do not notice: it may hold
//! start_s = 5                      # blackholes, whose reconnects it refuses)
//! duration_s = 4
//!
//! [[fault]]                        # the initiator's access revoked (its
//! kind = "access_revoke"           # sessions closed), then restored
//! start_s = 5
//! duration_s = 4
//!
//! [[fault]]                        # the LUN's backing store slow (dm-delay)
//! kind = "slow_store"
//! io_delay_ms = 3000               # added to every read and write, > 0
//! start_s = 5
//! duration_s = 10
//!
//! [expect]                         # default: as the oracle predicts, recovered, nothing lost
//! first_error = "oracle"           # "oracle" | "none" | seconds after the first fault starts
//! tolerance_s = 1.5                # only with a number for first_error
//! max_stall_s = 8                  # optional bounds on the longest stall
//! min_stall_s = 1
//! recovered = true                 # I/O succeeds again after the last fault ends
//! max_recovery_s = 10              # optional bound on that
//! max_lost_writes = 0
//! deadline_s = 50                  # after duration_s: verify + slack; past it "error: probe hung"
//! ```
//!
//! `[initiator.settings]` takes these iscsiadm node keys (iscsid.conf names;
//! the list with types is [`crate::model::settings::SETTINGS`]); numbers as
//! integers (or strings of digits), words compared exactly:
//!
//! | key | value |
//! |---|---|
//! | `node.conn[0].timeo.login_timeout` | 1..60 s |
//! | `node.session.initial_login_retry_max` | 1..64 |
//! | `node.conn[0].timeo.logout_timeout` | 1..25 s |
//! | `node.conn[0].timeo.auth_timeout` | 0..120 s |
//! | `node.session.err_timeo.abort_timeout` | 0..120 s |
//! | `node.session.err_timeo.lu_reset_timeout` | 0..120 s |
//! | `node.session.err_timeo.tgt_reset_timeout` | 0..120 s |
//! | `node.session.err_timeo.host_reset_timeout` | 0..120 s |
//! | `node.session.queue_depth` | 1..1024 |
//! | `node.session.cmds_max` | a power of 2, 2..2048 |
//! | `node.session.iscsi.InitialR2T` | `No`, `Yes` |
//! | `node.session.iscsi.ImmediateData` | `No`, `Yes` |
//! | `node.session.iscsi.FastAbort` | `No`, `Yes` |
//! | `node.session.iscsi.FirstBurstLength` | 512..16777215 |
//! | `node.session.iscsi.MaxBurstLength` | 512..16777215 |
//! | `node.conn[0].iscsi.MaxRecvDataSegmentLength` | 512..16777215 |
//! | `node.conn[0].iscsi.MaxXmitDataSegmentLength` | 0 (the target's) or 512..16777215 |
//! | `node.conn[0].iscsi.HeaderDigest` | `None`, `CRC32C`, `CRC32C,None`, `None,CRC32C` |
//! | `node.conn[0].iscsi.DataDigest` | `None`, `CRC32C`, `CRC32C,None`, `None,CRC32C` |
//! | `node.conn[0].iscsi.IFMarker` | `No`, `Yes` |
//! | `node.conn[0].iscsi.OFMarker` | `No`, `Yes` |
//! | `node.session.auth.authmethod` | `None`, `CHAP` |
//! | `node.session.auth.username` | 1..255 printable ASCII, no spaces; secret: never shown |
//! | `node.session.auth.password` | 1..255 printable ASCII, no spaces; secret: never shown |
//! | `node.session.auth.username_in` | 1..255 printable ASCII, no spaces; secret: never shown |
//! | `node.session.auth.password_in` | 1..255 printable ASCII, no spaces; secret: never shown |
//!
//! A login may wait `login_timeout × (initial_login_retry_max + 1)` <= 135 s
//! (open-iscsi's defaults, 15 × 9), and FirstBurstLength <= MaxBurstLength
//! (defaults 262144, 16776192). The three named timers are refused here
//! (use the `[initiator]` fields); `node.startup`, `node.conn[0].startup`,
//! `iface.*`, `node.session.scan`, `node.session.nr_sessions` and the
//! record's identity (`node.name`, `node.tpgt`, `node.conn[0].address`,
//! `.port`, `node.discovery_*`, `node.transport_name`) are refused with the
//! reason; any other key is unknown (with the closest allowed one as hint).
//!
//! Bounds: `duration_s` <= 36000 (10 h), so every fault time too; a fault,
//! a pulse and the gap between pulses >= 0.1 s; at most 36000 pulses per
//! scenario; `interval_ms` 1..60000; `deadline_s` 4..3600; probe names <= 64
//! characters, the description <= 4096; the file <= 1 MiB, a regular file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

pub mod diag;
pub mod files;
pub mod iscsid_conf;
pub mod sweep;

use crate::model::action::Action;
use crate::model::fault::{self, Value as FaultValue, MAX_PULSES};
use crate::model::multipath::{
    Checker, Grouping, Multipath, NoPathRetry, MAX_FAST_IO_FAIL_TMO_S, MAX_NO_PATH_RETRY,
    MAX_POLLING_INTERVAL_S,
};
use crate::model::names::MAX_PATHS;
use crate::model::settings::{self, SettingType, MAX_TIMER_S};
use crate::model::*;
pub use diag::{Diagnostic, LoadError};

/// Largest LUN a scenario may ask for (sparse file or loop device), MiB.
pub const MAX_LUN_SIZE_MIB: i64 = 1024 * 1024;
/// Largest scenario file read, bytes.
pub const MAX_SCENARIO_BYTES: u64 = 1024 * 1024;
/// Most `[[probe]]` tables.
pub const MAX_PROBES: usize = 16;
/// Longest probe name, characters.
pub const MAX_NAME_LEN: usize = 64;
/// Longest description, characters.
pub const MAX_DESCRIPTION_LEN: usize = 4096;
/// Longest probe interval, ms.
pub const MAX_PROBE_INTERVAL_MS: i64 = 60_000;

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

// ---------------------------------------------------------------------------
// Raw (serde) form: every value we check keeps its span.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    version: Spanned<i64>,
    #[serde(default)]
    description: Option<Spanned<String>>,
    duration_s: Spanned<f64>,
    #[serde(default)]
    long: bool,
    lane: Spanned<RawLane>,
    #[serde(default)]
    initiator: Option<Spanned<RawInitiator>>,
    #[serde(default)]
    probe: Vec<Spanned<RawProbe>>,
    #[serde(default)]
    fault: Vec<Spanned<RawFault>>,
    #[serde(default)]
    expect: Option<Spanned<RawExpect>>,
    #[serde(default)]
    multipath: Option<Spanned<RawMultipath>>,
    /// Read by [`sweep`]; a plain load takes the scenario as written.
    #[serde(default)]
    #[allow(dead_code)]
    sweep: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLane {
    target: Spanned<toml::Value>,
    #[serde(default)]
    lun_size_mib: Option<Spanned<i64>>,
    #[serde(default)]
    mtu: Option<Spanned<i64>>,
    #[serde(default)]
    alone: bool,
    #[serde(default)]
    paths: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMultipath {
    #[serde(default)]
    polling_interval: Option<Spanned<i64>>,
    #[serde(default)]
    path_checker: Option<Spanned<String>>,
    #[serde(default)]
    no_path_retry: Option<Spanned<toml::Value>>,
    #[serde(default)]
    fast_io_fail_tmo: Option<Spanned<toml::Value>>,
    #[serde(default)]
    path_grouping_policy: Option<Spanned<String>>,
    #[serde(default)]
    features: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInitiator {
    #[serde(default)]
    noop_out_interval: Option<Spanned<i64>>,
    #[serde(default)]
    noop_out_timeout: Option<Spanned<i64>>,
    #[serde(default)]
    replacement_timeout: Option<Spanned<i64>>,
    /// A named profile ([`crate::model::profiles`]) or an iscsid.conf beside
    /// the scenario: applied by [`sweep::expand`] under the file's own keys.
    #[serde(default)]
    profile: Option<Spanned<String>>,
    #[serde(default)]
    iscsid_conf: Option<Spanned<String>>,
    #[serde(default)]
    settings: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    kind: Spanned<String>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    interval_ms: Option<Spanned<i64>>,
}

/// A `[[fault]]` table: its keys are checked by the common fields and the
/// kind's own options (see [`crate::model::fault`]).
type RawFault = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// A fault table's value by key.
fn field_of<'f>(f: &'f RawFault, name: &str) -> Option<&'f Spanned<toml::Value>> {
    f.iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    first_error: Option<Spanned<toml::Value>>,
    #[serde(default)]
    tolerance_s: Option<Spanned<f64>>,
    #[serde(default)]
    max_stall_s: Option<Spanned<f64>>,
    #[serde(default)]
    min_stall_s: Option<Spanned<f64>>,
    #[serde(default)]
    recovered: Option<Spanned<bool>>,
    #[serde(default)]
    max_recovery_s: Option<Spanned<f64>>,
    #[serde(default)]
    max_lost_writes: Option<Spanned<i64>>,
    #[serde(default)]
    deadline_s: Option<Spanned<f64>>,
}

// ---------------------------------------------------------------------------
// Parsing and validation.

/// Collects diagnostics against one text.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, span: Range<usize>, field: &str, message: String, hint: Option<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.diags.push(clipped(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            field: field.to_string(),
            message,
            hint,
        }));
    }

    /// A finite number in `(0, max]`.
    fn positive(&mut self, v: &Spanned<f64>, field: &str, max: f64, hint: &str) -> Option<f64> {
        self.bounded(v, field, 0.0, false, max, hint)
    }

    /// A finite number in `[0, max]`.
    fn non_negative(&mut self, v: &Spanned<f64>, field: &str, max: f64, hint: &str) -> Option<f64> {
        self.bounded(v, field, 0.0, true, max, hint)
    }

    /// A finite number from `min` (inclusive or not) to `max`; anything
    /// else (NaN, infinities, out of range) is a diagnostic with the range.
    fn bounded(
        &mut self,
        v: &Spanned<f64>,
        field: &str,
        min: f64,
        min_inclusive: bool,
        max: f64,
        hint: &str,
    ) -> Option<f64> {
        let x = *v.get_ref();
        let above_min = if min_inclusive { x >= min } else { x > min };
        if x.is_finite() && above_min && x <= max {
            return Some(x);
        }
        let message = if !x.is_nan() && !above_min {
            format!(
                "must be {} {}, got {x}",
                if min_inclusive { ">=" } else { ">" },
                fmt_s(min)
            )
        } else {
            format!("must be from {} to {}, got {x}", fmt_s(min), fmt_s(max))
        };
        self.err(v.span(), field, message, Some(hint.to_string()));
        None
    }
}

impl Scenario {
    /// Reads and validates a scenario file. Its name is the file stem.
    ///
    /// Only a regular file of at most [`MAX_SCENARIO_BYTES`] is read: a FIFO,
    /// a device (`/dev/zero`) or a directory is refused at once, never read
    /// (it is opened non-blocking, so a FIFO without a writer does not hang
    /// the open either), and a larger file is refused after reading one
    /// byte more than the cap.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, LoadError> {
        let path = path.as_ref();
        let text = read_capped(path, MAX_SCENARIO_BYTES).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Reads a scenario file and expands its sweep (its `[sweep]` table and
    /// the command line's `axes`) into one scenario per point.
    pub fn load_swept(
        path: impl AsRef<Path>,
        axes: &[sweep::Axis],
    ) -> Result<Vec<Scenario>, LoadError> {
        let path = path.as_ref();
        let text = read_capped(path, MAX_SCENARIO_BYTES).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        sweep::expand(&text, path, axes)
    }

    /// Parses and validates scenario text; `path` names the file in messages
    /// and gives the scenario its name (the file stem).
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Scenario, LoadError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut ctx = Ctx {
            file: &file,
            text,
            diags: Vec::new(),
        };
        let raw: RawScenario = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                ctx.diags.push(serde_diagnostic(&file, text, &e));
                return Err(LoadError::Invalid(ctx.diags));
            }
        };
        match build(&mut ctx, raw, name, file.clone()) {
            Some(s) if ctx.diags.is_empty() => Ok(s),
            _ => {
                let mut diags = ctx.diags;
                diags.sort_by_key(|d| (d.line, d.column));
                Err(LoadError::Invalid(diags))
            }
        }
    }

    /// One run per target, in the order the scenario lists them.
    pub fn expand(&self) -> Vec<Run> {
        self.lane
            .targets
            .iter()
            .map(|&target| Run {
                scenario: self.clone(),
                target,
            })
            .collect()
    }

    /// When the first fault starts, if there is one (seconds into the I/O phase).
    pub fn first_fault_start_s(&self) -> Option<f64> {
        self.faults.first().map(|f| f.start_s)
    }
}

/// Reads the regular file at `path`, at most `cap` bytes, as UTF-8.
pub(crate) fn read_capped(path: &Path, cap: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    // fstat of what was opened, not a second lookup of the path.
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{what}, not a regular file"),
        ));
    }
    let too_big = || {
        Error::new(
            ErrorKind::InvalidData,
            format!("larger than {cap} bytes: not a scenario"),
        )
    };
    if meta.len() > cap {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    // The size may have changed since fstat: never read more than cap + 1.
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

fn build(ctx: &mut Ctx<'_>, raw: RawScenario, name: String, path: String) -> Option<Scenario> {
    if *raw.version.get_ref() != VERSION {
        ctx.err(
            raw.version.span(),
            "version",
            format!("unsupported version {}", raw.version.get_ref()),
            Some(format!("this harness reads version = {VERSION}")),
        );
    }
    let duration_s = ctx.positive(
        &raw.duration_s,
        "duration_s",
        MAX_DURATION_S,
        "the length of the I/O phase in seconds, e.g. 25",
    );
    if let Some(d) = &raw.description {
        if d.get_ref().chars().count() > MAX_DESCRIPTION_LEN {
            ctx.err(
                d.span(),
                "description",
                format!("is longer than {MAX_DESCRIPTION_LEN} characters"),
                Some("describe the scenario in a paragraph".into()),
            );
        }
    }
    let lane = build_lane(ctx, raw.lane.into_inner());
    let initiator = match raw.initiator {
        Some(i) => build_initiator(ctx, i.into_inner()),
        None => Some(Initiator::default()),
    };
    let probes = build_probes(ctx, raw.probe);
    let lane_mtu = lane.as_ref().map(|l| l.mtu);
    let lane_paths = lane.as_ref().map(|l| l.paths);
    let faults = build_faults(ctx, raw.fault, duration_s, lane_mtu, lane_paths);
    let multipath = build_multipath(ctx, raw.multipath, lane_paths);
    let expect = match raw.expect {
        Some(e) => build_expect(ctx, e.into_inner()),
        None => Some(Expect::default()),
    };
    Some(Scenario {
        name,
        path,
        description: raw.description.map(Spanned::into_inner),
        duration_s: duration_s?,
        long: raw.long,
        lane: lane?,
        initiator: initiator?,
        probes: probes?,
        faults: faults?,
        expect: expect?,
        multipath: multipath?,
        point: Vec::new(),
    })
}

/// The value of `all` named by `v`, or a diagnostic at `v` naming the
/// closest of them.
fn one_of<T: Copy>(
    ctx: &mut Ctx<'_>,
    v: &Spanned<String>,
    field: &str,
    all: &[(&str, T)],
    plural: &str,
) -> Option<T> {
    if let Some((_, t)) = all.iter().find(|(name, _)| *name == v.get_ref()) {
        return Some(*t);
    }
    let valid: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
    ctx.err(
        v.span(),
        field,
        format!("unknown value `{}`", shorten(v.get_ref())),
        Some(closest_hint(v.get_ref(), &valid, plural)),
    );
    None
}

/// `[multipath]`: only for a lane of several paths (and such a lane gets
/// multipath-tools' defaults without it).
fn build_multipath(
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
        match one_of(ctx, v, "multipath.path_checker", &all, "path checkers") {
            Some(c) => m.path_checker = c,
            None => ok = false,
        }
    }
    if let Some(v) = &raw.path_grouping_policy {
        let all = [Grouping::Multibus, Grouping::Failover].map(|g| (g.as_str(), g));
        match one_of(ctx, v, "multipath.path_grouping_policy", &all, "policies") {
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

fn build_lane(ctx: &mut Ctx<'_>, raw: RawLane) -> Option<Lane> {
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
                unknown_value(
                    ctx,
                    span,
                    "lane.target",
                    &what,
                    &name,
                    &valid,
                    "target kinds",
                );
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

fn build_initiator(ctx: &mut Ctx<'_>, raw: RawInitiator) -> Option<Initiator> {
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
            let (span, field) = burst_spans
                .first()
                .cloned()
                .unwrap_or((0..0, "initiator.settings".into()));
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
            let (span, field) = login_spans
                .first()
                .cloned()
                .unwrap_or((0..0, "initiator.settings".into()));
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
            Some("remove it; the allowed keys are listed in harness/src/parse/mod.rs".into()),
        );
        return None;
    }
    let Some(def) = settings::setting(k) else {
        let known = settings::known_keys();
        let hint = match known.iter().find(|v| v.eq_ignore_ascii_case(k)) {
            Some(v) => format!("did you mean `{v}`? (case matters)"),
            None => match closest(k, &known) {
                Some(v) => format!("did you mean `{v}`?"),
                None => "not a setting the harness allows; the allowed keys are listed in harness/src/parse/mod.rs (quote dotted keys)".into(),
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
                unknown_value(
                    ctx,
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

fn build_probes(ctx: &mut Ctx<'_>, raw: Vec<Spanned<RawProbe>>) -> Option<Vec<Probe>> {
    if raw.is_empty() {
        return Some(vec![Probe {
            name: "blkprobe".into(),
            kind: ProbeKind::Blkprobe,
            interval_ms: crate::model::scenario::DEFAULT_PROBE_INTERVAL_MS,
        }]);
    }
    let mut ok = true;
    if raw.len() > MAX_PROBES {
        ctx.err(
            raw[MAX_PROBES].span(),
            &format!("probe[{MAX_PROBES}]"),
            format!(
                "{} probes: more than the {MAX_PROBES} a scenario may have",
                raw.len()
            ),
            Some("one probe per kind of I/O is enough".into()),
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
                unknown_value(
                    ctx,
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
            None => Some(10),
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
        match (kind, interval_ms) {
            (Some(kind), Some(interval_ms)) => probes.push(Probe {
                name,
                kind,
                interval_ms,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(probes)
}

/// The fault table's common fields: kind, start_s, duration_s, direction.
const FAULT_FIELDS: &[&str] = &["kind", "start_s", "duration_s", "direction", "path"];

/// A fault table's values for its kind's parser, with spans.
fn fault_values(f: &RawFault) -> BTreeMap<String, (Range<usize>, FaultValue)> {
    f.iter()
        .filter(|(k, _)| !FAULT_FIELDS.contains(&k.get_ref().as_str()))
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
        !FAULT_FIELDS.contains(&k) && !fault::KINDS.iter().any(|r| r.options.contains(&k))
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
    let of_fabric = matches!(
        kind.actions().0,
        Action::Shape { .. }
            | Action::SetPort { .. }
            | Action::SetLink { .. }
            | Action::SetPortMtu { .. }
    );
    let per_portal = matches!(
        kind,
        FaultKind::Reset(_) | FaultKind::PortalRemove(_) | FaultKind::AccessRevoke(_)
    );
    if paths > 1 && per_portal {
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
    if !of_fabric {
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

fn build_faults(
    ctx: &mut Ctx<'_>,
    raw: Vec<Spanned<RawFault>>,
    scenario_duration: Option<f64>,
    // `None`: the lane did not parse (no cross-check); `Some(None)`: default MTU.
    lane_mtu: Option<Option<u32>>,
    lane_paths: Option<u8>,
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
        let fault = Fault {
            index: i,
            kind,
            start_s,
            duration_s,
            path,
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
        if b.0.start_s < a.0.end_s() - 1e-9 && !portal_holds(&a.0, &b.0) {
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
    ok &= check_portal_overlaps(ctx, &faults, &reported);
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
        if FAULT_FIELDS.contains(&key.as_str()) || reg.options.contains(&key.as_str()) {
            continue;
        }
        let owners: Vec<&str> = fault::KINDS
            .iter()
            .filter(|r| r.options.contains(&key.as_str()))
            .map(|r| r.name)
            .collect();
        if owners.is_empty() {
            let mut valid: Vec<&str> = FAULT_FIELDS.to_vec();
            for r in fault::KINDS {
                for o in r.options {
                    if !valid.contains(o) {
                        valid.push(o);
                    }
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

impl Scenario {
    /// Whether a fault needs the LUN on a delayable store (dm-delay).
    pub fn needs_slow_store(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::SlowStore(_)))
    }
}

/// A `portal_remove` may hold blackholes: that is how a scenario makes the
/// session reconnect while the portal is gone (the live session does not
/// notice the removal by itself).
fn portal_holds(portal: &Fault, inner: &Fault) -> bool {
    matches!(portal.kind, FaultKind::PortalRemove(_))
        && matches!(inner.kind, FaultKind::Blackhole(_))
        && inner.start_s >= portal.start_s - 1e-9
        && inner.end_s() <= portal.end_s() + 1e-9
}

/// Any other fault overlapping a `portal_remove` (beyond the neighbours the
/// caller compared, `reported`) is an error.
fn check_portal_overlaps(
    ctx: &mut Ctx<'_>,
    faults: &[(Fault, Range<usize>, Range<usize>)],
    reported: &[(usize, usize)],
) -> bool {
    let mut ok = true;
    for (p, _, _) in faults
        .iter()
        .filter(|f| matches!(f.0.kind, FaultKind::PortalRemove(_)))
    {
        for (f, span, _) in faults {
            let overlaps =
                f.index != p.index && f.start_s < p.end_s() - 1e-9 && p.start_s < f.end_s() - 1e-9;
            let seen =
                reported.contains(&(p.index, f.index)) || reported.contains(&(f.index, p.index));
            if overlaps && !seen && !portal_holds(p, f) {
                ctx.err(
                    span.clone(),
                    &format!("fault[{}].start_s", f.index),
                    format!(
                        "overlaps portal_remove fault[{}] ({} s to {} s) on the lane",
                        p.index,
                        fmt_s(p.start_s),
                        fmt_s(p.end_s())
                    ),
                    Some(
                        "only a blackhole that ends before the portal is restored may overlap it"
                            .into(),
                    ),
                );
                ok = false;
            }
        }
    }
    ok
}

/// `slow_store`'s delay: required, > 0, at most [`MAX_IO_DELAY_MS`].
fn build_expect(ctx: &mut Ctx<'_>, raw: RawExpect) -> Option<Expect> {
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

/// The shortest `[expect] deadline_s`: time to read back a few writes.
const MIN_DEADLINE_S: f64 = 4.0;

// ---------------------------------------------------------------------------
// Helpers for messages.

/// Seconds without a trailing `.0` noise: 30, 4.5.
fn fmt_s(x: f64) -> String {
    let r = (x * 1000.0).round() / 1000.0;
    format!("{r}")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Rejects a value that must be one of `valid` (a kind, a direction, an
/// iscsiadm word): "unknown {what}", hinted with the closest valid one.
fn unknown_value(
    ctx: &mut Ctx<'_>,
    span: Range<usize>,
    field: &str,
    what: &str,
    got: &str,
    valid: &[&str],
    plural: &str,
) {
    let hint = match valid.iter().find(|v| v.eq_ignore_ascii_case(got)) {
        Some(v) => format!("did you mean `{v}`? (case matters)"),
        None => closest_hint(got, valid, plural),
    };
    ctx.err(span, field, format!("unknown {what}"), Some(hint));
}

/// `did you mean `x`?` when one valid name is close, the list otherwise.
fn closest_hint(got: &str, valid: &[&str], what: &str) -> String {
    match closest(got, valid) {
        Some(v) => format!("did you mean `{v}`?"),
        None => format!("valid {what}: {}", valid.join(", ")),
    }
}

/// The valid name closest to `got`, when it is close. Very long input is
/// not compared (the distance is quadratic).
fn closest<'v>(got: &str, valid: &[&'v str]) -> Option<&'v str> {
    if got.len() > MAX_COMPARED_LEN {
        return None;
    }
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(got, v), *v))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, v)| *d <= (v.len() / 3).max(2))
        .map(|(_, v)| v)
}

/// Longest input [`closest`] compares.
const MAX_COMPARED_LEN: usize = 256;

/// Text from the file as shown in a message: at most 80 characters.
fn shorten(s: &str) -> String {
    clip(s, 80)
}

/// A key as written in a dotted path: bare when it can be, quoted otherwise.
fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

/// Turns a toml/serde error into a diagnostic: the span gives line and
/// column, the document's tree gives the field's path, serde's message the
/// unknown key and the valid ones.
fn serde_diagnostic(file: &str, text: &str, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let (line, column) = line_col(text, span.start);
    let message = e.message().trim().to_string();
    let ticks = backticked(&message);
    let mut field = field_at(text, span.start);
    let mut hint = None;
    if message.starts_with("unknown field") {
        if let Some((got, valid)) = ticks.split_first() {
            let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
            hint = Some(if valid.is_empty() {
                "this table takes no keys".to_string()
            } else {
                closest_hint(got, &valid, "keys")
            });
        }
    } else if message.starts_with("missing field") {
        if let Some(missing) = ticks.first() {
            // The span is the table's: name the table, not a key inside it.
            field = table_with_span(text, &span).unwrap_or_default();
            field = if field.is_empty() {
                missing.clone()
            } else {
                format!("{field}.{missing}")
            };
            hint = Some(format!("add `{missing} = ...`"));
        }
    } else if message.starts_with("invalid type") {
        hint = Some(match field.rsplit('.').next().unwrap_or("") {
            f if f.ends_with("_s") => "a number of seconds".to_string(),
            f if f.starts_with("noop_out") || f == "replacement_timeout" => {
                "whole seconds, e.g. 5".to_string()
            }
            _ => "see the schema in harness/src/parse/mod.rs".to_string(),
        });
    }
    if field.is_empty() {
        field = field_on_line(text, span.start);
    }
    clipped(Diagnostic {
        file: file.to_string(),
        line,
        column,
        field,
        message,
        hint,
    })
}

/// A diagnostic of bounded size, whatever the input echoed into it: the
/// field at most [`MAX_FIELD_LEN`] characters, message and hint at most
/// [`MAX_MESSAGE_LEN`].
fn clipped(mut d: Diagnostic) -> Diagnostic {
    d.field = clip(&d.field, MAX_FIELD_LEN);
    d.message = clip(&d.message, MAX_MESSAGE_LEN);
    d.hint = d.hint.map(|h| clip(&h, MAX_MESSAGE_LEN));
    d
}

const MAX_FIELD_LEN: usize = 200;
const MAX_MESSAGE_LEN: usize = 1000;

/// `s` cut to `max` characters, with `...` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}...")
    }
}

/// For text that does not parse into a tree: the table header or key
/// written on the error's line, else `(document)`.
fn field_on_line(text: &str, offset: usize) -> String {
    let (line, _) = line_col(text, offset);
    let src = text.lines().nth(line - 1).unwrap_or("").trim();
    let name = if let Some(rest) = src.strip_prefix('[') {
        rest.trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim()
    } else if let Some((key, _)) = src.split_once('=') {
        key.trim()
    } else {
        ""
    };
    if name.is_empty() || name.starts_with('#') {
        "(document)".to_string()
    } else {
        name.to_string()
    }
}

/// The words between backticks in a message.
fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The dotted path of the innermost key or value containing `offset`, from
/// the document's own spans (also on a document that does not fully parse).
fn field_at(text: &str, offset: usize) -> String {
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let mut path = String::new();
    walk_table(doc.get_ref(), offset, &mut path);
    path
}

fn walk_table(table: &toml::de::DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table {
        let ks = key.span();
        let vs = value.span();
        let in_key = ks.start <= offset && offset < ks.end.max(ks.start + 1);
        let in_value = vs.start <= offset && offset < vs.end.max(vs.start + 1);
        if in_key || in_value {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&quote_key(key.get_ref()));
            if in_value {
                walk_value(value.get_ref(), offset, path);
            }
            return true;
        }
    }
    // Tables from `[header]`s may have spans that do not cover their keys:
    // look inside them too.
    for (key, value) in table {
        let mut sub = String::new();
        if walk_value(value.get_ref(), offset, &mut sub) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&quote_key(key.get_ref()));
            path.push_str(&sub);
            return true;
        }
    }
    false
}

/// The path of the table (or array item) whose span is exactly `span`.
fn table_with_span(text: &str, span: &Range<usize>) -> Option<String> {
    fn search(value: &toml::de::DeValue<'_>, span: &Range<usize>, path: String) -> Option<String> {
        match value {
            toml::de::DeValue::Table(t) => t.iter().find_map(|(k, v)| {
                let p = if path.is_empty() {
                    quote_key(k.get_ref())
                } else {
                    format!("{path}.{}", quote_key(k.get_ref()))
                };
                if v.span() == *span && v.get_ref().is_table() {
                    return Some(p);
                }
                search(v.get_ref(), span, p)
            }),
            toml::de::DeValue::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                let p = format!("{path}[{i}]");
                if v.span() == *span && v.get_ref().is_table() {
                    return Some(p);
                }
                search(v.get_ref(), span, p)
            }),
            _ => None,
        }
    }
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let root = toml::de::DeValue::Table(doc.into_inner());
    search(&root, span, String::new())
}

/// Appends `[i]` / `.key` segments below a value; true when it found one.
fn walk_value(value: &toml::de::DeValue<'_>, offset: usize, path: &mut String) -> bool {
    match value {
        toml::de::DeValue::Table(t) => {
            let mut sub = String::new();
            if walk_table(t, offset, &mut sub) {
                path.push('.');
                path.push_str(&sub);
                true
            } else {
                false
            }
        }
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let s = item.span();
                let mut sub = String::new();
                let inside = s.start <= offset && offset < s.end.max(s.start + 1);
                if inside || walk_value(item.get_ref(), offset, &mut sub) {
                    if inside {
                        sub.clear();
                        walk_value(item.get_ref(), offset, &mut sub);
                    }
                    path.push_str(&format!("[{i}]"));
                    path.push_str(&sub);
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
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

    fn err(text: &str) -> Vec<Diagnostic> {
        match Scenario::parse(text, "scenarios/x.toml") {
            Ok(s) => panic!("expected an error, parsed {s:?}"),
            Err(e) => e.diagnostics().to_vec(),
        }
    }

    fn one(text: &str) -> Diagnostic {
        let d = err(text);
        assert_eq!(d.len(), 1, "{d:#?}");
        d.into_iter().next().unwrap()
    }

    /// GOOD on two paths under multipath, with `extra` appended.
    fn two_paths(extra: &str) -> String {
        format!(
            "{}{extra}",
            GOOD.replace("lun_size_mib = 32", "lun_size_mib = 32\npaths = 2")
        )
    }

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
    fn unknown_key_names_the_closest() {
        let d = one(&GOOD.replace("duration_s = 4\n", "duraton_s = 4\n"));
        assert_eq!(d.field, "fault[0].duraton_s");
        assert_eq!(d.line, 26);
        assert_eq!(d.column, 1);
        assert_eq!(d.hint.as_deref(), Some("did you mean `duration_s`?"));
    }

    #[test]
    fn unknown_top_level_key() {
        let d = one("version = 1\nduration_s = 5\ndescripton = \"x\"\n[lane]\ntarget = \"tgt\"\n");
        assert_eq!((d.line, d.column), (3, 1));
        assert_eq!(d.field, "descripton");
        assert_eq!(d.hint.as_deref(), Some("did you mean `description`?"));
    }

    #[test]
    fn renders_file_line_column_field_and_hint() {
        let d = one(&GOOD.replace("duration_s = 2.5", "duration_s = 0"));
        assert_eq!(
            d.to_string(),
            "scenarios/x.toml:32:14: fault[1].duration_s: must be > 0, got 0 (hint: how long the fault lasts, in seconds)"
        );
    }

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
    fn missing_field_and_bad_version() {
        let d = one("version = 1\n[lane]\ntarget = \"tgt\"\n");
        assert_eq!(d.field, "duration_s");
        let d = one("[lane]\ntarget = \"tgt\"\n");
        assert_eq!(d.field, "version");
        let d = one(&GOOD.replace("start_s = 12\n", ""));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].start_s", 23));
        let d = one(&GOOD.replace("target = [\"tgt\", \"lio\"]\n", ""));
        assert_eq!((d.field.as_str(), d.line), ("lane.target", 6));
        assert!(d.message.contains("missing field"));
        let d = one(&GOOD.replace("version = 1", "version = 2"));
        assert_eq!((d.field.as_str(), d.line, d.column), ("version", 2, 11));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let d = one("version = 1\nduration_s = \n");
        assert_eq!(d.line, 2);
        let d = one("version = 1\n[lane\n");
        assert_eq!(d.line, 2);
    }

    #[test]
    fn several_errors_reported_together() {
        let d = err(&GOOD
            .replace("interval_ms = 10", "interval_ms = 0")
            .replace("lun_size_mib = 32", "lun_size_mib = 0"));
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["lane.lun_size_mib", "probe[0].interval_ms"]);
    }

    #[test]
    fn a_huge_lun_is_refused_not_overflowed() {
        let huge = one(&GOOD.replace("lun_size_mib = 32", "lun_size_mib = 9223372036854775807"));
        assert_eq!(huge.field, "lane.lun_size_mib");
        assert!(huge.message.contains("from 1 to 1048576"), "{huge}");
    }

    /// GOOD's first fault (line 22) replaced by `fault`.
    fn with_fault(fault: &str) -> String {
        GOOD.replace(
            "kind = \"blackhole\"\nstart_s = 12\nduration_s = 4\n",
            &format!("{fault}start_s = 12\nduration_s = 4\n"),
        )
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

    /// GOOD with its InitialR2T setting replaced by `line`.
    fn with_setting(line: &str) -> String {
        GOOD.replace("\"node.session.iscsi.InitialR2T\" = \"No\"", line)
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
        let shown = s.initiator.shown_settings();
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

    #[test]
    fn the_schema_lists_every_allowed_setting() {
        let doc = include_str!("mod.rs");
        let doc = &doc[..doc.find("\nuse ").unwrap()];
        for k in settings::SETTINGS {
            assert!(
                doc.contains(&format!("| `{}` |", k.key)),
                "{} missing from the schema",
                k.key
            );
        }
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 5), (1, 1));
    }

    const NEW_KINDS_HEAD: &str = "version = 1\nduration_s = 60\n[lane]\ntarget = \"tgt\"\n";

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
