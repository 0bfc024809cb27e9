//! Lanes: one target network namespace behind one veth pair per lane, with a
//! subnet of its own (LIO matches portals by address alone, so two lanes must
//! never share one). The initiator end stays in the root namespace.
//!
//! Lane `n` uses 10.213.n.0/24: initiator 10.213.n.1 (root namespace, host
//! veth), target 10.213.n.2 (in the lane's namespace).
//!
//! Names are derived from the run id alone, so a crashed run's leftovers can be
//! found again with [`cleanup_run`] / [`cleanup_all_runs`].

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::{Handle, LinkUnspec, LinkVeth};

use crate::ledger::{Ledger, Object};
use crate::netns::{NetNs, NETNS_PREFIX};

/// Every veth this harness creates starts with this.
pub const VETH_PREFIX: &str = "icX";

/// Second octet of the lanes' 10.x.0.0/16.
const SUBNET_OCTET: u8 = 213;

/// Lane subnet prefix length.
pub const LANE_PREFIX_LEN: u8 = 24;

/// iSCSI's well-known port; each lane has its own address, so no clash.
pub const ISCSI_PORT: u16 = 3260;

/// Check a run id: it becomes part of namespace names and of IQNs.
pub fn check_run_id(run_id: &str) -> Result<()> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 64
        && run_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        bail!("invalid run id {run_id:?}: use 1-64 of [a-z0-9-]");
    }
    Ok(())
}

/// Six base-36 characters standing for the run id in veth names (15 bytes at
/// most). A hash rather than a prefix: run ids that start alike (dates) must
/// still give different veth names.
pub fn run_tag(run_id: &str) -> String {
    let mut h = run_hash(run_id);
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut tag = String::with_capacity(6);
    for _ in 0..6 {
        tag.push(digits[(h % 36) as usize] as char);
        h /= 36;
    }
    tag
}

/// Stable hash of a run id (veth tags, per-run port numbers). FNV-1a:
/// stable across builds and platforms, unlike `DefaultHasher`.
pub fn run_hash(run_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Names of everything a lane creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneNames {
    pub netns: String,
    /// Root-namespace end (the initiator's side).
    pub host_veth: String,
    /// End moved into the lane's namespace (the target's side).
    pub target_veth: String,
}

/// Namespace names of a run all start with this.
pub fn netns_prefix_for_run(run_id: &str) -> String {
    format!("{NETNS_PREFIX}{run_id}-")
}

/// Whether `name` is a lane namespace of exactly this run (run `ab` must not
/// match run `ab-1`'s `iscsi-chaos-ab-1-0`).
pub fn is_netns_of_run(name: &str, run_id: &str) -> bool {
    name.strip_prefix(&netns_prefix_for_run(run_id))
        .is_some_and(|lane| !lane.is_empty() && lane.bytes().all(|b| b.is_ascii_digit()))
}

/// Veth names of a run all start with this.
pub fn veth_prefix_for_run(run_id: &str) -> String {
    format!("{VETH_PREFIX}{}", run_tag(run_id))
}

pub fn lane_names(run_id: &str, index: u8) -> LaneNames {
    let veth = veth_prefix_for_run(run_id);
    LaneNames {
        netns: format!("{}{index}", netns_prefix_for_run(run_id)),
        host_veth: format!("{veth}i{index}"),
        target_veth: format!("{veth}t{index}"),
    }
}

/// Whether `name` has exactly the shape of one of our veth names
/// (`icX` + 6 base-36 + `i`|`t` + lane number), so cleanup can never take
/// someone else's interface that merely starts with the same letters.
pub fn is_our_veth_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(VETH_PREFIX) else {
        return false;
    };
    if rest.len() < 8 || !rest.is_ascii() {
        return false;
    }
    let (tag, rest) = rest.split_at(6);
    let (side, num) = rest.split_at(1);
    tag.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && (side == "i" || side == "t")
        && !num.is_empty()
        && num.len() <= 3
        && num.bytes().all(|b| b.is_ascii_digit())
        && num.parse::<u16>().is_ok_and(|n| n <= 255)
}

/// (initiator address, target address) of lane `index`.
pub fn lane_addresses(index: u8) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::new(10, SUBNET_OCTET, index, 1),
        Ipv4Addr::new(10, SUBNET_OCTET, index, 2),
    )
}

fn in_lane_subnet(addr: Ipv4Addr, index: u8) -> bool {
    let o = addr.octets();
    o[0] == 10 && o[1] == SUBNET_OCTET && o[2] == index
}

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
}

/// A rtnetlink handle in the root namespace (its connection runs on the
/// current tokio runtime until the handle is dropped).
pub fn root_handle() -> Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection().context("netlink socket")?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A rtnetlink handle whose socket lives in `ns`: it is opened on a thread
/// switched into the namespace, and its connection is driven on the current
/// tokio runtime.
pub fn netns_handle(ns: &NetNs) -> Result<Handle> {
    let rt = tokio::runtime::Handle::current();
    let (conn, handle, _) = ns
        .run_in(|| {
            // The socket registers with the runtime's reactor when created.
            let _guard = rt.enter();
            rtnetlink::new_connection()
        })?
        .with_context(|| format!("netlink socket in {}", ns.name()))?;
    tokio::spawn(conn);
    Ok(handle)
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

/// Index of link `name`, or None if there is none.
pub async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(anyhow!(e).context(format!("get link {name}"))),
    }
}

async fn set_up(handle: &Handle, index: u32) -> Result<()> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .with_context(|| format!("set link {index} up"))
}

async fn set_mtu(handle: &Handle, index: u32, mtu: u32) -> Result<()> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
        .execute()
        .await
        .with_context(|| format!("set link {index} mtu {mtu}"))
}

/// What one interface looks like, read back through rtnetlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub ipv4: Vec<(Ipv4Addr, u8)>,
}

/// Read back link `name` (flags and IPv4 addresses) through `handle`.
pub async fn link_state(handle: &Handle, name: &str) -> Result<Option<LinkState>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    let msg = match links.try_next().await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => return Ok(None),
        Err(e) => return Err(anyhow!(e).context(format!("get link {name}"))),
    };
    let index = msg.header.index;
    let up = msg.header.flags.contains(LinkFlags::Up);
    let mut ipv4 = Vec::new();
    let mut addrs = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(a) = addrs.try_next().await.context("get addresses")? {
        for attr in &a.attributes {
            if let AddressAttribute::Address(IpAddr::V4(v4)) = attr {
                ipv4.push((*v4, a.header.prefix_len));
            }
        }
    }
    Ok(Some(LinkState {
        index,
        name: name.to_string(),
        up,
        ipv4,
    }))
}

fn link_name(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn is_veth(msg: &LinkMessage) -> bool {
    msg.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth))),
        _ => false,
    })
}

/// Delete link `name` of the root namespace if it exists (for the ledger).
pub(crate) async fn delete_root_link(name: &str) -> Result<()> {
    delete_link_by_name(&root_handle()?, name).await.map(drop)
}

/// Delete link `name` if it exists. Ok if it is already gone.
async fn delete_link_by_name(handle: &Handle, name: &str) -> Result<bool> {
    let Some(index) = link_index(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(false),
        Err(e) => Err(anyhow!(e).context(format!("delete link {name}"))),
    }
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
        check_run_id(run_id)?;
        let names = lane_names(run_id, index);
        let (initiator_addr, target_addr) = lane_addresses(index);
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
        };
        let root = root_handle()?;
        // Refuse before creating anything: the subnet must be ours alone.
        if let Some(owner) = subnet_user(&root, index).await? {
            bail!(
                "lane {index}: subnet 10.{SUBNET_OCTET}.{index}.0/24 is already in use on {owner}"
            );
        }
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

/// Processes whose network namespace is `ns` (by inode and device).
pub fn pids_in_netns(ns: &NetNs) -> Vec<i32> {
    let Ok(st) = nix::sys::stat::fstat(ns.fd()) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            nix::sys::stat::stat(format!("/proc/{pid}/ns/net").as_str())
                .is_ok_and(|s| s.st_ino == st.st_ino && s.st_dev == st.st_dev)
        })
        .collect()
}

/// Kill whatever still runs in our namespace `name` (only processes we put
/// there: nothing else enters an iscsi-chaos namespace), then remove it.
pub(crate) fn kill_and_delete_netns(name: &str) -> Result<()> {
    if let Ok(ns) = NetNs::open(name) {
        let pids = pids_in_netns(&ns);
        for pid in &pids {
            tracing::warn!(
                pid,
                netns = name,
                "killing leftover process in lane namespace"
            );
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Give the kernel a moment to reap them so the namespace can go.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !pids_in_netns(&ns).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    NetNs::delete_by_name(name)?;
    Ok(())
}

/// What a cleanup removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    pub netns: Vec<String>,
    pub veths: Vec<String>,
}

/// Remove every namespace and veth of run `run_id` (after a crash, or as the
/// last step of a run).
pub async fn cleanup_run(run_id: &str) -> Result<CleanupReport> {
    check_run_id(run_id)?;
    cleanup_matching(
        |ns| is_netns_of_run(ns, run_id),
        |v| v.starts_with(&veth_prefix_for_run(run_id)),
    )
    .await
}

/// Remove the leftovers of every iscsi-chaos run on this machine. Only names
/// with our prefixes are touched. Do not call it while other runs are live.
pub async fn cleanup_all_runs() -> Result<CleanupReport> {
    cleanup_matching(|_| true, |_| true).await
}

async fn cleanup_matching(
    netns_filter: impl Fn(&str) -> bool,
    veth_filter: impl Fn(&str) -> bool,
) -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    let root = root_handle()?;
    let mut victims = Vec::new();
    {
        let mut links = root.link().get().execute();
        while let Some(msg) = links.try_next().await.context("list links")? {
            if let Some(name) = link_name(&msg) {
                if is_veth(&msg) && is_our_veth_name(name) && veth_filter(name) {
                    victims.push(name.to_string());
                }
            }
        }
    }
    for name in victims {
        if delete_link_by_name(&root, &name).await? {
            report.veths.push(name);
        }
    }
    for name in NetNs::list_ours() {
        if !netns_filter(&name) {
            continue;
        }
        let n = name.clone();
        tokio::task::spawn_blocking(move || kill_and_delete_netns(&n))
            .await
            .context("join netns removal")??;
        report.netns.push(name);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz() {
        let n = lane_names("20261122-0315-abcdef", 255);
        assert!(n.host_veth.len() <= 15, "{}", n.host_veth);
        assert!(n.target_veth.len() <= 15);
        assert_eq!(n.netns, "iscsi-chaos-20261122-0315-abcdef-255");
        assert!(n.host_veth.starts_with("icX"));
        assert!(n.host_veth.ends_with("i255"));
        assert!(n.target_veth.ends_with("t255"));
        assert!(is_our_veth_name(&n.host_veth));
        assert!(is_our_veth_name(&n.target_veth));
    }

    #[test]
    fn run_filter_is_exact() {
        assert!(is_netns_of_run("iscsi-chaos-ab-0", "ab"));
        assert!(is_netns_of_run("iscsi-chaos-ab-12", "ab"));
        assert!(!is_netns_of_run("iscsi-chaos-ab-1-0", "ab"));
        assert!(!is_netns_of_run("iscsi-chaos-ab-", "ab"));
        assert!(!is_netns_of_run("other-ab-0", "ab"));
    }

    #[test]
    fn similar_run_ids_get_different_tags() {
        assert_ne!(run_tag("20261122-a"), run_tag("20261122-b"));
        assert_eq!(run_tag("abc"), run_tag("abc"));
        assert_eq!(run_tag("abc").len(), 6);
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for n in [
            "eth0",
            "icX",
            "icXabc",
            "icXabcdefi",
            "icXabcdefx1",
            "icXabcdefi1000",
            "icXabcdefi256",
            "icXABCDEFi1",
            "veth0",
        ] {
            assert!(!is_our_veth_name(n), "{n}");
        }
        assert!(is_our_veth_name("icXabc123t0"));
    }

    #[test]
    fn run_ids_are_checked() {
        assert!(check_run_id("ab-12").is_ok());
        assert!(check_run_id("").is_err());
        assert!(check_run_id("Ab").is_err());
        assert!(check_run_id("a/b").is_err());
        assert!(check_run_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn lane_addresses_share_a_subnet() {
        let (i, t) = lane_addresses(7);
        assert_eq!(i, Ipv4Addr::new(10, 213, 7, 1));
        assert_eq!(t, Ipv4Addr::new(10, 213, 7, 2));
        assert!(in_lane_subnet(i, 7) && in_lane_subnet(t, 7));
        assert!(!in_lane_subnet(t, 8));
    }
}
