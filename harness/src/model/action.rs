//! The nemesis's primitive actions, as data: what a fault step does. Each
//! fault kind names the action that puts it in place and the one that
//! undoes it; the nemesis and the runner carry them out.

use crate::model::Direction;
use crate::wire::nft::Rule;
use crate::wire::tc::{Netem, Plug, PlugAction, Qdisc, Tbf};

/// A blackhole: netem `loss 100%`.
pub fn blackhole() -> Qdisc {
    Qdisc::Netem(Netem {
        loss: 100.0,
        ..Netem::default()
    })
}

/// A bandwidth cap of `rate_kbit`: a bucket of 20 ms at that rate (at least
/// 64 KiB, so a GSO super-packet of a veth fits) and 200 ms of queue.
pub fn tbf_for(rate_kbit: u64) -> Tbf {
    let rate = rate_kbit.saturating_mul(1000) / 8;
    let burst = (rate / 50).max(64 * 1024);
    Tbf {
        rate_bytes_per_s: rate,
        burst_bytes: u32::try_from(burst).unwrap_or(u32::MAX),
        limit_bytes: u32::try_from(burst.saturating_add(rate / 5)).unwrap_or(u32::MAX),
    }
}

/// Most bytes a plug holds toward a stalled controller: far more than a
/// stalled path sends (its initiator waits for answers that do not come).
pub const PLUG_LIMIT_BYTES: u32 = 32 << 20;

/// A plug that holds everything from now on.
pub fn hold() -> Qdisc {
    Qdisc::Plug(Plug {
        action: PlugAction::Hold,
        limit_bytes: PLUG_LIMIT_BYTES,
    })
}

/// What the nemesis does at one instant of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Install this qdisc on the sending end(s) of `direction`.
    Shape { direction: Direction, qdisc: Qdisc },
    /// Remove our qdisc from the end(s) of `direction`.
    Clear { direction: Direction },
    /// Let everything a plug on the end(s) of `direction` holds go, in
    /// order, and remove it once it has drained.
    Release { direction: Direction },
    /// Put a firewall rule in place in the lane's namespace.
    Firewall { rule: Rule },
    /// Remove it.
    ClearFirewall,
    /// Kill the target process (a crash: its connections close at once).
    StopTarget,
    /// Start the target process again, same portal and LUN.
    StartTarget,
    /// Remove (false) or restore (true) the target's network portal.
    SetPortal { present: bool },
    /// Revoke (false) or restore (true) the initiator's access.
    SetAccess { allowed: bool },
    /// Set the backing store's added delay per I/O (0: none).
    SetStoreDelay { ms: f64 },
    /// Set one veth end administratively up or down (a pulled cable).
    SetLink { end: LinkSide, up: bool },
    /// Set the MTU of the switch's ports (`None`: back to the lane's).
    SetPortMtu { mtu: Option<u32> },
    /// Stop or resume forwarding on the switch's port facing `side`.
    SetPort { side: LinkSide, forwarding: bool },
}

impl Action {
    /// The direction whose frames this step starts or stops holding (to
    /// be delivered late, not dropped).
    pub fn holds(&self) -> Option<Direction> {
        match self {
            Action::Shape {
                direction,
                qdisc: Qdisc::Plug(_),
            }
            | Action::Release { direction } => Some(*direction),
            _ => None,
        }
    }
}

/// One end of a lane's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSide {
    /// The initiator's end (root namespace).
    Initiator,
    /// The target's end (in the lane's namespace).
    Target,
}

impl LinkSide {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkSide::Initiator => "initiator",
            LinkSide::Target => "target",
        }
    }
}
