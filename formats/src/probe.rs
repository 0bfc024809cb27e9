//! What a probe prints: one JSON line per [`ProbeEvent`]. Every timestamp
//! is CLOCK_MONOTONIC in seconds, the clock of the whole history.

use serde::{Deserialize, Serialize};

/// The kind of I/O operation a probe performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Read,
    Write,
    /// fsprobe: open(O_CREAT | O_EXCL) of a new file.
    Create,
    /// fsprobe: fsync of a file or of its directory.
    Fsync,
    /// fsprobe: fdatasync of a file.
    Fdatasync,
    /// fsprobe: rename of a written file to its final name.
    Rename,
    /// cmdprobe: one run of the user's command (ok: it exited 0 in time).
    Command,
}

impl OpKind {
    pub const ALL: [OpKind; 7] = [
        OpKind::Read,
        OpKind::Write,
        OpKind::Create,
        OpKind::Fsync,
        OpKind::Fdatasync,
        OpKind::Rename,
        OpKind::Command,
    ];

    /// The name reports and JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Create => "create",
            OpKind::Fsync => "fsync",
            OpKind::Fdatasync => "fdatasync",
            OpKind::Rename => "rename",
            OpKind::Command => "command",
        }
    }
}

/// What state a filesystem probe's filesystem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsMount {
    /// Mounted read-write, working.
    Rw,
    /// Mounted read-only (ext4 after an aborted journal, `errors=remount-ro`).
    Ro,
    /// Shut down: mounted, but every call fails until umount (XFS after a
    /// log I/O error; ext4's shutdown flag).
    ShutDown,
    /// Not mounted (the probe unmounted it to repair it, or lost it).
    Unmounted,
}

impl FsMount {
    pub fn as_str(self) -> &'static str {
        match self {
            FsMount::Rw => "rw",
            FsMount::Ro => "read-only",
            FsMount::ShutDown => "shut down",
            FsMount::Unmounted => "unmounted",
        }
    }
}

/// The steps a filesystem probe tries, in order, to make its filesystem work
/// again after the fault; the first that works is what it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Nothing: the workload runs again as it is.
    ByItself,
    /// `mount -o remount,rw`.
    Remount,
    /// umount, the filesystem's repair tool (e2fsck -fy; XFS: log replay by
    /// mount, then xfs_repair), mount.
    Umount,
    /// None of the steps brought it back.
    Never,
}

impl Recovery {
    pub const ALL: [Recovery; 4] = [
        Recovery::ByItself,
        Recovery::Remount,
        Recovery::Umount,
        Recovery::Never,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Recovery::ByItself => "by_itself",
            Recovery::Remount => "remount",
            Recovery::Umount => "umount",
            Recovery::Never => "never",
        }
    }

    /// What it means, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Recovery::ByItself => "works again by itself",
            Recovery::Remount => "works again after a remount",
            Recovery::Umount => "works again only after umount + repair",
            Recovery::Never => "did not work again",
        }
    }
}

/// One line of a probe's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum ProbeEvent {
    /// The probe opened its device and starts issuing I/O.
    Start {
        t: f64,
        device: String,
        block_size: u32,
        blocks: u64,
        interval_ms: u64,
    },
    /// An operation completed (successfully or not). `start` is when it was
    /// issued, `t` when the kernel returned. `errno` is set on failure.
    Op {
        t: f64,
        start: f64,
        op: OpKind,
        seq: u64,
        block: u64,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errno: Option<i32>,
    },
    /// The watchdog saw an operation blocked in the kernel since `since`.
    /// Emitted once a stall passes the threshold, then about once a second.
    Stalled {
        t: f64,
        since: f64,
        op: OpKind,
        seq: u64,
    },
    /// The timeline is over; the probe reads back every acknowledged write.
    VerifyStart { t: f64, acked: u64 },
    /// An acknowledged write that read back wrong: `lost` when the block holds
    /// an older or no stamp, `corrupt` when the stamp's checksum fails,
    /// `unreadable` when the verify pass could not read it back. blkprobe also
    /// emits it during the run when the read right after a write finds the
    /// block's latest acknowledged write lost or corrupt; each write is
    /// reported at most once.
    BadBlock {
        t: f64,
        seq: u64,
        block: u64,
        problem: BlockProblem,
        /// What the block held instead (lost and corrupt blocks).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<Found>,
    },
    /// fsprobe: the filesystem's state changed (`mount`), or the SCSI
    /// device's (`device`: sysfs `device/state`, e.g. running, offline,
    /// transport-offline), or ext4 counted errors (`errors`). `line` is the
    /// kernel's message that told the probe, if one did.
    FsState {
        t: f64,
        mount: FsMount,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errors: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<String>,
    },
    /// fsprobe, after the I/O phase: one step tried to make the filesystem
    /// work again, and whether the workload then ran (`detail`: what was run
    /// and what it said).
    FsRecovery {
        t: f64,
        step: Recovery,
        ok: bool,
        detail: String,
    },
    /// fsprobe: an fsync of `file` failed with `errno`, and the next fsync
    /// of the same open file returned 0: the error is reported once, and
    /// the data the first one lost is not written again.
    FsyncErrorOnce { t: f64, file: u64, errno: i32 },
    /// cmdprobe: how run `seq` of the command ended (its `Op` has the
    /// times): its exit status (none when a signal ended it), whether it
    /// was killed for outliving its bound, the end of what it printed.
    CommandRun {
        t: f64,
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<i32>,
        timed_out: bool,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        output: String,
    },
    /// Final counts. Always the last line of a probe that ended normally.
    Summary {
        t: f64,
        acked_writes: u64,
        lost_writes: u64,
        corrupt_writes: u64,
        unverified_writes: u64,
        ops: u64,
        errors: u64,
    },
}

/// Why a read-back block did not match the acknowledged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockProblem {
    Lost,
    Corrupt,
    /// The read-back itself failed (I/O error); counted as unverified.
    Unreadable,
}

/// What a bad block held instead of the acknowledged write expected there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "holds", rename_all = "snake_case")]
pub enum Found {
    /// Only zero bytes: no write of this run ever landed there (or it was
    /// discarded).
    Zeroes,
    /// A whole, valid stamp of this run: write `seq`, made for `block`. An
    /// older seq for this block is a stale version (a lost update); another
    /// block's stamp is a misdirected write.
    Stamp { seq: u64, block: u64 },
    /// A whole, valid stamp of another run: bytes from before this run.
    OtherRun { seq: u64 },
    /// Neither: the 512-byte sectors that differ from the expected write,
    /// and the seq the first sector's header names, if it holds one of this
    /// run's (a block torn between two writes has both).
    Torn {
        sectors: Vec<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_seq: Option<u64>,
    },
}

/// The class of a block that holds an older acknowledged write of its
/// own: a lost update.
pub const STALE_VERSION: &str = "stale version";
/// The class of a block that holds another host's write (several hosts
/// on one disk: each run's LUN is new, so another probe run's stamp is the
/// other host's).
pub const OVERWRITTEN: &str = "overwritten by another host";
/// The class of a block that holds another block's write.
pub const MISDIRECTED: &str = "misdirected";

impl Found {
    /// The class of the damage, as reports name it, for the write `seq` of
    /// `block` that should be there.
    pub fn class(&self, seq: u64, block: u64) -> &'static str {
        match self {
            Found::Zeroes => "zeroed",
            Found::Stamp { block: b, .. } if *b != block => MISDIRECTED,
            Found::Stamp { seq: s, .. } if *s < seq => STALE_VERSION,
            Found::Stamp { .. } => "newer version",
            Found::OtherRun { .. } => "stale from an earlier run",
            Found::Torn { .. } => "torn",
        }
    }
}

impl ProbeEvent {
    /// The instant the event was recorded (CLOCK_MONOTONIC seconds).
    pub fn t(&self) -> f64 {
        match self {
            ProbeEvent::Start { t, .. }
            | ProbeEvent::Op { t, .. }
            | ProbeEvent::Stalled { t, .. }
            | ProbeEvent::VerifyStart { t, .. }
            | ProbeEvent::BadBlock { t, .. }
            | ProbeEvent::FsState { t, .. }
            | ProbeEvent::FsRecovery { t, .. }
            | ProbeEvent::FsyncErrorOnce { t, .. }
            | ProbeEvent::CommandRun { t, .. }
            | ProbeEvent::Summary { t, .. } => *t,
        }
    }
}
