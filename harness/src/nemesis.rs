//! The nemesis: puts a scenario's fault steps in place and clears them.
//!
//! netem shapes only egress, so each direction is a qdisc on the sending end
//! of the lane's veth: the host end for initiator-to-target traffic, the
//! target end (inside the lane's namespace) for target-to-initiator traffic.
//! The target end's netlink socket is opened on a thread switched into the
//! namespace; after that it is used from anywhere.
//!
//! Invariant: only the root qdisc of our own veth ends is ever replaced or
//! deleted, and `clear_all` leaves both at the kernel's default.

use std::io;

use anyhow::{Context, Result};

use crate::netns::NetNs;
use crate::scenario::{Direction, Fault, FaultKind};
use crate::tc::{Netem, Qdisc, QdiscStats, RouteSocket};

/// One end of the lane's link, where egress qdiscs go.
struct LinkEnd {
    socket: RouteSocket,
    ifindex: i32,
    /// Whether we installed a qdisc here that is still in place.
    shaped: bool,
}

impl LinkEnd {
    fn set(&mut self, qdisc: &Qdisc) -> io::Result<()> {
        self.socket.replace_root_qdisc(self.ifindex, qdisc)?;
        self.shaped = true;
        Ok(())
    }

    fn clear(&mut self) -> io::Result<()> {
        if self.shaped {
            self.socket.delete_root_qdisc(self.ifindex)?;
            self.shaped = false;
        }
        Ok(())
    }
}

pub struct Nemesis {
    /// Host end: shapes initiator-to-target packets.
    to_target: LinkEnd,
    /// Target end: shapes target-to-initiator packets.
    to_initiator: LinkEnd,
}

/// The qdisc that realises a fault on one direction.
pub fn qdisc_for(kind: &FaultKind) -> Qdisc {
    match kind {
        FaultKind::Blackhole { .. } => Qdisc::Netem(Netem {
            loss: 100.0,
            ..Netem::default()
        }),
    }
}

fn direction_of(kind: &FaultKind) -> Direction {
    match kind {
        FaultKind::Blackhole { direction } => *direction,
    }
}

impl Nemesis {
    pub fn new(target_ns: &NetNs, host_ifindex: u32, target_ifindex: u32) -> Result<Nemesis> {
        let host = RouteSocket::open().context("opening a netlink socket")?;
        let target = target_ns
            .run_in(RouteSocket::open)?
            .context("opening a netlink socket in the lane's namespace")?;
        Ok(Nemesis {
            to_target: LinkEnd {
                socket: host,
                ifindex: host_ifindex as i32,
                shaped: false,
            },
            to_initiator: LinkEnd {
                socket: target,
                ifindex: target_ifindex as i32,
                shaped: false,
            },
        })
    }

    fn ends(&mut self, direction: Direction) -> Vec<&mut LinkEnd> {
        match direction {
            Direction::Both => vec![&mut self.to_target, &mut self.to_initiator],
            Direction::ToTarget => vec![&mut self.to_target],
            Direction::ToInitiator => vec![&mut self.to_initiator],
        }
    }

    /// Puts the fault in place.
    pub fn begin(&mut self, fault: &Fault) -> Result<()> {
        let qdisc = qdisc_for(&fault.kind);
        for end in self.ends(direction_of(&fault.kind)) {
            end.set(&qdisc).with_context(|| {
                format!("installing {} on ifindex {}", qdisc.kind(), end.ifindex)
            })?;
        }
        Ok(())
    }

    /// Clears the fault.
    pub fn end(&mut self, fault: &Fault) -> Result<()> {
        for end in self.ends(direction_of(&fault.kind)) {
            end.clear()
                .with_context(|| format!("removing the qdisc on ifindex {}", end.ifindex))?;
        }
        Ok(())
    }

    /// Clears whatever is still in place (teardown, interrupted timeline).
    pub fn clear_all(&mut self) -> Result<()> {
        let a = self.to_target.clear();
        let b = self.to_initiator.clear();
        a.context("clearing the host end")?;
        b.context("clearing the target end")?;
        Ok(())
    }

    /// Counters of the qdiscs on both ends (host end, target end): proof
    /// that a fault really dropped packets.
    pub fn stats(&mut self) -> (Option<QdiscStats>, Option<QdiscStats>) {
        let a = self
            .to_target
            .socket
            .qdisc_stats(self.to_target.ifindex)
            .ok()
            .flatten();
        let b = self
            .to_initiator
            .socket
            .qdisc_stats(self.to_initiator.ifindex)
            .ok()
            .flatten();
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blackhole_is_total_netem_loss() {
        let q = qdisc_for(&FaultKind::Blackhole {
            direction: Direction::Both,
        });
        match q {
            Qdisc::Netem(n) => {
                assert_eq!(n.loss, 100.0);
                assert_eq!(n.delay, std::time::Duration::ZERO);
            }
            other => panic!("expected netem, got {}", other.kind()),
        }
    }
}
