//! Lanes: one target network namespace behind one veth pair per lane, with a
//! subnet of its own (LIO matches portals by address alone, so two lanes must
//! never share one). The initiator end stays in the root namespace.
//!
//! A lane's subnet is a host-wide slot ([`LaneSlot`]: an flock under
//! /run/iscsi-chaos/lanes, held while the lane lives), tried from the
//! lane's index on: slot `s` is 10.213.s.0/24, initiator 10.213.s.1 (root
//! namespace, host veth), target 10.213.s.2 (in the lane's namespace). Two
//! processes never get the same slot, and a slot whose subnet is in use
//! (a crashed run's leftovers, anyone else's address) is passed over.
//!
//! Names are derived from the run id alone, so a crashed run's leftovers can be
//! found again with [`cleanup_run`] / [`cleanup_all_runs`].

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use anyhow::{anyhow, bail, Context, Result};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkUnspec, LinkVeth};

use crate::ledger::host::{slots_from, LaneSlot};
use crate::ledger::{Ledger, Object};
use crate::model::action::LinkSide;
pub use crate::model::names::*;
pub use crate::sys::link::*;
use crate::sys::netns::NetNs;

/// How far [`Lane::create_partial`] goes; for tests of cleanup after a
/// half-built lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LaneStage {
    Netns,
    VethPair,
    VethMoved,
    Complete,
}

/// One lane. Drop does not clean up (it cannot await): call
/// [`Lane::destroy`], and [`cleanup_run`] at the end of a run.
#[derive(Debug)]
pub struct Lane {
    run_id: String,
    index: u8,
    /// The run's ledger, as this lane's: everything made for the lane
    /// (here, by the target, the initiator, the nemesis) is written in it.
    ledger: Ledger,
    names: LaneNames,
    netns: Option<NetNs>,
    host_ifindex: u32,
    target_ifindex: u32,
    initiator_addr: Ipv4Addr,
    target_addr: Ipv4Addr,
    /// The subnet's slot, held until the lane is dropped.
    slot: LaneSlot,
}

impl Lane {
    /// Build lane `index` of run `run_id`. On failure everything created so
    /// far is removed again.
    pub async fn create(run_id: &str, index: u8) -> Result<Lane> {
        Self::create_partial(run_id, index, LaneStage::Complete).await
    }

    /// Build the lane only up to `stage` (tests use it to check cleanup of
    /// half-built lanes). Leaves the built part in place on success.
    #[doc(hidden)]
    pub async fn create_partial(run_id: &str, index: u8, stage: LaneStage) -> Result<Lane> {
        check_run_id(run_id).map_err(anyhow::Error::msg)?;
        let names = lane_names(run_id, index);
        let root = root_handle()?;
        // Claimed before creating anything: the subnet must be ours alone.
        let slot = claim_slot(&root, index).await?;
        let (initiator_addr, target_addr) = lane_addresses(slot.index);
        let mut lane = Lane {
            run_id: run_id.to_string(),
            index,
            ledger: Ledger::of_run(run_id).lane(index),
            names,
            netns: None,
            host_ifindex: 0,
            target_ifindex: 0,
            initiator_addr,
            target_addr,
            slot,
        };
        match lane.build(&root, stage).await {
            Ok(()) => Ok(lane),
            Err(e) => {
                if let Err(ce) = lane.destroy().await {
                    tracing::warn!(lane = index, error = %ce, "cleanup after failed lane creation");
                }
                Err(e.context(format!("creating lane {index} of run {run_id}")))
            }
        }
    }

    async fn build(&mut self, root: &Handle, stage: LaneStage) -> Result<()> {
        let names = self.names.clone();
        tracing::debug!(?names, "creating lane");
        let ns_name = names.netns.clone();
        self.ledger.record(Object::Netns {
            name: ns_name.clone(),
        })?;
        let ns = tokio::task::spawn_blocking(move || NetNs::create(&ns_name))
            .await
            .context("join netns creation")??;
        self.netns = Some(ns.clone());
        if stage == LaneStage::Netns {
            return Ok(());
        }

        // The host end stands for the pair: deleting it deletes its peer,
        // wherever the peer is.
        self.ledger.record(Object::Veth {
            name: names.host_veth.clone(),
        })?;
        root.link()
            .add(LinkVeth::new(&names.host_veth, &names.target_veth).build())
            .execute()
            .await
            .with_context(|| format!("add veth {}/{}", names.host_veth, names.target_veth))?;
        self.host_ifindex = link_index(root, &names.host_veth)
            .await?
            .ok_or_else(|| anyhow!("veth {} vanished", names.host_veth))?;
        let peer_index = link_index(root, &names.target_veth)
            .await?
            .ok_or_else(|| anyhow!("veth {} vanished", names.target_veth))?;
        if stage == LaneStage::VethPair {
            return Ok(());
        }

        root.link()
            .set(
                LinkUnspec::new_with_index(peer_index)
                    .setns_by_fd(ns.fd().as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .with_context(|| format!("move {} into {}", names.target_veth, ns.name()))?;
        if stage == LaneStage::VethMoved {
            return Ok(());
        }

        root.address()
            .add(
                self.host_ifindex,
                IpAddr::V4(self.initiator_addr),
                LANE_PREFIX_LEN,
            )
            .execute()
            .await
            .with_context(|| format!("address on {}", names.host_veth))?;
        set_up(root, self.host_ifindex).await?;

        let inner = netns_handle(&ns)?;
        self.target_ifindex = link_index(&inner, &names.target_veth)
            .await?
            .ok_or_else(|| anyhow!("{} not found in {}", names.target_veth, ns.name()))?;
        inner
            .address()
            .add(
                self.target_ifindex,
                IpAddr::V4(self.target_addr),
                LANE_PREFIX_LEN,
            )
            .execute()
            .await
            .with_context(|| format!("address on {}", names.target_veth))?;
        set_up(&inner, self.target_ifindex).await?;
        if let Some(lo) = link_index(&inner, "lo").await? {
            set_up(&inner, lo).await?;
        }
        Ok(())
    }

    /// Remove the lane: its namespace (which takes the target end of the veth
    /// with it once nothing holds the namespace) and the host end (which takes
    /// the peer at once). Idempotent, and works on half-built lanes.
    pub async fn destroy(&mut self) -> Result<()> {
        let root = root_handle()?;
        let mut errors = Vec::new();
        // Deleting the host end deletes its peer wherever it is, even if some
        // open handle still keeps the namespace alive.
        if let Err(e) = delete_link_by_name(&root, &self.names.host_veth).await {
            errors.push(e);
        }
        // If the pair was created but the move failed, the peer is in the
        // root namespace (and already gone with its host end); check anyway.
        if let Err(e) = delete_link_by_name(&root, &self.names.target_veth).await {
            errors.push(e);
        }
        self.netns = None;
        let ns_name = self.names.netns.clone();
        match tokio::task::spawn_blocking(move || kill_and_delete_netns(&ns_name)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(anyhow!(e)),
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(e.context(format!("destroying lane {}", self.index))),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }
    /// The run's ledger, scoped to this lane.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
    pub fn index(&self) -> u8 {
        self.index
    }
    /// The host-wide slot of the lane's subnet.
    pub fn slot(&self) -> u8 {
        self.slot.index
    }
    pub fn names(&self) -> &LaneNames {
        &self.names
    }
    /// The lane's namespace (None once destroyed, or if creation stopped
    /// before it).
    pub fn netns(&self) -> Option<&NetNs> {
        self.netns.as_ref()
    }
    /// ifindex of the host (initiator-side) veth, in the root namespace.
    pub fn host_ifindex(&self) -> u32 {
        self.host_ifindex
    }
    /// ifindex of the target-side veth, inside the lane's namespace.
    pub fn target_ifindex(&self) -> u32 {
        self.target_ifindex
    }
    /// Sets the link MTU of both ends (jumbo frames on the lane's hosts).
    /// Sets one veth end administratively down or up (a pulled cable),
    /// and returns the operational state of the end after the change.
    pub async fn set_end_up(&self, end: LinkSide, up: bool) -> Result<String> {
        let (handle, index) = match end {
            LinkSide::Initiator => (root_handle()?, self.host_ifindex),
            LinkSide::Target => {
                let ns = self.netns.as_ref().context("the lane has no namespace")?;
                (netns_handle(ns)?, self.target_ifindex)
            }
        };
        set_admin(&handle, index, up).await?;
        oper_state(&handle, index).await
    }

    pub async fn set_mtu(&self, mtu: u32) -> Result<()> {
        set_mtu(&root_handle()?, self.host_ifindex, mtu).await?;
        let ns = self.netns.as_ref().context("the lane has no namespace")?;
        set_mtu(&netns_handle(ns)?, self.target_ifindex, mtu).await
    }

    pub fn initiator_addr(&self) -> Ipv4Addr {
        self.initiator_addr
    }
    pub fn target_addr(&self) -> Ipv4Addr {
        self.target_addr
    }
    pub fn prefix_len(&self) -> u8 {
        LANE_PREFIX_LEN
    }
}

/// The first free slot from `preferred` on whose subnet no address of the
/// root namespace uses.
async fn claim_slot(root: &Handle, preferred: u8) -> Result<LaneSlot> {
    let mut busy = Vec::new();
    for index in slots_from(preferred) {
        let Some(slot) = LaneSlot::try_claim(index).context("claiming a lane slot")? else {
            continue;
        };
        match subnet_user(root, index).await? {
            None => return Ok(slot),
            Some(owner) => busy.push(format!("10.{SUBNET_OCTET}.{index}.0/24 on {owner}")),
        }
    }
    bail!(
        "no free lane subnet: every slot is held by a live run or its subnet is in use ({})",
        busy.join(", ")
    )
}

/// Which interface in the root namespace already has an address of lane
/// `index`'s subnet, if any.
async fn subnet_user(root: &Handle, index: u8) -> Result<Option<String>> {
    let mut addrs = root.address().get().execute();
    while let Some(a) = addrs.try_next().await.context("get addresses")? {
        for attr in &a.attributes {
            if let AddressAttribute::Address(IpAddr::V4(v4)) = attr {
                if in_lane_subnet(*v4, index) {
                    return Ok(Some(format!("ifindex {}", a.header.index)));
                }
            }
        }
    }
    Ok(None)
}
