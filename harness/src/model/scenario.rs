//! The typed scenario: what a scenario file says, after validation
//! ([`crate::parse`] builds it). Pure data.

use std::collections::BTreeMap;
use std::fmt;

pub use crate::model::fault::{Fault, FaultKind, Pulse};

/// The only scenario format version this harness reads.
pub const VERSION: i64 = 1;

/// open-iscsi's defaults (iscsid.conf).
pub const DEFAULT_NOOP_OUT_INTERVAL: u32 = 5;
pub const DEFAULT_NOOP_OUT_TIMEOUT: u32 = 5;
pub const DEFAULT_REPLACEMENT_TIMEOUT: i64 = 120;
pub const DEFAULT_ABORT_TIMEOUT: u32 = 15;

pub use crate::model::settings::{
    DEFAULT_LOGIN_TIMEOUT, KEY_ABORT_TIMEOUT, KEY_INITIAL_LOGIN_RETRY_MAX, KEY_LOGIN_TIMEOUT,
    KEY_NOOP_OUT_INTERVAL, KEY_NOOP_OUT_TIMEOUT, KEY_REPLACEMENT_TIMEOUT,
};

/// Upper bound of `slow_store`'s `io_delay_ms` (dm-delay takes any, but a
/// minute per I/O is no longer "slow").
pub const MAX_IO_DELAY_MS: f64 = 60_000.0;

/// Longest I/O phase (`duration_s`), and so the latest any fault starts or
/// ends: ten hours (a 1 s flap over it is [`crate::model::fault::MAX_PULSES`]).
pub const MAX_DURATION_S: f64 = 36_000.0;

/// Longest `[expect] deadline_s`: an hour to verify and end.
pub const MAX_DEADLINE_S: f64 = 3600.0;

/// Link MTUs a scenario may set: IPv4's minimum to a veth's maximum.
pub const MTU_RANGE: std::ops::RangeInclusive<i64> = 576..=65535;

// ---------------------------------------------------------------------------
// The typed scenario.

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The file stem.
    pub name: String,
    /// The path the scenario was read from (as given), for messages.
    pub path: String,
    pub description: Option<String>,
    /// Length of the I/O phase: faults are scheduled inside it.
    pub duration_s: f64,
    /// A long run (minutes): only in a `run --long`, not the default suite.
    pub long: bool,
    pub lane: Lane,
    pub initiator: Initiator,
    pub probes: Vec<Probe>,
    /// Sorted by start; never overlapping.
    pub faults: Vec<Fault>,
    pub expect: Expect,
    /// dm-multipath's settings, for a lane of several paths.
    pub multipath: Option<crate::model::multipath::Multipath>,
    /// A sweep's point: (axis key, value) in axis order; empty otherwise.
    pub point: Vec<(String, String)>,
    /// What of the wire the switch captures.
    pub capture: Capture,
    /// The initiator hosts (`[[host]]`; one by default): each its own
    /// initiator name, lane, session and disk of the one LUN.
    pub hosts: Vec<Host>,
    /// SCSI-3 persistent-reservation fencing between the hosts.
    pub fencing: Option<Fencing>,
}

/// `[fencing]`: fence_scsi's protocol. Every host registers a key of its
/// own, the victim (the host active first) holds a Write Exclusive,
/// Registrants Only reservation, and on its trigger the survivor removes
/// the victim's key with PREEMPT AND ABORT: from then on the target
/// refuses the victim's writes with RESERVATION CONFLICT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fencing {
    pub survivor: u8,
    pub victim: u8,
    pub trigger: FenceTrigger,
}

/// When the survivor fences the victim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FenceTrigger {
    /// At this many seconds from the start of the I/O phase (`at_s`).
    At(f64),
    /// Once the victim's probe reports an operation blocked for this many
    /// seconds (`after_victim_stall_s`), as a cluster manager's monitor
    /// would: probes report a stall about once a second, so the fence
    /// comes up to a second after the threshold.
    VictimStalled(f64),
}

impl Fencing {
    /// Host `host`'s reservation key (`ic` and the host's number).
    pub fn key(host: u8) -> u64 {
        0x6963_0000_0000_0001 + u64::from(host)
    }
}

/// One initiator host of a scenario (`[[host]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name in reports (`host0`, `host1`, ... by default).
    pub name: String,
}

/// The largest number of `[[host]]`s.
pub const MAX_HOSTS: usize = 2;

/// `[capture]`: the switch's packet capture of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    pub mode: CaptureMode,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// The capture file's size cap, MiB.
    pub max_mib: u32,
}

/// Which frames go into the capture file (and the history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMode {
    /// No capture.
    Off,
    /// A window around each fault (from [`CAPTURE_BEFORE_S`] before it
    /// begins to [`CAPTURE_AFTER_S`] after it ends), and every connection's
    /// setup and end.
    Faults,
    /// The whole run.
    All,
}

impl CaptureMode {
    pub const ALL: [CaptureMode; 3] = [CaptureMode::Off, CaptureMode::Faults, CaptureMode::All];

    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMode::Off => "off",
            CaptureMode::Faults => "faults",
            CaptureMode::All => "all",
        }
    }
}

/// The capture window's start before a fault begins, seconds.
pub const CAPTURE_BEFORE_S: f64 = 3.0;
/// The capture window's end after a fault ends, seconds (recovery: a
/// relogin after `replacement_timeout`'s default of 120 s is outside it;
/// `mode = "all"` sees it).
pub const CAPTURE_AFTER_S: f64 = 15.0;
/// The largest snap length (a segmentation-offload frame is up to 64 KiB).
pub const MAX_SNAPLEN: u32 = 65535;
/// The smallest snap length: Ethernet, IPv4 and TCP headers with options,
/// and an iSCSI basic header.
pub const MIN_SNAPLEN: u32 = 128;
pub const MAX_CAPTURE_MIB: u32 = 1024;

impl Default for Capture {
    fn default() -> Capture {
        Capture {
            mode: CaptureMode::Faults,
            snaplen: MAX_SNAPLEN,
            max_mib: 64,
        }
    }
}

impl Scenario {
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

    /// The host whose probe a run's figures of time come from: the one the
    /// first fault breaks (host 0 without faults).
    pub fn faulted_host(&self) -> u8 {
        self.faults.first().map_or(0, |f| f.host)
    }

    /// The number the switch's capture (and the history) gives path `p` of
    /// host `host`: each host's paths follow the previous host's.
    pub fn wire_path(&self, host: u8, p: u8) -> u8 {
        host * self.lane.paths + p
    }

    /// The host of the probe named `probe`, if the scenario has it.
    pub fn probe_host(&self, probe: &str) -> Option<u8> {
        self.probes.iter().find(|p| p.name == probe).map(|p| p.host)
    }

    /// When the first fault starts, if there is one (seconds into the I/O phase).
    pub fn first_fault_start_s(&self) -> Option<f64> {
        self.faults.iter().map(|f| f.start_s).reduce(f64::min)
    }

    /// Seconds after the probe's Start by which its verify pass stops
    /// retrying (the probe's `--verify-until-s`). The probe and the harness
    /// count from the same instant, the Start event, so a probe blocked
    /// past its I/O phase cannot verify into the harness's hung deadline.
    pub fn probe_verify_until_s(&self) -> f64 {
        self.duration_s + self.expect.verify_deadline_s()
    }

    /// Seconds after the probe's Start past which the harness calls it
    /// hung: [`Expect::end_margin_s`] after [`Self::probe_verify_until_s`].
    pub fn probe_hung_after_s(&self) -> f64 {
        self.duration_s + self.expect.deadline_s
    }

    /// Whether a fault needs the LUN on a delayable store (dm-delay).
    pub fn needs_slow_store(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::SlowStore(_)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    Tgt,
    Lio,
}

impl TargetKind {
    pub const ALL: [TargetKind; 2] = [TargetKind::Tgt, TargetKind::Lio];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Tgt => "tgt",
            TargetKind::Lio => "lio",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// One run per target, in the order written, without duplicates.
    pub targets: Vec<TargetKind>,
    pub lun_size_mib: u64,
    /// Link MTU of both ends of the lane; `None`: the kernel's default.
    pub mtu: Option<u32>,
    /// With `--jobs`, run with no other run beside it (it changes something
    /// host-wide, or its timing must not share the CPU).
    pub alone: bool,
    /// Paths between the initiator and the target (1..=4): each its own
    /// switch, subnet, portal and session; more than one makes a
    /// dm-multipath map over them (`[multipath]`).
    pub paths: u8,
}

/// Initiator settings, validated as open-iscsi would take them. Its `Debug`
/// redacts secrets.
#[derive(Clone, PartialEq)]
pub struct Initiator {
    /// Seconds; 0 with `noop_out_timeout == 0` turns NOP-Outs off.
    pub noop_out_interval: u32,
    pub noop_out_timeout: u32,
    /// Seconds; 0 fails I/O at once, < 0 queues it until relogin.
    pub replacement_timeout: i64,
    /// Other node settings, key -> value, passed to iscsiadm verbatim: only
    /// keys of the allow-list ([`crate::model::settings`]), values checked.
    pub extra: BTreeMap<String, String>,
}

impl Default for Initiator {
    fn default() -> Self {
        Initiator {
            noop_out_interval: DEFAULT_NOOP_OUT_INTERVAL,
            noop_out_timeout: DEFAULT_NOOP_OUT_TIMEOUT,
            replacement_timeout: DEFAULT_REPLACEMENT_TIMEOUT,
            extra: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: BTreeMap<&str, &str> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), crate::model::settings::redacted(k, v)))
            .collect();
        f.debug_struct("Initiator")
            .field("noop_out_interval", &self.noop_out_interval)
            .field("noop_out_timeout", &self.noop_out_timeout)
            .field("replacement_timeout", &self.replacement_timeout)
            .field("extra", &extra)
            .finish()
    }
}

impl Initiator {
    /// The (iscsiadm node key, value) pairs to apply to the node record
    /// (`iscsiadm -m node -o update -n KEY -v VALUE`): the three named
    /// settings first, then the extra ones in key order.
    pub fn iscsiadm_settings(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (
                KEY_NOOP_OUT_INTERVAL.to_string(),
                self.noop_out_interval.to_string(),
            ),
            (
                KEY_NOOP_OUT_TIMEOUT.to_string(),
                self.noop_out_timeout.to_string(),
            ),
            (
                KEY_REPLACEMENT_TIMEOUT.to_string(),
                self.replacement_timeout.to_string(),
            ),
        ];
        out.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    pub fn nops_enabled(&self) -> bool {
        self.noop_out_interval > 0 && self.noop_out_timeout > 0
    }

    /// `node.conn[0].timeo.login_timeout` if given, else open-iscsi's default.
    pub fn login_timeout(&self) -> u32 {
        self.extra_u32(KEY_LOGIN_TIMEOUT)
            .unwrap_or(DEFAULT_LOGIN_TIMEOUT)
    }

    /// `node.session.err_timeo.abort_timeout` if given, else the default.
    pub fn abort_timeout(&self) -> u32 {
        self.extra_u32(KEY_ABORT_TIMEOUT)
            .unwrap_or(DEFAULT_ABORT_TIMEOUT)
    }

    /// `node.session.initial_login_retry_max` if given, else the default.
    pub fn initial_login_retry_max(&self) -> u32 {
        self.extra_u32(KEY_INITIAL_LOGIN_RETRY_MAX)
            .unwrap_or(crate::model::settings::DEFAULT_INITIAL_LOGIN_RETRY_MAX)
    }

    /// Longest a login (iscsiadm's, at setup) may wait, in seconds: at most
    /// [`crate::model::settings::MAX_LOGIN_WAIT_S`] for a parsed scenario.
    pub fn login_wait_s(&self) -> u64 {
        crate::model::settings::login_wait_s(self.login_timeout(), self.initial_login_retry_max())
    }

    /// The settings as they may be shown (reports, messages): secrets
    /// redacted.
    pub fn redacted_settings(&self) -> Vec<(String, String)> {
        self.iscsiadm_settings()
            .into_iter()
            .map(|(k, v)| {
                let v = crate::model::settings::redacted(&k, &v).to_string();
                (k, v)
            })
            .collect()
    }

    fn extra_u32(&self, key: &str) -> Option<u32> {
        self.extra.get(key).and_then(|v| v.trim().parse().ok())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Blkprobe,
    /// A filesystem on the disk and a file workload (guest-probes' fsprobe).
    Fs,
    /// The user's command, run again and again (guest-probes' cmdprobe).
    Command,
    /// The user's fio job, its I/O imported (guest-probes' fioprobe).
    Fio,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 4] = [
        ProbeKind::Blkprobe,
        ProbeKind::Fs,
        ProbeKind::Command,
        ProbeKind::Fio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Blkprobe => "blkprobe",
            ProbeKind::Fs => "fs",
            ProbeKind::Command => "command",
            ProbeKind::Fio => "fio",
        }
    }

    /// The period when the scenario names none: blkprobe's
    /// [`DEFAULT_PROBE_INTERVAL_MS`]; a file every 100 ms; a command a
    /// second; a fio job's I/O as blkprobe's (fio keeps its job's own
    /// pace: the interval only tells the oracle how long the link can be
    /// quiet).
    pub fn default_interval_ms(self) -> u64 {
        match self {
            ProbeKind::Blkprobe | ProbeKind::Fio => DEFAULT_PROBE_INTERVAL_MS,
            ProbeKind::Fs => 100,
            ProbeKind::Command => 1000,
        }
    }

    /// The probe program (argv[0] of the probe binary) that does this kind.
    pub fn program(self) -> &'static str {
        match self {
            ProbeKind::Blkprobe => "blkprobe",
            ProbeKind::Fs => "fsprobe",
            ProbeKind::Command => "cmdprobe",
            ProbeKind::Fio => "fioprobe",
        }
    }
}

/// The filesystems the fs probe makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ext4,
    Xfs,
}

impl FsKind {
    pub const ALL: [FsKind; 2] = [FsKind::Ext4, FsKind::Xfs];

    pub fn as_str(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
        }
    }

    /// What the host needs to make, mount and repair it.
    pub fn needs(self) -> &'static [crate::model::needs::Requirement] {
        match self {
            FsKind::Ext4 => crate::model::needs::EXT4,
            FsKind::Xfs => crate::model::needs::XFS,
        }
    }

    /// The smallest LUN mkfs accepts (xfsprogs refuses under 300 MiB).
    pub fn min_lun_mib(self) -> u64 {
        match self {
            FsKind::Ext4 => 16,
            FsKind::Xfs => 300,
        }
    }
}

/// What an fs probe makes and mounts.
#[derive(Debug, Clone, PartialEq)]
pub struct FsSpec {
    pub fs: FsKind,
    /// `mount -o` options, e.g. `errors=remount-ro`.
    pub mount_options: Option<String>,
    /// XFS's `error/metadata/EIO/max_retries` (None: the kernel's, -1).
    pub xfs_eio_max_retries: Option<i64>,
}

/// The probe's period when a scenario names none: a 4 KiB write and read
/// every 20 ms. Each lane's I/O costs CPU in proportion (in the TCG lab
/// about 0.7 of a vCPU per lane at 10 ms, the iSCSI stack and the target
/// emulated), and lanes side by side share it; 20 ms still resolves a stall
/// to well under the oracle's tightest window (0.5 s).
pub const DEFAULT_PROBE_INTERVAL_MS: u64 = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Unique within the scenario; the `probe` field of history entries.
    pub name: String,
    pub kind: ProbeKind,
    pub interval_ms: u64,
    /// The blocks the probe writes in turn (a hot set, each rewritten with
    /// a newer version every `blocks` writes); `None`: the whole LUN.
    pub blocks: Option<u64>,
    /// Writers at once, each on its own share of the blocks: up to this
    /// many operations in flight.
    pub depth: u64,
    /// The filesystem an fs probe (or a command probe) makes.
    pub fs: Option<FsSpec>,
    /// A command probe's command.
    pub command: Option<CommandSpec>,
    /// A fio probe's job.
    pub fio: Option<FioSpec>,
    /// The host whose disk it does its I/O on.
    pub host: u8,
    /// Seconds after the run's start (the first probe's) that its I/O
    /// begins: a second host taking over a disk.
    pub start_s: f64,
}

/// What a fio probe runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FioSpec {
    /// The job file's text; the probe puts its own defaults before it
    /// (`filename=${ISCSI_CHAOS_DEVICE}` or `directory=${ISCSI_CHAOS_MOUNT}`,
    /// the latency log, `continue_on_error=all`, `time_based` for the run).
    pub job: String,
    /// How long fio may run past the scenario's duration before it is killed.
    pub timeout_s: f64,
}

/// What a command probe runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    /// Run by `sh -c`, with `ISCSI_CHAOS_DEVICE` and `ISCSI_CHAOS_MOUNT`.
    pub command: String,
    /// Bound of one run: past it, it is killed and counts as failed.
    pub timeout_s: f64,
}

/// The largest `[[probe]] blocks` (blkprobe's own bound).
pub const MAX_PROBE_BLOCKS: u64 = 1 << 24;

/// The largest `[[probe]] depth` (blkprobe's own bound).
pub const MAX_PROBE_DEPTH: u64 = 64;

/// Which packets a directional fault affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Both,
    /// Initiator -> target packets.
    ToTarget,
    /// Target -> initiator packets.
    ToInitiator,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::ToTarget => "to_target",
            Direction::ToInitiator => "to_initiator",
        }
    }

    /// The ways of the wire it covers.
    pub fn dirs(self) -> Vec<iscsi_chaos_formats::wire::Dir> {
        use iscsi_chaos_formats::wire::Dir;
        match self {
            Direction::Both => vec![Dir::ToTarget, Dir::ToInitiator],
            Direction::ToTarget => vec![Dir::ToTarget],
            Direction::ToInitiator => vec![Dir::ToInitiator],
        }
    }
}

/// netem impairments of a `netem` fault; zero means "not set".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NetemSpec {
    pub delay_ms: f64,
    pub jitter_ms: f64,
    pub loss_pct: f64,
    pub duplicate_pct: f64,
    pub corrupt_pct: f64,
    pub reorder_pct: f64,
    /// netem's rate emulation; `None`: unlimited.
    pub rate_kbit: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FirstErrorExpect {
    /// As the oracle predicts (the default).
    Oracle,
    /// No I/O error at all.
    None,
    /// An error this many seconds after the first fault started.
    At(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub first_error: FirstErrorExpect,
    /// Tolerance for `FirstErrorExpect::At`.
    pub tolerance_s: f64,
    pub max_stall_s: Option<f64>,
    pub min_stall_s: Option<f64>,
    /// I/O must succeed again after the last fault ends.
    pub recovered: bool,
    pub max_recovery_s: Option<f64>,
    pub max_lost_writes: u64,
    /// With several hosts: whether blocks written by both after the later
    /// one began (split brain) must be seen (`Some(true)`), must not
    /// (`Some(false)`), or are only reported (`None`).
    pub split_brain: Option<bool>,
    /// Seconds after the I/O phase by which the probe must have verified its
    /// writes and ended; past it the run is "error: probe hung".
    pub deadline_s: f64,
}

/// Default of `[expect] deadline_s`: 30 s to verify, 20 s of slack.
pub const DEFAULT_DEADLINE_S: f64 = 50.0;

impl Expect {
    /// The part of [`Expect::deadline_s`] the probe may spend verifying; the
    /// rest ([`Expect::end_margin_s`]) is slack for it to end.
    pub fn verify_deadline_s(&self) -> f64 {
        self.deadline_s - self.end_margin_s()
    }

    /// Slack between the end of the probe's verify pass and the harness's
    /// hung deadline: half of `deadline_s`, at most 20 s (at least 2 s, as
    /// `deadline_s` is at least 4 s).
    pub fn end_margin_s(&self) -> f64 {
        (self.deadline_s / 2.0).min(20.0)
    }
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            first_error: FirstErrorExpect::Oracle,
            tolerance_s: 1.5,
            max_stall_s: None,
            min_stall_s: None,
            recovered: true,
            max_recovery_s: None,
            max_lost_writes: 0,
            split_brain: None,
            deadline_s: DEFAULT_DEADLINE_S,
        }
    }
}

/// One run of a scenario against one target (a scenario lists one or more).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub scenario: Scenario,
    pub target: TargetKind,
}

impl Run {
    /// What this run's target cannot do that its scenario needs (the run is
    /// skipped with it, not failed and not faked).
    pub fn unsupported(&self) -> Option<&'static str> {
        match (self.target, &self.scenario.fencing) {
            (TargetKind::Tgt, Some(_)) => Some(
                "tgt has no PERSISTENT RESERVE OUT PREEMPT AND ABORT (and refuses APTPL): fence_scsi's protocol cannot run against it",
            ),
            _ => None,
        }
    }

    /// `name` when the scenario has a single target, `name@target` otherwise;
    /// unique across the expansion, usable in file names.
    pub fn id(&self) -> String {
        if self.scenario.lane.targets.len() > 1 {
            format!("{}@{}", self.scenario.name, self.target)
        } else {
            self.scenario.name.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_stops_verifying_a_margin_before_the_harness_calls_it_hung() {
        let mut s = crate::model::Scenario::parse(
            "version = 1\nduration_s = 60\n[lane]\ntarget = \"tgt\"\n[[probe]]\nkind = \"blkprobe\"\n",
            "t.toml",
        )
        .unwrap();
        // The defaults: verify until +90 s from the probe's Start, hung at +110 s.
        assert_eq!(
            (s.probe_verify_until_s(), s.probe_hung_after_s()),
            (90.0, 110.0)
        );
        for duration_s in [1.0, 60.0, MAX_DURATION_S] {
            for deadline_s in [4.0, 10.0, 50.0, 123.4, MAX_DEADLINE_S] {
                s.duration_s = duration_s;
                s.expect.deadline_s = deadline_s;
                let margin = s.probe_hung_after_s() - s.probe_verify_until_s();
                assert!((margin - s.expect.end_margin_s()).abs() < 1e-9);
                assert!(
                    (2.0..=20.0).contains(&s.expect.end_margin_s()),
                    "{deadline_s}"
                );
                assert!(margin >= 2.0 - 1e-9, "{duration_s} {deadline_s}");
            }
        }
    }
}
