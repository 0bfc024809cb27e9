//! The nemesis: puts a scenario's fault steps in place and clears them.
//!
//! netem shapes only egress, so each direction is a qdisc on the sending end
//! of the lane's veth: the host end for initiator-to-target traffic, the
//! target end (inside the lane's namespace) for target-to-initiator traffic.
//! The target end's netlink socket is opened on a thread switched into the
//! namespace; after that it is used from anywhere.
//!
//! Resets and MTU faults (oversize frames dropped on the path) are nftables
//! rules in the lane's namespace ([`crate::firewall`]).
//!
//! Invariant: only the root qdisc of our own veth ends is ever replaced or
//! deleted, only our own table in the lane's namespace is added or deleted,
//! and `clear_all` leaves both ends at the kernel's default.

use std::io;
use std::net::SocketAddrV4;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::firewall::{Firewall, Rule};
use crate::history::FaultPhase;
use crate::ledger::{Ledger, Object};
use crate::scenario::{Direction, Fault, FaultKind, NetemSpec};
use crate::tc::{Netem, NetemRate, Qdisc, QdiscStats, RouteSocket, Tbf};
use crate::topology::Lane;

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

pub struct Nemesis {
    /// Host end: shapes initiator-to-target packets.
    to_target: LinkEnd,
    /// Target end: shapes target-to-initiator packets.
    to_initiator: LinkEnd,
    /// The reset rule in the lane's namespace.
    firewall: Firewall,
}

/// A blackhole: netem `loss 100%`.
pub fn blackhole() -> Qdisc {
    Qdisc::Netem(Netem {
        loss: 100.0,
        ..Netem::default()
    })
}

/// netem for a scenario's impairments (tc's units: `delay 50ms 100ms loss 5%`).
pub fn netem_for(spec: &NetemSpec) -> Netem {
    let ms = |x: f64| Duration::from_secs_f64(x / 1000.0);
    Netem {
        delay: ms(spec.delay_ms),
        jitter: ms(spec.jitter_ms),
        loss: spec.loss_pct,
        duplicate: spec.duplicate_pct,
        corrupt: spec.corrupt_pct,
        reorder: spec.reorder_pct,
        rate: spec.rate_kbit.map(|k| NetemRate {
            bytes_per_s: k * 1000 / 8,
            packet_overhead: 0,
            cell_size: 0,
            cell_overhead: 0,
        }),
        ..Netem::default()
    }
}

/// A bandwidth cap of `rate_kbit`: a bucket of 20 ms at that rate (at least
/// 64 KiB, so a GSO super-packet of a veth fits) and 200 ms of queue.
pub fn tbf_for(rate_kbit: u64) -> Tbf {
    let rate = rate_kbit * 1000 / 8;
    let burst = (rate / 50).max(64 * 1024);
    Tbf {
        rate_bytes_per_s: rate,
        burst_bytes: u32::try_from(burst).unwrap_or(u32::MAX),
        limit_bytes: u32::try_from(burst + rate / 5).unwrap_or(u32::MAX),
    }
}

/// What the nemesis does at one instant of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Install this qdisc on the sending end(s) of `direction`.
    Shape { direction: Direction, qdisc: Qdisc },
    /// Remove our qdisc from the end(s) of `direction`.
    Clear { direction: Direction },
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
}

/// One step of the fault timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Seconds from the start of the I/O phase.
    pub at_s: f64,
    /// The fault's index in the file (the history's `step`).
    pub fault: usize,
    pub phase: FaultPhase,
    pub kind: &'static str,
    pub action: Action,
}

/// The timeline of a scenario's faults, in time order: a begin and an end
/// per fault, per pulse for a flap.
pub fn plan(faults: &[Fault]) -> Vec<Step> {
    let mut steps = Vec::new();
    for f in faults {
        let (begin, end) = match f.kind {
            FaultKind::Blackhole { direction } | FaultKind::Flap { direction, .. } => (
                Action::Shape {
                    direction,
                    qdisc: blackhole(),
                },
                Action::Clear { direction },
            ),
            FaultKind::Netem { direction, spec } => (
                Action::Shape {
                    direction,
                    qdisc: Qdisc::Netem(netem_for(&spec)),
                },
                Action::Clear { direction },
            ),
            FaultKind::Tbf {
                direction,
                rate_kbit,
            } => (
                Action::Shape {
                    direction,
                    qdisc: Qdisc::Tbf(tbf_for(rate_kbit)),
                },
                Action::Clear { direction },
            ),
            FaultKind::Reset { .. } => (
                Action::Firewall { rule: Rule::Reset },
                Action::ClearFirewall,
            ),
            FaultKind::Mtu { mtu } => (
                Action::Firewall {
                    rule: Rule::DropOversize { mtu },
                },
                Action::ClearFirewall,
            ),
            FaultKind::TargetStop => (Action::StopTarget, Action::StartTarget),
            FaultKind::PortalRemove => (
                Action::SetPortal { present: false },
                Action::SetPortal { present: true },
            ),
            FaultKind::AccessRevoke => (
                Action::SetAccess { allowed: false },
                Action::SetAccess { allowed: true },
            ),
            FaultKind::SlowStore { io_delay_ms } => (
                Action::SetStoreDelay { ms: io_delay_ms },
                Action::SetStoreDelay { ms: 0.0 },
            ),
        };
        for (s, e) in f.pulses() {
            for (at_s, phase, action) in [
                (s, FaultPhase::Begin, begin.clone()),
                (e, FaultPhase::End, end.clone()),
            ] {
                steps.push(Step {
                    at_s,
                    fault: f.index,
                    phase,
                    kind: f.kind.name(),
                    action,
                });
            }
        }
    }
    // Stable: a pulse's end stays before the next begin at the same instant.
    steps.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    steps
}

/// The sending end of a direction, as named in history entries.
pub fn side_name(to_target: bool) -> &'static str {
    if to_target {
        "to_target"
    } else {
        "to_initiator"
    }
}

impl Nemesis {
    /// The nemesis of `lane`, whose target listens at `portal`.
    pub fn new(lane: &Lane, portal: SocketAddrV4) -> Result<Nemesis> {
        let target_ns = lane.netns().context("the lane has no namespace")?;
        let names = lane.names();
        let ledger = lane.ledger().clone();
        let host = RouteSocket::open().context("opening a netlink socket")?;
        let target = target_ns
            .run_in(RouteSocket::open)?
            .context("opening a netlink socket in the lane's namespace")?;
        Ok(Nemesis {
            to_target: LinkEnd {
                socket: host,
                ifindex: lane.host_ifindex() as i32,
                shaped: false,
                entry: Object::Qdisc {
                    netns: None,
                    link: names.host_veth.clone(),
                },
                ledger: ledger.clone(),
                recorded: false,
            },
            to_initiator: LinkEnd {
                socket: target,
                ifindex: lane.target_ifindex() as i32,
                shaped: false,
                entry: Object::Qdisc {
                    netns: Some(target_ns.name().to_string()),
                    link: names.target_veth.clone(),
                },
                ledger: ledger.clone(),
                recorded: false,
            },
            firewall: Firewall::new(target_ns.clone(), portal, ledger),
        })
    }

    /// The firewall rule of reset and MTU faults.
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
        a.context("clearing the host end")?;
        b.context("clearing the target end")?;
        c.context("removing the firewall rule")?;
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
    use crate::scenario::Scenario;

    fn netem(q: &Qdisc) -> &Netem {
        match q {
            Qdisc::Netem(n) => n,
            other => panic!("expected netem, got {}", other.kind()),
        }
    }

    #[test]
    fn a_blackhole_is_total_netem_loss() {
        let n = netem(&blackhole()).clone();
        assert_eq!(n.loss, 100.0);
        assert_eq!(n.delay, Duration::ZERO);
    }

    #[test]
    fn impairments_map_to_netem_options() {
        let n = netem_for(&NetemSpec {
            delay_ms: 50.0,
            jitter_ms: 100.0,
            loss_pct: 5.0,
            duplicate_pct: 1.0,
            corrupt_pct: 0.5,
            reorder_pct: 25.0,
            rate_kbit: Some(8000),
        });
        assert_eq!(n.delay, Duration::from_millis(50));
        assert_eq!(n.jitter, Duration::from_millis(100));
        assert_eq!(
            (n.loss, n.duplicate, n.corrupt, n.reorder),
            (5.0, 1.0, 0.5, 25.0)
        );
        assert_eq!(n.rate.unwrap().bytes_per_s, 1_000_000);
        assert_eq!(n.limit, 1000);
        // And the encoder accepts it (reorder with a delay).
        crate::tc::new_qdisc_request(3, &Qdisc::Netem(n), 1).unwrap();
        let plain = netem_for(&NetemSpec {
            loss_pct: 5.0,
            ..NetemSpec::default()
        });
        assert_eq!(plain.rate, None);
        assert_eq!(plain.delay, Duration::ZERO);
    }

    const HEAD: &str = "version = 1\nduration_s = 40\n[lane]\ntarget = \"tgt\"\n";

    fn plan_of(faults: &str) -> Vec<Step> {
        let s = Scenario::parse(&format!("{HEAD}{faults}"), "p.toml").unwrap();
        plan(&s.faults)
    }

    #[test]
    fn a_flap_is_one_blackhole_per_pulse() {
        let steps = plan_of(
            "[[fault]]\nkind = \"flap\"\ndirection = \"to_initiator\"\non_s = 2\nperiod_s = 5\nstart_s = 3\nduration_s = 12\n",
        );
        let times: Vec<(f64, FaultPhase)> = steps.iter().map(|s| (s.at_s, s.phase)).collect();
        use FaultPhase::*;
        assert_eq!(
            times,
            vec![
                (3.0, Begin),
                (5.0, End),
                (8.0, Begin),
                (10.0, End),
                (13.0, Begin),
                (15.0, End)
            ]
        );
        assert!(steps.iter().all(|s| s.fault == 0 && s.kind == "flap"));
        match &steps[0].action {
            Action::Shape { direction, qdisc } => {
                assert_eq!(*direction, Direction::ToInitiator);
                assert_eq!(netem(qdisc).loss, 100.0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            steps[1].action,
            Action::Clear {
                direction: Direction::ToInitiator
            }
        );
    }

    #[test]
    fn a_last_pulse_is_cut_at_the_fault_end() {
        let steps = plan_of(
            "[[fault]]\nkind = \"flap\"\non_s = 3\nperiod_s = 5\nstart_s = 0\nduration_s = 7\n",
        );
        let ends: Vec<f64> = steps
            .iter()
            .filter(|s| s.phase == FaultPhase::End)
            .map(|s| s.at_s)
            .collect();
        assert_eq!(ends, vec![3.0, 7.0]);
    }

    #[test]
    fn target_stop_and_netem_steps() {
        let steps = plan_of(
            "[[fault]]\nkind = \"target_stop\"\nstart_s = 10\nduration_s = 4\n\
             [[fault]]\nkind = \"netem\"\nloss_pct = 5\ndirection = \"to_target\"\nstart_s = 1\nduration_s = 5\n",
        );
        assert_eq!(steps.len(), 4);
        assert_eq!((steps[0].fault, steps[0].at_s), (1, 1.0));
        match &steps[0].action {
            Action::Shape { direction, qdisc } => {
                assert_eq!(*direction, Direction::ToTarget);
                assert_eq!(netem(qdisc).loss, 5.0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(steps[2].action, Action::StopTarget);
        assert_eq!(
            (steps[3].action.clone(), steps[3].at_s),
            (Action::StartTarget, 14.0)
        );
    }

    #[test]
    fn reset_mtu_and_tbf_steps() {
        let steps = plan_of(
            "[[fault]]\nkind = \"reset\"\non_s = 1\nperiod_s = 4\nstart_s = 1\nduration_s = 6\n\
             [[fault]]\nkind = \"tbf\"\nrate_kbit = 8000\nstart_s = 20\nduration_s = 5\n",
        );
        let actions: Vec<(f64, Action)> =
            steps.iter().map(|s| (s.at_s, s.action.clone())).collect();
        let reset = Action::Firewall { rule: Rule::Reset };
        assert_eq!(
            actions[..4],
            [
                (1.0, reset.clone()),
                (2.0, Action::ClearFirewall),
                (5.0, reset),
                (6.0, Action::ClearFirewall)
            ]
        );
        match &actions[4].1 {
            Action::Shape {
                direction,
                qdisc: Qdisc::Tbf(t),
            } => {
                assert_eq!(*direction, Direction::Both);
                assert_eq!(t.rate_bytes_per_s, 1_000_000);
                assert!(t.burst_bytes >= 64 * 1024 && t.limit_bytes > t.burst_bytes);
            }
            other => panic!("{other:?}"),
        }
        let s = Scenario::parse(
            &format!("{}mtu = 9000\n[[fault]]\nkind = \"mtu\"\nmtu = 1500\nstart_s = 1\nduration_s = 5\n", HEAD),
            "p.toml",
        )
        .unwrap();
        assert_eq!(
            plan(&s.faults)[0].action,
            Action::Firewall {
                rule: Rule::DropOversize { mtu: 1500 }
            }
        );
    }

    #[test]
    fn target_side_faults_begin_and_undo() {
        let steps = plan_of(
            "[[fault]]\nkind = \"portal_remove\"\nstart_s = 1\nduration_s = 2\n\
             [[fault]]\nkind = \"access_revoke\"\nstart_s = 5\nduration_s = 3\n\
             [[fault]]\nkind = \"slow_store\"\nio_delay_ms = 1500\nstart_s = 10\nduration_s = 4\n",
        );
        let got: Vec<(f64, &str, Action)> = steps
            .iter()
            .map(|s| (s.at_s, s.kind, s.action.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1.0, "portal_remove", Action::SetPortal { present: false }),
                (3.0, "portal_remove", Action::SetPortal { present: true }),
                (5.0, "access_revoke", Action::SetAccess { allowed: false }),
                (8.0, "access_revoke", Action::SetAccess { allowed: true }),
                (10.0, "slow_store", Action::SetStoreDelay { ms: 1500.0 }),
                (14.0, "slow_store", Action::SetStoreDelay { ms: 0.0 }),
            ]
        );
    }
}
