//! `report.json`: one entry per scenario run (schema [`SCHEMA`]). The
//! harness writes it; CI, xtask and the lab tests read it with these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        }
    }
}

/// A closed interval of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub lo: f64,
    pub hi: f64,
}

impl Window {
    pub fn at(x: f64) -> Window {
        Window { lo: x, hi: x }
    }
    pub fn shift(self, d: f64) -> Window {
        Window {
            lo: self.lo + d,
            hi: self.hi + d,
        }
    }
    pub fn center(&self) -> f64 {
        (self.lo + self.hi) / 2.0
    }
}
/// The file a run's history is saved in, beside report.json.
pub fn history_file(run_id: &str) -> String {
    format!("{run_id}.history.jsonl")
}

/// The switch's capture of a run (pcapng), beside its history.
pub fn capture_file(run_id: &str) -> String {
    format!("{run_id}.pcapng")
}

/// A file of the output folder as report.html links it: a relative URL
/// with everything but unreserved characters percent-encoded (run ids
/// hold `[`, `=`, `,` and `@`; a `:` would otherwise read as a scheme).
pub fn file_href(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file name a relative link of report.html names (the inverse of
/// [`file_href`]; a `%` not followed by two hex digits stays as it is).
pub fn file_of_href(href: &str) -> String {
    let bytes = href.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bump only with an incompatible change of `report.json`.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    /// Every run id of the whole plan, in plan order (also the runs other
    /// shards ran): what `iscsi-chaos merge` checks shards against.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<String>,
    /// `K/N` when this report holds one shard of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub scenarios: Vec<Entry>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            schema: SCHEMA,
            plan: Vec::new(),
            shard: None,
            scenarios: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The run id (`scenario` or `scenario@target`); its history is
    /// `<id>.history.jsonl`.
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub target: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    /// The initiator settings applied: iscsiadm node key -> value.
    pub settings: BTreeMap<String, String>,
    /// A sweep's point: axis key -> value (absent for a run of no sweep).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub point: BTreeMap<String, String>,
    /// The scenario's faults, in file order (`step` of the history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultJson>,
    pub expected: Expected,
    pub measured: MeasuredJson,
    pub timings: Timings,
}

/// One fault of the scenario, as pictures and reports label it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultJson {
    pub kind: String,
    /// Seconds from the start of the I/O phase, as scheduled.
    pub start_s: f64,
    pub duration_s: f64,
    /// Kind, duration, direction and parameters in a few words
    /// ("netem 20 s, to_target, loss 30%").
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    pub first_error_s: Option<f64>,
    pub tolerance_s: f64,
    pub borderline: bool,
    pub imprecise: bool,
    /// When the first detected outage is detected (from its start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_s: Option<Window>,
    pub max_stall_s: Option<Window>,
    pub recovery_s: Option<Window>,
    /// Classes of bad block the oracle says the faults can cause (a held
    /// write landing after failover: "stale version", "misdirected"):
    /// those are the prediction, not a failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub possible_damage: Vec<String>,
    /// What an fs probe's filesystem will need to work again after the
    /// faults (none: no fs probe, or the outcome is on a boundary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_recovery: Option<crate::probe::Recovery>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StallJson {
    /// Seconds from the first outage's start (or from the first probe
    /// operation when there is no outage).
    pub start_s: f64,
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MeasuredJson {
    pub first_error_s: Option<f64>,
    pub errors: u64,
    pub errnos: Vec<i32>,
    pub max_stall_s: f64,
    pub stalls: Vec<StallJson>,
    pub recovered_s: Option<f64>,
    /// From the first outage's start to the session leaving LOGGED_IN (the
    /// initiator noticed); none if it never did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_s: Option<f64>,
    pub acked_writes: u64,
    pub lost_writes: u64,
    pub corrupt_writes: u64,
    pub unverified_writes: u64,
    pub ops: u64,
    /// Counted by the fault qdiscs: proof the faults touched packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qdisc_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qdisc_drops: Option<u64>,
    /// TCP resets the reset rules sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_sent: Option<u64>,
    /// Frames the lane dropped for exceeding the MTU (MTU faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oversize_drops: Option<u64>,
    /// The timers the kernel used, read from sysfs after login
    /// (`session.recovery_tmo`, `connection.ping_tmo`, `disk.timeout`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub effective: BTreeMap<String, String>,
    /// Where those differ from what the run asked for (or changed during
    /// the run): the run's figures were made with other timers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings_warnings: Vec<String>,
    /// What the switch's capture saw while each fault was in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wire: Vec<WireWindow>,
    /// Every lost or corrupt acknowledged write, classified by what its
    /// block held instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bad_blocks: Vec<BadBlockJson>,
    /// An fs probe's filesystem: its states, what it took to work again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsJson>,
    /// Several hosts on one disk: what each wrote after the later one
    /// began, and the blocks both wrote (split brain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_brain: Option<SplitBrainJson>,
}

/// Two hosts writing one disk: from the instant the later host began its
/// I/O (the takeover), what each wrote, and the blocks both wrote.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SplitBrainJson {
    /// The takeover, in seconds from the first fault's begin.
    pub takeover_s: f64,
    /// Blocks with an acknowledged write of each host after the takeover.
    pub blocks: u64,
    /// Each host's writes after the takeover.
    pub writers: Vec<WriterJson>,
    /// Acknowledged writes read back holding the other host's stamp: one
    /// host's write overwritten by the other's (not counted as lost).
    pub overwritten: u64,
    /// With `[fencing]`: when the survivor's PREEMPT AND ABORT of the
    /// victim's key returned (seconds from the first fault's begin), or why
    /// it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WriterJson {
    pub host: String,
    pub probe: String,
    /// Acknowledged writes after the takeover.
    pub writes: u64,
    /// Distinct blocks those writes went to.
    pub blocks: u64,
    /// Its first and last acknowledged write after the takeover (seconds
    /// from the first fault's begin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_s: Option<f64>,
    /// Writes refused with RESERVATION CONFLICT (errno EBADE).
    pub conflicts: u64,
    /// With `[fencing]`: acknowledged writes that returned after the fence.
    #[serde(default)]
    pub after_fence: u64,
}

/// What an fs probe saw of its filesystem.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FsJson {
    /// Each change of state, in order.
    pub states: Vec<FsStateJson>,
    /// The worst state during the run (before recovery began): rw,
    /// read-only or shut down.
    pub worst: Option<crate::probe::FsMount>,
    /// The first recovery step after which the workload ran again (`never`
    /// if none did; none if the probe tried none).
    pub recovery: Option<crate::probe::Recovery>,
    /// Each step tried: its name, whether the workload then ran, what was
    /// run and said.
    pub steps: Vec<FsStepJson>,
    /// fsyncs that failed and then returned 0 on the same open file (the
    /// error reported once, its data not written again).
    pub fsync_error_once: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsStateJson {
    /// Seconds from the first fault's begin.
    pub at_s: f64,
    pub mount: crate::probe::FsMount,
    /// The SCSI device's state (running, offline, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// ext4's error count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    /// The kernel's line that told of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsStepJson {
    pub at_s: f64,
    pub step: crate::probe::Recovery,
    pub ok: bool,
    pub detail: String,
}

/// One bad block: the write that should be there, what is there instead,
/// and when each write was issued and returned (seconds from the first
/// fault's begin; `None` when the history has no such operation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadBlockJson {
    pub block: u64,
    pub seq: u64,
    /// "zeroed", "stale version", "misdirected", "torn", "stale from an
    /// earlier run", "overwritten by another host", "newer version", or
    /// "unclassified".
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<crate::probe::Found>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_s: Option<f64>,
    /// The write whose stamp the block holds (a stale, newer or
    /// misdirected one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_issued_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_returned_s: Option<f64>,
    /// With several hosts: whose acknowledged write it was, and whose
    /// stamp the block holds instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_host: Option<String>,
    /// From the switch's capture: WRITE commands for this block that
    /// reached the target after this write was acknowledged and before
    /// the probe found the block bad (the suspects: a write carried out
    /// late).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late_writes: Vec<LateWriteJson>,
}

/// A WRITE command seen on the wire (times from the first fault's begin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateWriteJson {
    pub path: u8,
    /// When it came into the switch from the initiator.
    pub sent_s: f64,
    /// When the switch delivered it to the target.
    pub reached_s: f64,
}

/// The capture's counts for one fault step, from when it was in place to
/// when it was cleared (every path).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WireWindow {
    pub step: usize,
    /// SCSI commands sent, and of them the ones the nemesis dropped.
    pub commands: u64,
    pub commands_dropped: u64,
    /// Statuses sent by the target (SCSI Response, Data-In with status),
    /// and of them the ones not GOOD.
    pub statuses: u64,
    pub bad_statuses: u64,
    /// Frames carrying data sent again, and RSTs (sent by an end or made
    /// by the switch).
    pub retransmissions: u64,
    pub resets: u64,
}

/// Harness overhead, filled by the orchestrator (seconds, `None` when not
/// reached).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// From the start of setup to the I/O phase.
    pub setup_s: Option<f64>,
    /// The I/O phase (fault timeline).
    pub timeline_s: Option<f64>,
    pub teardown_s: Option<f64>,
    /// Largest delay from a fault step's scheduled instant to its being in place.
    pub fault_apply_latency_max_s: Option<f64>,
}

impl Report {
    pub fn push(&mut self, entry: Entry) {
        self.scenarios.push(entry);
    }

    /// The text of `report.json`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("reports serialize");
        s.push('\n');
        s
    }

    /// Reads `report.json`.
    pub fn from_json(text: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// [`crate::exit::PASSED`] when every run passed or was skipped,
    /// [`crate::exit::FAILED`] when any failed or errored (input errors
    /// never reach a report).
    pub fn exit_status(&self) -> i32 {
        let bad = self
            .scenarios
            .iter()
            .any(|e| matches!(e.verdict, Verdict::Fail | Verdict::Error));
        if bad {
            crate::exit::FAILED
        } else {
            crate::exit::PASSED
        }
    }
}
