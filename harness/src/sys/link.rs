//! Links through rtnetlink: handles in the root namespace or a lane's,
//! link lookup, up/down, MTU, deletion; processes in a namespace; removal of
//! our namespaces and veths by name.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use std::os::fd::AsRawFd;

use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_route::link::{
    BridgePortState, InfoBridgePort, InfoKind, InfoPortData, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage, LinkProtoInfoBridge,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec};

use crate::model::names::{check_run_id, is_netns_of_run, is_our_veth_name, veth_prefix_for_run};
use crate::sys::netns::NetNs;

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

pub fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
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

pub async fn set_up(handle: &Handle, index: u32) -> Result<()> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .with_context(|| format!("set link {index} up"))
}

/// Sets link `index` administratively down (`up: false`) or up.
pub async fn set_admin(handle: &Handle, index: u32, up: bool) -> Result<()> {
    let msg = if up {
        LinkUnspec::new_with_index(index).up().build()
    } else {
        LinkUnspec::new_with_index(index).down().build()
    };
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .with_context(|| format!("set link {index} {}", if up { "up" } else { "down" }))
}

/// The operational state of link `index` (`up`, `down`,
/// `lowerlayerdown`, ...), as the kernel reports it.
pub async fn oper_state(handle: &Handle, index: u32) -> Result<String> {
    let msg = link_message(handle, index).await?;
    Ok(msg
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::OperState(s) => Some(format!("{s:?}").to_lowercase()),
            _ => None,
        })
        .unwrap_or_else(|| "unknown".into()))
}

pub async fn set_mtu(handle: &Handle, index: u32, mtu: u32) -> Result<()> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
        .execute()
        .await
        .with_context(|| format!("set link {index} mtu {mtu}"))
}

/// Moves link `index` (named `name`) of `handle`'s namespace into `ns`.
pub async fn move_link(handle: &Handle, index: u32, ns: &NetNs, name: &str) -> Result<()> {
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .setns_by_fd(ns.fd().as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .with_context(|| format!("move {name} into {}", ns.name()))
}

async fn link_message(handle: &Handle, index: u32) -> Result<LinkMessage> {
    let mut links = handle.link().get().match_index(index).execute();
    links
        .try_next()
        .await
        .with_context(|| format!("get link {index}"))?
        .with_context(|| format!("link {index} is gone"))
}

/// Frames link `index` dropped as they came in (its rx_dropped counter).
pub async fn rx_dropped(handle: &Handle, index: u32) -> Result<u64> {
    let msg = link_message(handle, index).await?;
    Ok(msg
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Stats64(s) => Some(s.rx_dropped),
            _ => None,
        })
        .unwrap_or(0))
}

/// Sets bridge port `index` forwarding, or disabled (it neither takes in
/// nor sends out frames; its link stays up). As `bridge link set dev X
/// state N`: an AF_BRIDGE RTM_SETLINK with the state in IFLA_PROTINFO (the
/// port data of an RTM_NEWLINK, `ip link set X type bridge_slave state 0`,
/// leaves a port of a bridge without STP forwarding: tried on 6.18).
pub async fn set_bridge_port_state(handle: &Handle, index: u32, forwarding: bool) -> Result<()> {
    const IFLA_BRPORT_STATE: u16 = 1;
    let state = if forwarding {
        BridgePortState::Forwarding
    } else {
        BridgePortState::Disabled
    };
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = index;
    msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
        LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_STATE, vec![u8::from(state)])),
    ]));
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .with_context(|| format!("set bridge port {index} {state:?}"))
}

/// The state of bridge port `index` (`forwarding`, `disabled`, ...).
pub async fn bridge_port_state(handle: &Handle, index: u32) -> Result<String> {
    let msg = link_message(handle, index).await?;
    let state = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                port.iter().find_map(|p| match p {
                    InfoBridgePort::State(s) => Some(format!("{s:?}").to_lowercase()),
                    _ => None,
                })
            }
            _ => None,
        }),
        _ => None,
    });
    Ok(state.unwrap_or_else(|| "unknown".into()))
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
pub async fn delete_root_link(name: &str) -> Result<()> {
    delete_link_by_name(&root_handle()?, name).await.map(drop)
}

/// Delete link `name` if it exists. Ok if it is already gone.
pub async fn delete_link_by_name(handle: &Handle, name: &str) -> Result<bool> {
    let Some(index) = link_index(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(false),
        Err(e) => Err(anyhow!(e).context(format!("delete link {name}"))),
    }
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

/// Kill what of ours still runs in our namespace `name` (processes carrying
/// our marker: tgtd, nft, a probe), then remove the name. A process
/// without the marker (an administrator's `ip netns exec` shell) is left
/// alone: it keeps the emptied namespace alive until it ends, and the
/// name is gone either way.
pub fn kill_and_delete_netns(name: &str) -> Result<()> {
    if let Ok(ns) = NetNs::open(name) {
        let ours = || -> Vec<i32> {
            pids_in_netns(&ns)
                .into_iter()
                .filter(|pid| crate::sys::cmd::carries_marker(*pid))
                .collect()
        };
        for pid in ours() {
            tracing::warn!(
                pid,
                netns = name,
                "killing leftover process of ours in lane namespace"
            );
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Give the kernel a moment to reap them so the namespace can go.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !ours().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let foreign = pids_in_netns(&ns);
        if !foreign.is_empty() {
            tracing::warn!(
                ?foreign,
                netns = name,
                "processes not ours are in the namespace: left alone"
            );
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
    check_run_id(run_id).map_err(anyhow::Error::msg)?;
    cleanup_matching(
        |ns| is_netns_of_run(ns, run_id),
        |v| v.starts_with(&veth_prefix_for_run(run_id)),
    )
    .await
}

/// Remove the leftovers of every iscsi-chaos run on this machine. Only names
/// with our prefixes are touched. Do not call it while other runs are live.
pub async fn cleanup_all_runs() -> Result<CleanupReport> {
    // Only names of our exact shape: `iscsi-chaos-<run>-<lane>` and its
    // switches, not anything that merely starts with the prefix.
    cleanup_matching(
        |ns| crate::model::names::run_of_netns(ns).is_some(),
        |_| true,
    )
    .await
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
        crate::sys::blocking::spawn(move || kill_and_delete_netns(&n)).await??;
        report.netns.push(name);
    }
    Ok(report)
}
