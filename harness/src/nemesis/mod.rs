//! The nemesis: carries out a scenario's fault steps and returns what proves
//! each one happened.
//!
//! The runner schedules the steps (when, and which host and path each
//! addresses); [`apply`] executes one on what it may reach ([`Reach`]: the
//! target, its store, and the addressed paths' lanes and switches) and
//! answers with its evidence, typed history events stamped when they were
//! read: a qdisc's counters before it is removed, the firewall rule's
//! counter, the target's pids, link and port states, the store's table.
//!
//! Faults of the fabric happen in each path's switch ([`switch`]), in the
//! middle, where neither endpoint's stack sees them; resets are an nftables
//! bridge table in the same switch ([`firewall`]). Only the target's own
//! behaviour (process, portal, ACL, store) and the host's own cable
//! (`link_down`) are acted on at an end.

pub mod firewall;
pub mod switch;

use anyhow::{Context, Result};
use guest_probes::monotonic_now;

use crate::env::lane::Lane;
use crate::env::target::slow_store::SlowStore;
use crate::env::target::{StopMode, Target};
use crate::history::{Effect, Event};
pub use crate::plan::{Action, Step};
pub use switch::Switch;

/// What a step may act on.
pub struct Reach<'a> {
    pub target: Option<&'a mut Target>,
    pub store: Option<&'a mut SlowStore>,
    /// The paths the step addresses, each with its number.
    pub paths: Vec<PathReach<'a>>,
}

/// One path as a step reaches it: its lane (cable and switch ports) and
/// the nemesis's hold on its switch.
pub struct PathReach<'a> {
    pub path: u8,
    pub lane: &'a Lane,
    pub switch: &'a mut Switch,
}

/// What a step did, in the order it was read: history events with their
/// times (CLOCK_MONOTONIC).
pub type Evidence = Vec<(f64, Event)>;

/// A side's name in evidence: as it is on path 0, `side@path<N>` beyond.
pub fn on_path(side: &str, path: u8) -> String {
    match path {
        0 => side.to_string(),
        p => format!("{side}@path{p}"),
    }
}

/// How long a released plug may take to drain before it is removed
/// anyway (a veth passes thousands of frames in milliseconds).
const RELEASE_WAIT_S: f64 = 2.0;

/// Carries out `step` on `reach`. What it did is appended to `evidence`
/// as it happens, so a step that fails half-way still leaves its proof of
/// the parts that were done.
pub async fn apply(reach: Reach<'_>, step: &Step, evidence: &mut Evidence) -> Result<()> {
    let fault = step.fault;
    let mut effect = |effect: Effect| {
        evidence.push((
            monotonic_now(),
            Event::Effect {
                step: fault,
                effect,
            },
        ));
    };
    let Reach {
        target,
        store,
        mut paths,
    } = reach;
    match &step.action {
        Action::Shape { direction, qdisc } => {
            for p in &mut paths {
                p.switch.shape(*direction, qdisc)?;
            }
        }
        Action::Clear { direction } | Action::Release { direction } => {
            for p in &mut paths {
                if matches!(step.action, Action::Release { .. }) {
                    p.switch.release(*direction)?;
                    let until = monotonic_now() + RELEASE_WAIT_S;
                    while p.switch.held(*direction) > 0 && monotonic_now() < until {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
                for (side, st) in p.switch.shaped_stats(*direction) {
                    evidence.push((
                        monotonic_now(),
                        Event::Qdisc {
                            step: fault,
                            side: on_path(side, p.path),
                            kind: st.kind,
                            packets: st.packets,
                            bytes: st.bytes,
                            drops: u64::from(st.drops),
                        },
                    ));
                }
                p.switch.clear(*direction)?;
            }
        }
        Action::Firewall { rule } => {
            for p in &mut paths {
                p.switch.firewall().install(*rule)?;
            }
        }
        Action::ClearFirewall => {
            for p in &mut paths {
                let firewall = p.switch.firewall();
                let matched = firewall.matched();
                let rule = firewall.installed().map(|r| r.name());
                firewall.remove()?;
                evidence.push((
                    monotonic_now(),
                    Event::Firewall {
                        step: fault,
                        rule: rule.unwrap_or("none").to_string(),
                        packets: matched.context("reading the firewall rule's counter")?,
                    },
                ));
            }
        }
        Action::StopTarget => {
            let target = target.context("no target")?;
            let pid = target.pid();
            target
                .stop_process(StopMode::Kill)
                .await
                .context("stopping the target")?;
            effect(Effect::TargetKilled { pid });
        }
        Action::StartTarget => {
            let target = target.context("no target")?;
            target
                .start_process()
                .await
                .context("starting the target again")?;
            let pid = target.pid();
            effect(Effect::TargetStarted { pid });
        }
        Action::SetPortal { present } => {
            let detail = target
                .context("no target")?
                .set_portal(*present)
                .await
                .context("changing the target's portal")?;
            effect(Effect::Portal {
                present: *present,
                detail,
            });
        }
        Action::SetAccess { allowed } => {
            let detail = target
                .context("no target")?
                .set_initiator_access(*allowed)
                .await
                .context("changing the initiator's access")?;
            effect(Effect::Access {
                allowed: *allowed,
                detail,
            });
        }
        Action::SetLink { end, up } => {
            for p in &paths {
                let oper = p
                    .lane
                    .set_end_up(*end, *up)
                    .await
                    .with_context(|| format!("setting the {} end of the link", end.as_str()))?;
                effect(Effect::Link {
                    end: on_path(end.as_str(), p.path),
                    up: *up,
                    oper,
                });
            }
        }
        Action::SetPortMtu { mtu } => {
            for p in &paths {
                // Read first: at the end of the fault, the drops during it.
                let (a, b) = p.lane.port_rx_dropped().await?;
                let mtu = mtu.unwrap_or(p.lane.mtu());
                p.lane.set_port_mtu(mtu).await?;
                effect(Effect::PortMtu {
                    mtu,
                    rx_dropped: [a, b],
                });
            }
        }
        Action::SetPort { side, forwarding } => {
            for p in &paths {
                let state = p.lane.set_port_forwarding(*side, *forwarding).await?;
                effect(Effect::Port {
                    port: on_path(side.as_str(), p.path),
                    forwarding: *forwarding,
                    state,
                });
            }
        }
        Action::SetStoreDelay { ms } => {
            let store = store.context("no slow store")?;
            store
                .set_delay(ms.round() as u64)
                .await
                .context("switching the store's delay")?;
            let table = store.table().await.unwrap_or_default();
            effect(Effect::StoreDelay {
                name: store.name().to_string(),
                ms: store.delay_ms(),
                table,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_beyond_path_0_carry_their_path() {
        assert_eq!(on_path("to_target", 0), "to_target");
        assert_eq!(on_path("initiator", 2), "initiator@path2");
    }
}
