//! One path's switch as the nemesis holds it: a qdisc on each of its two
//! ports and the reset table.
//!
//! netem shapes only egress, so each direction is a qdisc on the switch port
//! it leaves by: the port facing the target for initiator-to-target
//! traffic, the port facing the initiator for the way back. The switch's
//! netlink socket is opened on a thread switched into its namespace; after
//! that it is used from anywhere.
//!
//! Invariant: only the root qdisc of our own switch ports is ever replaced
//! or deleted, only our own table in the lane's switch is added or
//! deleted, and `clear_all` leaves both ports at the kernel's default.

use std::io;
use std::net::SocketAddrV4;

use anyhow::{Context, Result};

use super::firewall::Firewall;
use crate::env::lane::Lane;
use crate::ledger::{Ledger, Object};
use crate::model::action::LinkSide;
use crate::model::Direction;
use crate::sys::tc::{Qdisc, QdiscStats, RouteSocket};

/// One end of the lane's link, where egress qdiscs go.
struct LinkEnd {
    socket: RouteSocket,
    ifindex: i32,
    /// Whether we installed a qdisc here that is still in place.
    shaped: bool,
    /// The ledger entry of our qdisc here, written before the first one.
    entry: Object,
    ledger: Ledger,
    recorded: bool,
}

impl LinkEnd {
    fn set(&mut self, qdisc: &Qdisc) -> Result<()> {
        if !self.recorded {
            self.ledger.record(self.entry.clone())?;
            self.recorded = true;
        }
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

/// The nemesis's hold on one path's switch.
pub struct Switch {
    /// The switch's port facing the target: shapes initiator-to-target
    /// packets.
    to_target: LinkEnd,
    /// The switch's port facing the initiator: shapes target-to-initiator
    /// packets.
    to_initiator: LinkEnd,
    /// The reset rule in the lane's namespace.
    firewall: Firewall,
}

/// The sending end of a direction, as named in history entries.
pub fn side_name(to_target: bool) -> &'static str {
    if to_target {
        "to_target"
    } else {
        "to_initiator"
    }
}

impl Switch {
    /// The switch of `lane`, whose target listens at `portal`.
    pub fn new(lane: &Lane, portal: SocketAddrV4) -> Result<Switch> {
        let switch = lane.switch().context("the lane has no switch")?;
        let ledger = lane.ledger().clone();
        let end = |side: LinkSide| -> Result<LinkEnd> {
            let socket = switch
                .run_in(RouteSocket::open)?
                .context("opening a netlink socket in the lane's switch")?;
            Ok(LinkEnd {
                socket,
                ifindex: lane.port_ifindex(side) as i32,
                shaped: false,
                entry: Object::Qdisc {
                    netns: Some(switch.name().to_string()),
                    link: lane.port_name(side).to_string(),
                },
                ledger: ledger.clone(),
                recorded: false,
            })
        };
        Ok(Switch {
            to_target: end(LinkSide::Target)?,
            to_initiator: end(LinkSide::Initiator)?,
            firewall: Firewall::new(switch.clone(), portal, ledger.clone()),
        })
    }

    /// The firewall rule of reset faults.
    pub fn firewall(&mut self) -> &mut Firewall {
        &mut self.firewall
    }

    fn ends(&mut self, direction: Direction) -> Vec<&mut LinkEnd> {
        match direction {
            Direction::Both => vec![&mut self.to_target, &mut self.to_initiator],
            Direction::ToTarget => vec![&mut self.to_target],
            Direction::ToInitiator => vec![&mut self.to_initiator],
        }
    }

    /// Installs `qdisc` on the end(s) of `direction`.
    pub fn shape(&mut self, direction: Direction, qdisc: &Qdisc) -> Result<()> {
        for end in self.ends(direction) {
            end.set(qdisc).with_context(|| {
                format!("installing {} on ifindex {}", qdisc.kind(), end.ifindex)
            })?;
        }
        Ok(())
    }

    /// Removes our qdisc from the end(s) of `direction`.
    pub fn clear(&mut self, direction: Direction) -> Result<()> {
        for end in self.ends(direction) {
            end.clear()
                .with_context(|| format!("removing the qdisc on ifindex {}", end.ifindex))?;
        }
        Ok(())
    }

    /// Tells the plug on the end(s) of `direction` to let everything it
    /// holds go, in order (a plug deleted with packets in it would drop
    /// them: wait for [`Switch::held`] to reach 0 first).
    pub fn release(&mut self, direction: Direction) -> Result<()> {
        let release = Qdisc::Plug(crate::sys::tc::Plug {
            action: crate::sys::tc::PlugAction::ReleaseAll,
            limit_bytes: crate::model::action::PLUG_LIMIT_BYTES,
        });
        for end in self.ends(direction) {
            if end.shaped {
                end.set(&release)
                    .with_context(|| format!("releasing the plug on ifindex {}", end.ifindex))?;
            }
        }
        Ok(())
    }

    /// Packets still queued in our qdiscs on the end(s) of `direction`.
    pub fn held(&mut self, direction: Direction) -> u32 {
        self.ends(direction)
            .into_iter()
            .filter(|end| end.shaped)
            .filter_map(|end| end.socket.qdisc_stats(end.ifindex).ok().flatten())
            .map(|st| st.qlen)
            .sum()
    }

    /// Counters of the qdiscs we installed on the end(s) of `direction`
    /// (read before clearing them: deleting a qdisc loses its counters).
    pub fn shaped_stats(&mut self, direction: Direction) -> Vec<(&'static str, QdiscStats)> {
        let mut out = Vec::new();
        for (to_target, end) in [(true, &mut self.to_target), (false, &mut self.to_initiator)] {
            let wanted = match direction {
                Direction::Both => true,
                Direction::ToTarget => to_target,
                Direction::ToInitiator => !to_target,
            };
            if wanted && end.shaped {
                if let Ok(Some(st)) = end.socket.qdisc_stats(end.ifindex) {
                    out.push((side_name(to_target), st));
                }
            }
        }
        out
    }

    /// Clears whatever is still in place (teardown, interrupted timeline).
    pub fn clear_all(&mut self) -> Result<()> {
        let a = self.to_target.clear();
        let b = self.to_initiator.clear();
        let c = self.firewall.remove();
        a.context("clearing the switch port facing the target")?;
        b.context("clearing the switch port facing the initiator")?;
        c.context("removing the firewall rule")?;
        Ok(())
    }

    /// Counters of the qdiscs on both ports (to target, to initiator): proof
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
