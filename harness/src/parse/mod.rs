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

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

pub mod diag;
mod expect;
mod faults;
pub mod files;
mod initiator;
mod lane;
mod probes;
mod raw;
pub mod reference;
pub mod schema;
pub mod sweep;

use crate::model::*;
use raw::RawScenario;

pub use diag::{line_col, Diagnostic, LoadError};
pub use files::MAX_SCENARIO_BYTES;
pub use schema::{
    MAX_DESCRIPTION_LEN, MAX_LUN_SIZE_MIB, MAX_NAME_LEN, MAX_PROBES, MAX_PROBE_INTERVAL_MS,
};
pub use sweep::iscsid_conf;

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
        self.diags.push(diag::clipped(Diagnostic::new(
            self.file, line, column, field, message, hint,
        )));
    }

    /// Rejects a value that must be one of `valid` (a kind, a direction, an
    /// iscsiadm word): "unknown {what}", hinted with the closest valid one.
    fn unknown(
        &mut self,
        span: Range<usize>,
        field: &str,
        what: &str,
        got: &str,
        valid: &[&str],
        plural: &str,
    ) {
        let hint = diag::unknown_hint(got, valid, plural);
        self.err(span, field, format!("unknown {what}"), Some(hint));
    }

    /// The value of `all` named by `v`, or a diagnostic at `v` naming the
    /// closest of them.
    fn one_of<T: Copy>(
        &mut self,
        v: &Spanned<String>,
        field: &str,
        all: &[(&str, T)],
        plural: &str,
    ) -> Option<T> {
        if let Some((_, t)) = all.iter().find(|(name, _)| *name == v.get_ref()) {
            return Some(*t);
        }
        let valid: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
        self.err(
            v.span(),
            field,
            format!("unknown value `{}`", diag::shorten(v.get_ref())),
            Some(diag::closest_hint(v.get_ref(), &valid, plural)),
        );
        None
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
                diag::fmt_s(min)
            )
        } else {
            format!(
                "must be from {} to {}, got {x}",
                diag::fmt_s(min),
                diag::fmt_s(max)
            )
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
        Scenario::parse(&files::read_scenario(path)?, path)
    }

    /// Reads a scenario file and expands its sweep (its `[sweep]` table and
    /// the command line's `axes`) into one scenario per point.
    pub fn load_swept(
        path: impl AsRef<Path>,
        axes: &[sweep::Axis],
    ) -> Result<Vec<Scenario>, LoadError> {
        let path = path.as_ref();
        Scenario::parse_swept(&files::read_scenario(path)?, path, axes)
    }

    /// Expands the sweep of scenario text read from `path`, with the
    /// iscsid.conf it names (`[initiator] iscsid_conf`) read here.
    pub fn parse_swept(
        text: &str,
        path: impl AsRef<Path>,
        axes: &[sweep::Axis],
    ) -> Result<Vec<Scenario>, LoadError> {
        let path = path.as_ref();
        let conf = files::named_conf(path, text);
        sweep::expand(text, path, axes, conf.as_ref())
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
                ctx.diags.push(diag::serde_diagnostic(&file, text, &e));
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
    let lane = lane::build_lane(ctx, raw.lane.into_inner());
    let initiator = match raw.initiator {
        Some(i) => initiator::build_initiator(ctx, i.into_inner()),
        None => Some(Initiator::default()),
    };
    let probes = probes::build_probes(ctx, raw.probe);
    let lane_mtu = lane.as_ref().map(|l| l.mtu);
    let lane_paths = lane.as_ref().map(|l| l.paths);
    let faults = faults::build_faults(ctx, raw.fault, duration_s, lane_mtu, lane_paths);
    let multipath = lane::build_multipath(ctx, raw.multipath, lane_paths);
    let expect = match raw.expect {
        Some(e) => expect::build_expect(ctx, e.into_inner()),
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

#[cfg(test)]
mod tests;
