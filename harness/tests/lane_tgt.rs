//! Root-only end-to-end tests of lanes and the tgt backend on this machine's
//! kernel: `cargo test -p iscsi-chaos -- --ignored`. They need root, network
//! namespaces, veth, `tgtd`/`tgtadm` and libiscsi's `iscsi-ls`.
//!
//! Each test owns a run id and a lane number no other test uses, and a guard
//! that removes everything of its run even when an assertion fails.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use iscsi_chaos::env::lane::{
    cleanup_run, link_index, link_state, netns_handle, root_handle, Lane, LaneStage,
};
use iscsi_chaos::env::target::{InitiatorAllow, LunSpec, Portal, StopMode, Target, TargetKind};
use iscsi_chaos::sys::netns::NetNs;

const IGNORE: &str = "needs root, netns and tgtd";

/// Removes every netns/veth of the run, and tgtd control sockets we used, on
/// drop (also while unwinding from a failed assertion).
struct RunGuard {
    run_id: String,
    control_ports: Vec<u16>,
}

impl RunGuard {
    fn new(test: &str) -> RunGuard {
        RunGuard {
            run_id: format!("t{}-{test}", std::process::id()),
            control_ports: Vec::new(),
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        common::remove_lanes_of_run(&self.run_id);
        for port in &self.control_ports {
            for suffix in ["", ".lock"] {
                let _ = std::fs::remove_file(format!("/var/run/tgtd/socket.{port}{suffix}"));
            }
        }
    }
}

fn tgtd_with_port_running(port: u16) -> bool {
    let needle = format!("-C\0{port}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| {
            c.starts_with(b"tgtd\0") && c.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
}

async fn iscsi_ls(portal: SocketAddrV4) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new("iscsi-ls")
            .arg("-s")
            .arg(format!("iscsi://{portal}/"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("iscsi-ls timed out")
    .expect("run iscsi-ls");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// LUN size in bytes, as READ CAPACITY(16) over iSCSI reports it.
async fn read_capacity(portal: &Portal) -> u64 {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new("iscsi-readcapacity16")
            .arg("-s")
            .arg(portal.url())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("iscsi-readcapacity16 timed out")
    .expect("run iscsi-readcapacity16");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("size? {text:?}"))
}

async fn assert_lane_gone(lane: &Lane) {
    let names = lane.names().clone();
    for ns in [&names.netns, &names.switch_netns] {
        assert!(!NetNs::exists(ns), "netns {ns} remains");
        assert!(
            !PathBuf::from("/run/netns").join(ns).exists(),
            "netns mount point {ns} remains"
        );
    }
    let root = root_handle().unwrap();
    for link in [
        &names.host_veth,
        &names.target_veth,
        &names.initiator_port,
        &names.target_port,
    ] {
        assert_eq!(link_index(&root, link).await.unwrap(), None, "{link}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, netns and tgtd"]
async fn lane_serves_tgt_lun_end_to_end() {
    let _ = IGNORE;
    let mut guard = RunGuard::new("e2e");
    let index = 201;
    let mut lane = Lane::create(&guard.run_id, index)
        .await
        .expect("create lane");
    let names = lane.names().clone();

    // The namespace and both veth ends, read back through rtnetlink.
    assert!(NetNs::exists(&names.netns));
    assert!(NetNs::list_ours().contains(&names.netns));
    let root = root_handle().unwrap();
    let host = link_state(&root, &names.host_veth)
        .await
        .unwrap()
        .expect("host veth");
    assert!(host.up, "{host:?}");
    assert_eq!(host.index, lane.host_ifindex());
    assert!(host.ipv4.contains(&(lane.initiator_addr(), 24)), "{host:?}");
    let ns = lane.netns().unwrap().clone();
    let inner = netns_handle(&ns).unwrap();
    let tgt_end = link_state(&inner, &names.target_veth)
        .await
        .unwrap()
        .expect("target veth");
    assert!(tgt_end.up, "{tgt_end:?}");
    assert_eq!(tgt_end.index, lane.target_ifindex());
    assert!(
        tgt_end.ipv4.contains(&(lane.target_addr(), 24)),
        "{tgt_end:?}"
    );
    assert!(link_state(&inner, "lo").await.unwrap().unwrap().up);
    // The target end is not visible from the root namespace.
    assert_eq!(link_index(&root, &names.target_veth).await.unwrap(), None);
    drop(inner);

    // TCP across the veth: listener in the lane's namespace, client in root.
    let listen_at = SocketAddr::from((lane.target_addr(), 5555));
    let listener = ns.run_in(|| TcpListener::bind(listen_at)).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong").unwrap();
        (peer, buf)
    });
    let mut client = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(listen_at),
    )
    .await
    .expect("connect timed out")
    .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    client.write_all(b"ping").await.unwrap();
    let mut reply = [0u8; 4];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"pong");
    let (peer, got) = server.join().unwrap();
    assert_eq!(&got, b"ping");
    assert_eq!(peer.ip(), std::net::IpAddr::V4(lane.initiator_addr()));

    // tgt in the namespace, checked from the root namespace with iscsi-ls.
    let size = 64 * 1024 * 1024;
    let spec = LunSpec {
        size_bytes: size,
        allow: InitiatorAllow::Address(lane.initiator_addr()),
    };
    let mut target = Target::setup(TargetKind::Tgt, &lane, spec)
        .await
        .expect("tgt setup");
    let Target::Tgt(t) = &target else {
        unreachable!("a tgt target")
    };
    let port = t.control_port();
    guard.control_ports.push(port);
    let backing = target.backing_path().unwrap().to_path_buf();
    let meta = std::fs::metadata(&backing).unwrap();
    assert_eq!(meta.len(), size);
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&meta) < 64,
        "backing file is not sparse"
    );
    let pid = target.pid().expect("tgtd pid");
    let pid_ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&pid_ns),
        ns.inode().unwrap(),
        "tgtd is not in the lane's namespace"
    );
    let portal = target.portal().clone();
    assert_eq!(portal.addr, SocketAddrV4::new(lane.target_addr(), 3260));
    assert_eq!(
        portal.iqn,
        format!("iqn.2026-11.io.iscsi-chaos:{}-{index}", guard.run_id)
    );
    let (ok, out) = iscsi_ls(portal.addr).await;
    assert!(ok, "iscsi-ls failed: {out}");
    assert!(out.contains(&portal.iqn), "{out}");
    // iscsi-ls -s prints "Lun:1 Type:DIRECT_ACCESS (Size:63M)": it
    // multiplies the last LBA, not the block count, so check exact size with
    // READ CAPACITY(16).
    assert!(
        out.contains("Lun:1") && out.contains("DIRECT_ACCESS"),
        "{out}"
    );
    assert_eq!(read_capacity(&portal).await, size);

    // Nemesis hooks: crash, then restart with the same configuration.
    target.stop_process(StopMode::Kill).await.unwrap();
    assert_eq!(target.pid(), None);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            // A zombie is not possible (we waited), but be precise.
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .is_empty()
        }
    );
    let (ok, out) = iscsi_ls(portal.addr).await;
    assert!(!ok, "iscsi-ls succeeded with tgtd stopped: {out}");
    target.start_process().await.expect("restart tgtd");
    assert_ne!(target.pid(), None);
    let (ok, out) = iscsi_ls(portal.addr).await;
    assert!(ok && out.contains(&portal.iqn), "{out}");
    assert_eq!(read_capacity(&portal).await, size);
    // Graceful stop too (tgtd ignores SIGTERM: this exercises sys delete).
    target
        .stop_process(StopMode::Graceful(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(!tgtd_with_port_running(port));
    target.start_process().await.expect("second restart");

    // Teardown leaves nothing.
    target.teardown().await.expect("teardown");
    target.teardown().await.expect("teardown is idempotent");
    assert!(!backing.exists(), "backing file remains");
    assert!(!tgtd_with_port_running(port), "tgtd remains");
    assert!(!PathBuf::from(format!("/var/run/tgtd/socket.{port}")).exists());
    drop(target);
    drop(ns);
    lane.destroy().await.expect("destroy");
    lane.destroy().await.expect("destroy is idempotent");
    assert_lane_gone(&lane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, netns and tgtd"]
async fn destroy_cleans_half_built_lanes() {
    let guard = RunGuard::new("half");
    let index = 202;
    for stage in [LaneStage::Netns, LaneStage::VethPair, LaneStage::VethMoved] {
        let mut lane = Lane::create_partial(&guard.run_id, index, stage)
            .await
            .unwrap_or_else(|e| panic!("{stage:?}: {e:#}"));
        let names = lane.names().clone();
        assert!(NetNs::exists(&names.netns), "{stage:?}");
        assert!(NetNs::exists(&names.switch_netns), "{stage:?}");
        let root = root_handle().unwrap();
        let host = link_index(&root, &names.host_veth).await.unwrap();
        assert_eq!(host.is_some(), stage >= LaneStage::VethPair, "{stage:?}");
        lane.destroy()
            .await
            .unwrap_or_else(|e| panic!("{stage:?}: {e:#}"));
        assert_lane_gone(&lane).await;
    }

    // A crashed run: half-built lanes found again by run id alone.
    let _a = Lane::create_partial(&guard.run_id, index, LaneStage::VethPair)
        .await
        .unwrap();
    let b = Lane::create_partial(&guard.run_id, index + 1, LaneStage::VethMoved)
        .await
        .unwrap();
    let report = cleanup_run(&guard.run_id).await.unwrap();
    // Two lanes: each a target's namespace and a switch's.
    assert_eq!(report.netns.len(), 4, "{report:?}");
    assert!(!report.veths.is_empty(), "{report:?}");
    assert!(cleanup_run(&guard.run_id).await.unwrap() == Default::default());
    assert_lane_gone(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, netns and tgtd"]
async fn cleanup_run_kills_tgtd_left_in_a_lane() {
    let mut guard = RunGuard::new("crash");
    let lane = Lane::create(&guard.run_id, 204).await.unwrap();
    let target = Target::setup(
        TargetKind::Tgt,
        &lane,
        LunSpec {
            size_bytes: 1 << 20,
            allow: InitiatorAllow::All,
        },
    )
    .await
    .unwrap();
    let Target::Tgt(t) = &target else {
        unreachable!("a tgt target")
    };
    let port = t.control_port();
    guard.control_ports.push(port);
    let backing = target.backing_path().unwrap().to_path_buf();
    // Simulate a crashed orchestrator: forget the handles without teardown.
    let pid = target.pid().unwrap();
    std::mem::forget(target);
    std::mem::forget(lane);
    assert!(tgtd_with_port_running(port));
    let report = cleanup_run(&guard.run_id).await.unwrap();
    // The target's namespace and the switch's.
    assert_eq!(report.netns.len(), 2, "{report:?}");
    assert!(!tgtd_with_port_running(port), "tgtd {pid} survived cleanup");
    // The forgotten TempDir is not ours to find again; remove it by hand.
    let _ = std::fs::remove_dir_all(backing.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, netns and tgtd"]
async fn initiator_allow_restricts_access() {
    let mut guard = RunGuard::new("acl");
    let mut lane = Lane::create(&guard.run_id, 205).await.unwrap();
    let other = std::net::Ipv4Addr::new(10, 213, 205, 99);
    let mut target = Target::setup(
        TargetKind::Tgt,
        &lane,
        LunSpec {
            size_bytes: 1 << 20,
            allow: InitiatorAllow::Address(other),
        },
    )
    .await
    .unwrap();
    let Target::Tgt(t) = &target else {
        unreachable!("a tgt target")
    };
    guard.control_ports.push(t.control_port());
    // Our address (.1) is not allowed: discovery must not offer the target.
    let (ok, out) = iscsi_ls(target.portal().addr).await;
    assert!(ok, "discovery itself must work: {out}");
    assert!(!out.contains(&target.portal().iqn), "{out}");
    target.teardown().await.unwrap();
    drop(target);
    lane.destroy().await.unwrap();
    assert_lane_gone(&lane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, netns and tgtd"]
async fn tgt_portal_and_access_actions_refuse_and_restore() {
    let mut guard = RunGuard::new("np");
    let mut lane = Lane::create(&guard.run_id, 206).await.unwrap();
    let mut target = Target::setup(
        TargetKind::Tgt,
        &lane,
        LunSpec {
            size_bytes: 1 << 20,
            allow: InitiatorAllow::Address(lane.initiator_addr()),
        },
    )
    .await
    .unwrap();
    if let Target::Tgt(t) = &target {
        guard.control_ports.push(t.control_port());
    }
    let portal = target.portal().clone();
    let (ok, out) = iscsi_ls(portal.addr).await;
    assert!(ok && out.contains(&portal.iqn), "{out}");
    // No portal: connections refused; back: logins work again.
    let said = target.set_portal(false).await.unwrap();
    assert!(said.contains("portal delete"), "{said}");
    let err = tokio::net::TcpStream::connect(portal.addr)
        .await
        .expect_err("connected without a portal");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    target.set_portal(true).await.unwrap();
    let (ok, out) = iscsi_ls(portal.addr).await;
    assert!(ok && out.contains(&portal.iqn), "portal back: {out}");
    // Access revoked: the target is no longer offered; restored: it is.
    let said = target.set_initiator_access(false).await.unwrap();
    assert!(said.contains("unbind"), "{said}");
    let (_, out) = iscsi_ls(portal.addr).await;
    assert!(!out.contains(&portal.iqn), "access revoked: {out}");
    target.set_initiator_access(true).await.unwrap();
    let (ok, out) = iscsi_ls(portal.addr).await;
    assert!(ok && out.contains(&portal.iqn), "access back: {out}");
    target.teardown().await.unwrap();
    drop(target);
    lane.destroy().await.unwrap();
    assert_lane_gone(&lane).await;
}

/// Sends `len` bytes from the root namespace to a listener in the lane's
/// target namespace; returns how many arrived within `wait`.
fn bytes_through(lane: &Lane, port: u16, len: usize, wait: Duration) -> usize {
    let ns = lane.netns().unwrap().clone();
    let at = SocketAddr::from((lane.target_addr(), port));
    let listener = ns.run_in(|| TcpListener::bind(at)).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        let start = std::time::Instant::now();
        while got < len && start.elapsed() < wait {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    });
    let mut client = std::net::TcpStream::connect_timeout(&at, Duration::from_secs(5)).unwrap();
    client.set_write_timeout(Some(wait)).unwrap();
    let _ = client.write_all(&vec![7u8; len]);
    let got = server.join().unwrap();
    drop(client);
    got
}

/// The switch drops what a switch would, in the middle: oversize frames at
/// a port with a smaller MTU (counted there, while small packets pass and
/// the hosts keep their jumbo MTU), and everything at a disabled port while
/// the host beside it keeps its carrier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, netns and the bridge module"]
async fn the_switch_drops_oversize_frames_and_stops_at_a_disabled_port() {
    use iscsi_chaos::env::lane::{bridge_port_state, oper_state};
    use iscsi_chaos::model::action::LinkSide;
    let guard = RunGuard::new("switch");
    let mut lane = Lane::create(&guard.run_id, 207).await.unwrap();
    let names = lane.names().clone();
    let sw = netns_handle(lane.switch().unwrap()).unwrap();
    for side in [LinkSide::Initiator, LinkSide::Target] {
        let state = bridge_port_state(&sw, lane.port_ifindex(side))
            .await
            .unwrap();
        assert_eq!(state, "forwarding", "{side:?}");
    }
    // Jumbo hosts cut their own wire-sized frames.
    lane.set_mtu(9000).await.unwrap();
    assert_eq!(
        iscsi_chaos::sys::ethtool::segmentation_offload(&names.host_veth).unwrap(),
        (false, false)
    );
    let mb = 1 << 20;
    let wait = Duration::from_secs(3);
    assert_eq!(bytes_through(&lane, 5601, mb, wait), mb, "jumbo path works");

    lane.set_port_mtu(1500).await.unwrap();
    let before = lane.port_rx_dropped().await.unwrap();
    // The connection (small SYNs) comes up, the jumbo segments vanish.
    let got = bytes_through(&lane, 5602, mb, wait);
    let after = lane.port_rx_dropped().await.unwrap();
    assert!(got < mb / 4, "only {got} of {mb} bytes should pass");
    assert!(
        after.0 > before.0,
        "the port facing the initiator counted its drops: {before:?} -> {after:?}"
    );
    lane.set_port_mtu(9000).await.unwrap();
    assert_eq!(bytes_through(&lane, 5603, mb, wait), mb, "MTU restored");

    // A disabled port: no frame passes, the host keeps carrier.
    let state = lane
        .set_port_forwarding(LinkSide::Target, false)
        .await
        .unwrap();
    assert_eq!(state, "disabled");
    let root = root_handle().unwrap();
    assert_eq!(
        oper_state(&root, lane.host_ifindex()).await.unwrap(),
        "up",
        "the host keeps its carrier"
    );
    let at = SocketAddr::from((lane.target_addr(), 5604));
    let ns = lane.netns().unwrap().clone();
    let _listener = ns.run_in(|| TcpListener::bind(at)).unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&at, Duration::from_secs(2)).is_err(),
        "nothing passes a disabled port"
    );
    let state = lane
        .set_port_forwarding(LinkSide::Target, true)
        .await
        .unwrap();
    assert_eq!(state, "forwarding");
    assert_eq!(
        bytes_through(&lane, 5605, mb, wait),
        mb,
        "port enabled again"
    );
    lane.destroy().await.unwrap();
    assert_lane_gone(&lane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, netns and tgtd"]
async fn a_foreign_process_in_a_lane_namespace_survives_its_removal() {
    let guard = RunGuard::new("foreign");
    let mut lane = Lane::create(&guard.run_id, 209).await.unwrap();
    let ns = lane.netns().unwrap().clone();
    let sleeper = |marked: bool| {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("300").env_remove(iscsi_chaos::sys::cmd::MARKER_VAR);
        if marked {
            cmd.env(iscsi_chaos::sys::cmd::MARKER_VAR, "harness");
        }
        ns.enter_on_exec(&mut cmd);
        cmd.spawn().unwrap()
    };
    // An administrator's shell in the namespace, and a process of ours.
    let mut foreign = sleeper(false);
    let mut ours = sleeper(true);
    lane.destroy().await.unwrap();
    assert!(
        ours.try_wait().unwrap().is_some() || {
            std::thread::sleep(Duration::from_millis(500));
            ours.try_wait().unwrap().is_some()
        },
        "our marked process survived the lane's removal"
    );
    assert!(
        foreign.try_wait().unwrap().is_none(),
        "a process that is not ours was killed"
    );
    foreign.kill().unwrap();
    foreign.wait().unwrap();
}

#[test]
#[ignore = "needs root (/run/iscsi-chaos)"]
fn two_targets_never_pick_one_control_port() {
    use iscsi_chaos::env::target::tgt::pick_control_port;
    // The same run and lane give the same first choice: the claim of the
    // first makes the second pick another port, before any tgtd runs.
    let run = format!("t{}-ports", std::process::id());
    let (a, claim_a) = pick_control_port(&run, 7).unwrap();
    let (b, claim_b) = pick_control_port(&run, 7).unwrap();
    assert_ne!(a, b);
    drop(claim_a);
    let (c, _claim_c) = pick_control_port(&run, 7).unwrap();
    assert_eq!(c, a, "a port whose claim was dropped is free again");
    drop(claim_b);
}
