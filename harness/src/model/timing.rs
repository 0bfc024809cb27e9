//! open-iscsi's timers as the model sees them (LAB-NOTES.md): the settings
//! in seconds, the measured constants, and the ways a link can fail. Pure
//! vocabulary shared by the fault kinds and the oracle.

use crate::model::Initiator;

/// Retries the SCSI disk driver allows a file-system command (SD_MAX_RETRIES):
/// the sixth disruption of the same command fails it.
pub const SCSI_RETRIES: u32 = 5;
/// iscsid's extra delay before a relogin beyond W, and the login exchange
/// itself (whole-second timers: up to a second each).
pub const RELOGIN_SLACK_S: f64 = 1.0;
/// A relogin over a working path, from connect to logged in (measured
/// 0.03-0.1 s under TCG; [`LOGIN_S`] is the cap for one outage, but five
/// cycles of it would blur a retry-limit prediction by 5 s).
pub const QUICK_LOGIN_S: f64 = 0.35;
/// SCSI command timeout, the sd default (not an iscsid node setting).
pub const SCSI_TIMEOUT_S: f64 = 30.0;
/// DefaultTime2Wait: iscsid's delay before the first reconnect.
pub const TIME2WAIT_S: f64 = 2.0;
/// iscsid counts Time2Wait in its one-second actor ticks, so a relogin can
/// come a whole tick early (measured on `mtu-mismatch`, 40 runs: 2.0-2.1 s
/// after the detection mostly, 1.0-1.5 s in 11 of 210 relogins, never twice
/// in one run).
pub const ACTOR_TICK_S: f64 = 1.0;
/// Early relogins a chain of repeated disruptions is allowed (five cycles
/// at 5 % each: two or more in about 2.5 % of runs, three in 0.1 %).
pub const EARLY_RELOGINS: f64 = 2.0;
/// Delay between reconnects after a refused connection.
pub const REFUSED_RETRY_S: f64 = 3.0;
/// Linux's minimum TCP retransmission timeout, the RTO on a veth.
pub const TCP_RTO_MIN_S: f64 = 0.2;
/// Time from a successful connect to the session being logged in again.
pub const LOGIN_S: f64 = 1.0;
/// Below this distance from the detection deadline, detection is uncertain.
pub const DETECTION_MARGIN_S: f64 = 0.5;
/// Below this distance between relogin and the replacement timeout, which
/// comes first is uncertain.
pub const RACE_MARGIN_S: f64 = 1.5;
/// Below this distance between a relogin after one outage and the
/// replacement timeout, which comes first is uncertain. Narrower than
/// [`RACE_MARGIN_S`]: the relogin's schedules (an early tick, a SYN just
/// after the end) are in the window already; measured on `budget` runs
/// at 2/2/5 and 5/5/20 (docs/findings.md, "Where the race is").
pub const RELOGIN_RACE_MARGIN_S: f64 = 0.5;
/// How late after its scheduled end an outage may still hold a packet (the
/// runner's netlink work under load): a SYN sent this close after the end
/// may be lost, and the connect waits for the next retransmit.
pub const CLEAR_LATENESS_S: f64 = 0.25;
/// How often a probe reports an operation still blocked (its Stalled
/// events after the first): a trigger on a stall's length fires up to this
/// late.
pub const STALL_REPORT_S: f64 = 1.0;
/// Tolerance of a predicted first error.
pub const TOLERANCE_S: f64 = 1.5;
/// How long a stopped target takes to listen again after its restart begins.
pub const TARGET_RESTART_S: f64 = 1.0;
/// Delay between relogins after a refused login (TCP accepted, login
/// rejected: LIO's disabled TPG or removed ACL, tgt's unbound initiator);
/// measured 1.97-2.05 s on both targets.
pub const LOGIN_REJECTED_RETRY_S: f64 = 2.0;
/// How long restoring access or re-enabling a TPG takes to apply (tgt: one
/// tgtadm under TCG, 0.3-0.5 s; LIO: a configfs write).
pub const ACCESS_RESTORE_S: f64 = 0.5;
/// From this netem loss on, NOP replies may be lost often enough to time
/// out (a NOP-Out's reply needs about log2(N / 0.2) straight losses of a
/// retransmit at 5 %; at 20 % that is no longer rare over a run).
pub const HEAVY_LOSS_PCT: f64 = 20.0;

/// The kernel's tick rate (Debian's kernels: CONFIG_HZ=250).
pub const KERNEL_HZ: f64 = 250.0;

/// How late the kernel may run a timer or delayed work armed `delay_s`
/// ahead (replacement_timeout is the session's recovery_work). The timer
/// wheel (kernel/time/timer.c) files a timer in level n when its delay is
/// at least 63 * 8^(n-1) ticks, and rounds its expiry up to that level's
/// granularity of 8^n ticks, so it never fires early and up to a
/// granularity late: at HZ 250, 4 ms below 0.25 s, 32 ms from 0.25 s,
/// 0.256 s from 2 s, 2.048 s from 16.1 s, 16.4 s from 129 s, 131 s from
/// 1032 s. Measured in the lab: replacement_timeout 5 fired 0.07-0.27 s
/// late, 20 fired 0.18-1.98 s late (10 runs), 120 fired 0.57-0.77 s late.
pub fn timer_slack_s(delay_s: f64) -> f64 {
    if delay_s <= 0.0 {
        return 0.0;
    }
    let ticks = (delay_s * KERNEL_HZ).ceil();
    let (mut granularity, mut next_level) = (1.0, 63.0);
    // LVL_DEPTH is 9 at HZ > 100; the last level holds every longer delay.
    for _ in 1..9 {
        if ticks < next_level {
            break;
        }
        granularity *= 8.0;
        next_level *= 8.0;
    }
    granularity / KERNEL_HZ
}

/// The timeouts the model uses, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// I; 0 = NOP-Outs off.
    pub noop_out_interval: f64,
    /// N.
    pub noop_out_timeout: f64,
    /// R; < 0 = never.
    pub replacement_timeout: f64,
    /// L.
    pub login_timeout: f64,
    /// A.
    pub abort_timeout: f64,
    /// S.
    pub scsi_timeout: f64,
}

impl Timeouts {
    pub fn from_initiator(i: &Initiator) -> Timeouts {
        Timeouts {
            noop_out_interval: f64::from(i.noop_out_interval),
            noop_out_timeout: f64::from(i.noop_out_timeout),
            replacement_timeout: i.replacement_timeout as f64,
            login_timeout: f64::from(i.login_timeout()),
            abort_timeout: f64::from(i.abort_timeout()),
            scsi_timeout: SCSI_TIMEOUT_S,
        }
    }

    pub fn nops(&self) -> bool {
        self.noop_out_interval > 0.0 && self.noop_out_timeout > 0.0
    }
}

/// How the initiator notices an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// Nothing arrives and nothing is refused: the NOP-Out timeout (or,
    /// with NOP-Outs off, the SCSI error handler) notices.
    Silent,
    /// At the initiator's next packet (a probe's I/O or a NOP-Out).
    NextPacket,
    /// At once (the connection is closed).
    Immediate,
}

/// When traffic flows again after a short outage nobody detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// At TCP's next retransmission (exponential backoff from the RTO).
    TcpBackoff,
    /// At the outage's end.
    AtEnd,
}

/// How reconnect attempts go while the outage lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reconnect {
    /// Each attempt fails quickly; the next one this many seconds later.
    Every(f64),
    /// SYNs are retransmitted (1, 2, 4, ... s) until login_timeout, then
    /// the next attempt starts.
    SynBackoff,
}

/// What the target needs after the outage's end before a relogin succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    Nothing,
    /// Its process restarts ([`TARGET_RESTART_S`]).
    Restart,
    /// The initiator's access (or the TPG) is restored ([`ACCESS_RESTORE_S`]).
    Access,
}

/// How the link fails during an outage: the mechanics the oracle's timing
/// is computed from. A fault kind picks one of the named modes or
/// describes its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageMode {
    pub detection: Detection,
    pub resume: Resume,
    pub reconnect: Reconnect,
    pub restore: Restore,
}

#[allow(non_upper_case_globals)]
impl OutageMode {
    /// Packets vanish: no RST, no ICMP (blackhole).
    pub const SilentDrop: OutageMode = OutageMode {
        detection: Detection::Silent,
        resume: Resume::TcpBackoff,
        reconnect: Reconnect::SynBackoff,
        restore: Restore::Nothing,
    };
    /// The target's end answers with RST for the outage's duration: the
    /// live connection is reset at the initiator's next packet, reconnects
    /// are refused meanwhile (`reset`).
    pub const Reset: OutageMode = OutageMode {
        detection: Detection::NextPacket,
        resume: Resume::AtEnd,
        reconnect: Reconnect::Every(REFUSED_RETRY_S),
        restore: Restore::Nothing,
    };
    /// The target process is gone for the outage's duration: its kernel
    /// closes the connections at once, reconnects are refused
    /// (`target_stop`).
    pub const Refused: OutageMode = OutageMode {
        detection: Detection::Immediate,
        resume: Resume::AtEnd,
        reconnect: Reconnect::Every(REFUSED_RETRY_S),
        restore: Restore::Restart,
    };
    /// The sessions are closed at once, then connections are accepted but
    /// logins rejected for the outage's duration, retried every 2 s (LIO's
    /// `target_stop`, `access_revoke` on both targets).
    pub const LoginRejected: OutageMode = OutageMode {
        detection: Detection::Immediate,
        resume: Resume::AtEnd,
        reconnect: Reconnect::Every(LOGIN_REJECTED_RETRY_S),
        restore: Restore::Access,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_slack_follows_the_wheel_levels() {
        // Level boundaries at HZ 250: 63, 504, 4032, 32256, 258048 ticks.
        assert_eq!(timer_slack_s(0.0), 0.0);
        assert_eq!(timer_slack_s(0.2), 0.004);
        assert_eq!(timer_slack_s(0.252), 0.032);
        assert_eq!(timer_slack_s(2.0), 0.032);
        assert_eq!(timer_slack_s(2.016), 0.256);
        assert_eq!(timer_slack_s(5.0), 0.256);
        assert_eq!(timer_slack_s(16.0), 0.256);
        assert_eq!(timer_slack_s(16.128), 2.048);
        assert_eq!(timer_slack_s(20.0), 2.048);
        assert_eq!(timer_slack_s(120.0), 2.048);
        assert_eq!(timer_slack_s(129.024), 16.384);
        assert_eq!(timer_slack_s(6000.0), 131.072);
    }

    #[test]
    fn the_last_level_holds_every_longer_delay() {
        assert_eq!(timer_slack_s(1e9), timer_slack_s(1e12));
    }
}
