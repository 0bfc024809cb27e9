//! Lanes: per lane, a target network namespace and a switch between it and
//! the initiator, with a subnet of its own (LIO matches portals by address
//! alone, so two lanes must never share one). The initiator end stays in the
//! root namespace.
//!
//! ```text
//!   root ns            switch ns (bridge)              target ns
//!   host_veth <-> initiator_port ==br== target_port <-> target_veth
//! ```
//!
//! The switch is a Linux bridge in a namespace of its own: faults a fabric
//! causes (loss, delay, blackholes, a port down, a port with a smaller MTU)
//! are put on its ports, so neither endpoint's stack sees anything local.
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

use anyhow::{anyhow, bail, Context, Result};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};

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
    /// Which of the lane's paths this is: 0 is the lane itself (it owns the
    /// target's namespace); a further path has its own switch, veths and
    /// subnet, and its target end in path 0's namespace.
    path: u8,
    /// The run's ledger, as this lane's: everything made for the lane
    /// (here, by the target, the initiator, the nemesis) is written in it.
    ledger: Ledger,
    names: LaneNames,
    netns: Option<NetNs>,
    switch: Option<NetNs>,
    host_ifindex: u32,
    target_ifindex: u32,
    /// The switch's ports (inside the switch's namespace).
    initiator_port_ifindex: u32,
    target_port_ifindex: u32,
    /// The hosts' MTU (the lane's).
    mtu: u32,
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
        Self::create_path_partial(run_id, index, 0, None, stage).await
    }

    /// Builds path `path` (1 or more) of lane `first`: a switch and a
    /// subnet of its own, its target end in `first`'s namespace (one target,
    /// one more portal). On failure everything it created is removed again.
    pub async fn create_path(first: &Lane, path: u8) -> Result<Lane> {
        let ns = first.netns.clone().context("the lane has no namespace")?;
        Self::create_path_partial(
            &first.run_id,
            first.index,
            path,
            Some(ns),
            LaneStage::Complete,
        )
        .await
    }

    async fn create_path_partial(
        run_id: &str,
        index: u8,
        path: u8,
        shared: Option<NetNs>,
        stage: LaneStage,
    ) -> Result<Lane> {
        check_run_id(run_id).map_err(anyhow::Error::msg)?;
        let names = path_names(run_id, index, path);
        let root = root_handle()?;
        // Claimed before creating anything: the subnet must be ours alone.
        let slot = claim_slot(&root, index).await?;
        let (initiator_addr, target_addr) = lane_addresses(slot.index);
        let mut lane = Lane {
            run_id: run_id.to_string(),
            index,
            path,
            ledger: Ledger::of_run(run_id).lane(index),
            names,
            netns: None,
            switch: None,
            host_ifindex: 0,
            target_ifindex: 0,
            initiator_port_ifindex: 0,
            target_port_ifindex: 0,
            mtu: DEFAULT_MTU,
            initiator_addr,
            target_addr,
            slot,
        };
        match lane.build(&root, shared, stage).await {
            Ok(()) => Ok(lane),
            Err(e) => {
                if let Err(ce) = lane.destroy().await {
                    tracing::warn!(lane = index, error = %ce, "cleanup after failed lane creation");
                }
                let what = match path {
                    0 => String::new(),
                    p => format!("path {p} of "),
                };
                Err(e.context(format!("creating {what}lane {index} of run {run_id}")))
            }
        }
    }

    async fn build(
        &mut self,
        root: &Handle,
        shared: Option<NetNs>,
        stage: LaneStage,
    ) -> Result<()> {
        let names = self.names.clone();
        tracing::debug!(?names, "creating lane");
        let ns = match shared {
            Some(ns) => ns,
            None => self.make_netns(&names.netns).await?,
        };
        self.netns = Some(ns.clone());
        let switch = self.make_netns(&names.switch_netns).await?;
        self.switch = Some(switch.clone());
        if stage == LaneStage::Netns {
            return Ok(());
        }

        // Both pairs are made in the root namespace, then their ends moved.
        // A host end stands for its pair: deleting it deletes its peer,
        // wherever the peer is.
        let initiator_port = self
            .make_pair(root, &names.host_veth, &names.initiator_port)
            .await?;
        self.host_ifindex = link_index(root, &names.host_veth)
            .await?
            .ok_or_else(|| anyhow!("veth {} vanished", names.host_veth))?;
        let target_port = self
            .make_pair(root, &names.target_veth, &names.target_port)
            .await?;
        let target_end = link_index(root, &names.target_veth)
            .await?
            .ok_or_else(|| anyhow!("veth {} vanished", names.target_veth))?;
        if stage == LaneStage::VethPair {
            return Ok(());
        }

        move_link(root, initiator_port, &switch, &names.initiator_port).await?;
        move_link(root, target_port, &switch, &names.target_port).await?;
        move_link(root, target_end, &ns, &names.target_veth).await?;
        if stage == LaneStage::VethMoved {
            return Ok(());
        }

        // The switch: a bridge joining its two ports (no STP: the ports
        // forward at once).
        let sw = netns_handle(&switch)?;
        sw.link()
            .add(LinkBridge::new(&names.bridge).build())
            .execute()
            .await
            .with_context(|| format!("add bridge {}", names.bridge))?;
        let bridge = link_index(&sw, &names.bridge)
            .await?
            .ok_or_else(|| anyhow!("bridge {} vanished", names.bridge))?;
        for port in [&names.initiator_port, &names.target_port] {
            let index = link_index(&sw, port)
                .await?
                .ok_or_else(|| anyhow!("{port} not found in {}", switch.name()))?;
            sw.link()
                .set(LinkUnspec::new_with_index(index).controller(bridge).build())
                .execute()
                .await
                .with_context(|| format!("attach {port} to {}", names.bridge))?;
            set_up(&sw, index).await?;
            if *port == names.initiator_port {
                self.initiator_port_ifindex = index;
            } else {
                self.target_port_ifindex = index;
            }
        }
        set_up(&sw, bridge).await?;

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

    /// Writes namespace `name` in the ledger, then makes it.
    async fn make_netns(&self, name: &str) -> Result<NetNs> {
        self.ledger.record(Object::Netns {
            name: name.to_string(),
        })?;
        let n = name.to_string();
        Ok(crate::sys::blocking::spawn(move || NetNs::create(&n)).await??)
    }

    /// Writes veth `end` in the ledger, then makes the pair `end`/`peer` in
    /// the root namespace; returns the peer's ifindex.
    async fn make_pair(&self, root: &Handle, end: &str, peer: &str) -> Result<u32> {
        self.ledger.record(Object::Veth {
            name: end.to_string(),
        })?;
        root.link()
            .add(LinkVeth::new(end, peer).build())
            .execute()
            .await
            .with_context(|| format!("add veth {end}/{peer}"))?;
        link_index(root, peer)
            .await?
            .ok_or_else(|| anyhow!("veth {peer} vanished"))
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
        for name in [
            &self.names.target_veth,
            &self.names.initiator_port,
            &self.names.target_port,
        ] {
            if let Err(e) = delete_link_by_name(&root, name).await {
                errors.push(e);
            }
        }
        self.netns = None;
        self.switch = None;
        // A further path's target namespace is path 0's: not ours to remove.
        let mut namespaces = vec![self.names.switch_netns.clone()];
        if self.path == 0 {
            namespaces.insert(0, self.names.netns.clone());
        }
        for ns_name in namespaces {
            if let Err(e) = crate::sys::blocking::spawn(move || kill_and_delete_netns(&ns_name))
                .await
                .and_then(|r| r)
            {
                errors.push(e);
            }
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(e.context(format!(
                "destroying lane {} (path {})",
                self.index, self.path
            ))),
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
    /// Which path of its lane this is (0: the lane itself).
    pub fn path(&self) -> u8 {
        self.path
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
    /// The switch's namespace (None once destroyed, or if creation stopped
    /// before it).
    pub fn switch(&self) -> Option<&NetNs> {
        self.switch.as_ref()
    }
    /// ifindex of the switch's port facing `side`, in the switch's namespace.
    pub fn port_ifindex(&self, side: LinkSide) -> u32 {
        match side {
            LinkSide::Initiator => self.initiator_port_ifindex,
            LinkSide::Target => self.target_port_ifindex,
        }
    }
    /// Name of the switch's port facing `side`.
    pub fn port_name(&self, side: LinkSide) -> &str {
        match side {
            LinkSide::Initiator => &self.names.initiator_port,
            LinkSide::Target => &self.names.target_port,
        }
    }
    /// ifindex of the host (initiator-side) veth, in the root namespace.
    pub fn host_ifindex(&self) -> u32 {
        self.host_ifindex
    }
    /// ifindex of the target-side veth, inside the lane's namespace.
    pub fn target_ifindex(&self) -> u32 {
        self.target_ifindex
    }
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

    fn switch_handle(&self) -> Result<Handle> {
        netns_handle(self.switch.as_ref().context("the lane has no switch")?)
    }

    /// The lane's MTU on both hosts and the switch's ports (jumbo frames).
    /// A lane with a larger MTU than Ethernet's also has the hosts cut
    /// their own wire-sized frames (segmentation offload off), so an MTU
    /// fault in the switch sees each frame as a switch would.
    pub async fn set_mtu(&mut self, mtu: u32) -> Result<()> {
        set_mtu(&root_handle()?, self.host_ifindex, mtu).await?;
        let ns = self.netns.as_ref().context("the lane has no namespace")?;
        set_mtu(&netns_handle(ns)?, self.target_ifindex, mtu).await?;
        self.set_port_mtu(mtu).await?;
        self.mtu = mtu;
        if mtu > DEFAULT_MTU {
            let on = false;
            let host = self.names.host_veth.clone();
            crate::sys::ethtool::set_segmentation_offload(&host, on)
                .with_context(|| format!("segmentation offload off on {host}"))?;
            let target = self.names.target_veth.clone();
            ns.run_in(move || crate::sys::ethtool::set_segmentation_offload(&target, on))?
                .with_context(|| {
                    format!("segmentation offload off on {}", self.names.target_veth)
                })?;
        }
        Ok(())
    }

    /// Makes the initiator's end send frames that own their bytes
    /// (scatter-gather off: no zero-copy), so a frame the switch holds
    /// keeps what was sent even when the sender reuses its buffer.
    pub fn copy_at_send(&self) -> Result<()> {
        let host = &self.names.host_veth;
        crate::sys::ethtool::set_scatter_gather(host, false)
            .with_context(|| format!("scatter-gather off on {host}"))?;
        anyhow::ensure!(
            !crate::sys::ethtool::scatter_gather(host)?,
            "scatter-gather stays on on {host}"
        );
        Ok(())
    }

    /// The hosts' MTU.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Sets the MTU of both of the switch's ports: frames larger than it
    /// are dropped as they come in (counted in the port's rx_dropped), as a
    /// switch not set up for jumbo frames drops them.
    pub async fn set_port_mtu(&self, mtu: u32) -> Result<()> {
        let sw = self.switch_handle()?;
        for side in [LinkSide::Initiator, LinkSide::Target] {
            set_mtu(&sw, self.port_ifindex(side), mtu)
                .await
                .with_context(|| format!("the switch port {}", self.port_name(side)))?;
        }
        Ok(())
    }

    /// Frames each of the switch's ports dropped as they came in so far
    /// (initiator's side, target's side).
    pub async fn port_rx_dropped(&self) -> Result<(u64, u64)> {
        let sw = self.switch_handle()?;
        Ok((
            rx_dropped(&sw, self.initiator_port_ifindex).await?,
            rx_dropped(&sw, self.target_port_ifindex).await?,
        ))
    }

    /// Stops (false) or resumes (true) forwarding on the switch's port
    /// facing `side` (bridge port state disabled / forwarding): the host
    /// keeps its carrier. Returns the port's state after the change.
    pub async fn set_port_forwarding(&self, side: LinkSide, forwarding: bool) -> Result<String> {
        let sw = self.switch_handle()?;
        let index = self.port_ifindex(side);
        set_bridge_port_state(&sw, index, forwarding)
            .await
            .with_context(|| format!("the switch port {}", self.port_name(side)))?;
        bridge_port_state(&sw, index).await
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
