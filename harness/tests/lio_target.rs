//! Root-only tests of the LIO backend against the kernel's target (the lab
//! has it; this build machine does not):
//! `cargo test -p iscsi-chaos --test lio_target -- --ignored --test-threads=1`.
//! They need root, network namespaces, LIO in configfs and libiscsi's tools.
//!
//! Each test owns a run id and lane numbers no other test uses, and a guard
//! that removes everything of its run even when an assertion fails.

mod common;

use std::path::Path;
use std::time::Duration;

use iscsi_chaos::env::lane::{Lane, LaneStage};
use iscsi_chaos::env::target::lio::{self, LioStage, LioTarget};
use iscsi_chaos::env::target::{InitiatorAllow, LunSpec, Portal, StopMode, Target, TargetKind};

/// Removes LIO objects, namespaces and veths of the run on drop (also while
/// unwinding from a failed assertion).
struct RunGuard {
    run_id: String,
}

impl RunGuard {
    fn new(test: &str) -> RunGuard {
        RunGuard {
            run_id: format!("t{}-{test}", std::process::id()),
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let id = self.run_id.clone();
        let lio = lio::remove_leftovers(&|r| r == id);
        if !lio.is_empty() {
            eprintln!("guard removed LIO leftovers: {lio:?}");
        }
        common::remove_lanes_of_run(&self.run_id);
    }
}

fn spec(allow: InitiatorAllow) -> LunSpec {
    LunSpec {
        size_bytes: 8 << 20,
        allow,
    }
}

/// `iscsi-ls -s` from the root namespace, as `initiator` (None: libiscsi's
/// default name). Success and the combined output.
async fn iscsi_ls(portal: &Portal, initiator: Option<&str>) -> (bool, String) {
    let mut cmd = tokio::process::Command::new("iscsi-ls");
    if let Some(name) = initiator {
        cmd.arg("-i").arg(name);
    }
    cmd.arg("-s")
        .arg(format!("iscsi://{}/", portal.addr))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
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

/// Whether iscsi-ls logged in and saw our LUN.
fn sees_lun(ok: bool, out: &str, portal: &Portal) -> bool {
    ok && out.contains(&portal.iqn) && out.contains(&format!("Lun:{}", portal.lun))
}

/// Listening TCP sockets (`ss -ltnH`), in the namespace `netns` if given.
fn listeners(netns: Option<&str>) -> String {
    let mut cmd = match netns {
        Some(name) => {
            let mut c = std::process::Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{name}")).arg("ss");
            c
        }
        None => std::process::Command::new("ss"),
    };
    let out = cmd.arg("-ltnH").output().expect("run ss");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ours(run_id: &str) -> Vec<lio::Leftover> {
    lio::leftovers()
        .into_iter()
        .filter(|l| l.run_id == run_id)
        .collect()
}

fn assert_nothing_of(run_id: &str, what: &str) {
    let left = ours(run_id);
    assert!(left.is_empty(), "{what}: left in configfs: {left:?}");
    let core = Path::new(lio::CONFIGFS_TARGET).join("core");
    for e in std::fs::read_dir(&core).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name
            .strip_prefix("fileio_")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= lio::HBA_BASE);
        assert!(!ours, "{what}: HBA {name} remains");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root and LIO"]
async fn lio_serves_lun_end_to_end() {
    let guard = RunGuard::new("e2e");
    let mut lane = Lane::create(&guard.run_id, 221).await.expect("lane");
    let initiator_addr = lane.initiator_addr();
    let mut target = Target::setup(
        TargetKind::Lio,
        &lane,
        spec(InitiatorAllow::Address(initiator_addr)),
    )
    .await
    .expect("LIO setup");
    assert_eq!(target.kind(), TargetKind::Lio);
    assert_eq!(target.pid(), None);
    let portal = target.portal().clone();
    let backing = target.backing_path().unwrap().to_path_buf();
    assert_eq!(std::fs::metadata(&backing).unwrap().len(), 8 << 20);
    let Target::Lio(t) = &target else {
        unreachable!()
    };
    let initiator = t.acl_initiator().expect("an ACL").to_string();
    assert_eq!(initiator, lio::initiator_name().unwrap());
    assert!(t.is_enabled());
    let info = std::fs::read_to_string(t.device_path().join("info")).unwrap();
    assert!(info.contains(&backing.display().to_string()), "{info}");
    assert_eq!(ours(&guard.run_id).len(), 2, "target and device");

    // A real login from the root namespace, as the ACL's initiator.
    let (ok, out) = iscsi_ls(&portal, Some(&initiator)).await;
    assert!(sees_lun(ok, &out, &portal), "login as {initiator}: {out}");
    eprintln!("iscsi-ls as the ACL's initiator:\n{out}");
    let out = tokio::process::Command::new("iscsi-readcapacity16")
        .arg("-i")
        .arg(&initiator)
        .arg("-s")
        .arg(portal.url())
        .output()
        .await
        .expect("run iscsi-readcapacity16");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), (8u64 << 20).to_string(), "{out:?}");
    // Another initiator name has no ACL: no LUN for it.
    let (ok, out) = iscsi_ls(&portal, Some("iqn.2026-11.io.example:stranger")).await;
    assert!(!sees_lun(ok, &out, &portal), "stranger logged in: {out}");
    eprintln!("iscsi-ls as a stranger (ok={ok}):\n{out}");

    // The portal listens in the lane's namespace only.
    let at = format!("{}", portal.addr);
    let inside = listeners(Some(&lane.names().netns));
    let outside = listeners(None);
    assert!(inside.contains(&at), "not listening inside: {inside}");
    assert!(!outside.contains(&at), "listening in root: {outside}");

    // "Stop" (disable the TPG) refuses logins; start serves again.
    target.stop_process(StopMode::Kill).await.unwrap();
    let (ok, out) = iscsi_ls(&portal, Some(&initiator)).await;
    assert!(!sees_lun(ok, &out, &portal), "login while disabled: {out}");
    eprintln!("iscsi-ls while the TPG is disabled (ok={ok}):\n{out}");
    // Unlike a killed tgtd, the portal still accepts TCP connections.
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(portal.addr),
    )
    .await
    .expect("connect timed out");
    assert!(conn.is_ok(), "TCP connect while disabled: {conn:?}");
    drop(conn);
    target.stop_process(StopMode::Kill).await.unwrap();
    target.start_process().await.unwrap();
    target.start_process().await.unwrap();
    let (ok, out) = iscsi_ls(&portal, Some(&initiator)).await;
    assert!(sees_lun(ok, &out, &portal), "login after restart: {out}");

    target.teardown().await.expect("teardown");
    target.teardown().await.expect("teardown is idempotent");
    assert!(target.backing_path().is_none());
    assert!(!backing.exists());
    assert_nothing_of(&guard.run_id, "after teardown");
    assert!(
        !listeners(Some(&lane.names().netns)).contains(&at),
        "portal still listens"
    );
    assert!(target.start_process().await.is_err());
    lane.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root and LIO"]
async fn lio_demo_mode_admits_any_initiator() {
    let guard = RunGuard::new("demo");
    let mut lane = Lane::create(&guard.run_id, 222).await.expect("lane");
    let mut target = Target::setup(TargetKind::Lio, &lane, spec(InitiatorAllow::All))
        .await
        .expect("LIO setup");
    let portal = target.portal().clone();
    let (ok, out) = iscsi_ls(&portal, None).await;
    assert!(sees_lun(ok, &out, &portal), "default initiator name: {out}");
    target.teardown().await.unwrap();
    assert_nothing_of(&guard.run_id, "after teardown");
    lane.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root and LIO"]
async fn lio_teardown_after_each_partial_stage() {
    let guard = RunGuard::new("half");
    let mut lane = Lane::create(&guard.run_id, 223).await.expect("lane");
    for stage in LioStage::ALL {
        let mut t = LioTarget::setup_until(
            &lane,
            spec(InitiatorAllow::Address(lane.initiator_addr())),
            stage,
        )
        .await
        .unwrap_or_else(|e| panic!("{stage:?}: {e:#}"));
        let expect = match stage {
            LioStage::Hba => 0,
            LioStage::Device | LioStage::DeviceEnabled => 1,
            _ => 2,
        };
        assert_eq!(ours(&guard.run_id).len(), expect, "{stage:?}");
        let backing = t.backing_path().unwrap().to_path_buf();
        t.teardown()
            .await
            .unwrap_or_else(|e| panic!("{stage:?}: {e:#}"));
        assert_nothing_of(&guard.run_id, &format!("{stage:?}"));
        assert!(!backing.exists(), "{stage:?}");
    }
    lane.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root and LIO"]
async fn lio_failed_setup_leaves_nothing() {
    let guard = RunGuard::new("fail");
    let mut lane = Lane::create(&guard.run_id, 224).await.expect("lane");
    // A stray target with our IQN (not made by this target): setup fails
    // half-way, after the HBA and the enabled device.
    let iqn = iscsi_chaos::env::target::iqn_for(&guard.run_id, 224);
    let iscsi = Path::new(lio::CONFIGFS_TARGET).join("iscsi");
    if !iscsi.is_dir() {
        std::fs::create_dir(&iscsi).unwrap();
    }
    let stray = iscsi.join(&iqn);
    std::fs::create_dir(&stray).unwrap();
    let err = Target::setup(
        TargetKind::Lio,
        &lane,
        spec(InitiatorAllow::Address(lane.initiator_addr())),
    )
    .await
    .expect_err("the target IQN exists already");
    eprintln!("expected failure: {err:#}");
    assert!(format!("{err:#}").contains(&iqn), "{err:#}");
    // Only the stray target remains: what setup made is gone.
    let left = ours(&guard.run_id);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].path, stray);
    std::fs::remove_dir(&stray).unwrap();
    assert_nothing_of(&guard.run_id, "after a failed setup");
    let tmp: Vec<_> = std::fs::read_dir(iscsi_chaos::ledger::host::WORK)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("iscsi-chaos-{}-", guard.run_id))
        })
        .collect();
    assert!(tmp.is_empty(), "temporary folders remain: {tmp:?}");
    lane.destroy().await.unwrap();
}

/// A portal in a namespace without its address: LIO binds with
/// IP_FREEBIND, so this succeeds (tgt would fail to bind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root and LIO"]
async fn lio_portal_binds_without_the_address() {
    let guard = RunGuard::new("freebind");
    let mut lane = Lane::create_partial(&guard.run_id, 226, LaneStage::Netns)
        .await
        .expect("lane");
    let mut target = Target::setup(TargetKind::Lio, &lane, spec(InitiatorAllow::All))
        .await
        .expect("LIO setup");
    target.teardown().await.unwrap();
    assert_nothing_of(&guard.run_id, "after teardown");
    lane.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root and LIO"]
async fn lio_leftovers_of_a_crash_are_removed() {
    let guard = RunGuard::new("crash");
    let mut lane = Lane::create(&guard.run_id, 225).await.expect("lane");
    let target = Target::setup(
        TargetKind::Lio,
        &lane,
        spec(InitiatorAllow::Address(lane.initiator_addr())),
    )
    .await
    .expect("LIO setup");
    let portal = target.portal().clone();
    let initiator = lio::initiator_name().unwrap();
    let (ok, out) = iscsi_ls(&portal, Some(&initiator)).await;
    assert!(sees_lun(ok, &out, &portal), "{out}");
    let backing = target.backing_path().unwrap().to_path_buf();
    // A crashed orchestrator: forget the handle without teardown.
    std::mem::forget(target);
    assert_eq!(ours(&guard.run_id).len(), 2);
    // Other runs are left alone.
    assert!(lio::remove_leftovers(&|r| r == "some-other-run").is_empty());
    let removed = lio::remove_leftovers(&|r| r == guard.run_id);
    eprintln!("removed: {removed:?}");
    assert_eq!(removed.len(), 3, "target, device, HBA: {removed:?}");
    assert!(removed.iter().all(|r| !r.starts_with('(')), "{removed:?}");
    assert_nothing_of(&guard.run_id, "after remove_leftovers");
    assert!(lio::remove_leftovers(&|r| r == guard.run_id).is_empty());
    let _ = std::fs::remove_dir_all(backing.parent().unwrap());
    lane.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root and LIO"]
async fn lio_revoking_access_refuses_logins() {
    let guard = RunGuard::new("acl");
    let mut lane = Lane::create(&guard.run_id, 227).await.expect("lane");
    let mut t = LioTarget::setup(&lane, spec(InitiatorAllow::Address(lane.initiator_addr())))
        .await
        .expect("LIO setup");
    let portal = t.portal().clone();
    let initiator = t.acl_initiator().unwrap().to_string();
    t.set_initiator_access(false).await.unwrap();
    t.set_initiator_access(false).await.unwrap();
    let (ok, out) = iscsi_ls(&portal, Some(&initiator)).await;
    assert!(!sees_lun(ok, &out, &portal), "login without ACL: {out}");
    eprintln!("iscsi-ls with the ACL removed (ok={ok}):\n{out}");
    t.set_initiator_access(true).await.unwrap();
    t.set_initiator_access(true).await.unwrap();
    let (ok, out) = iscsi_ls(&portal, Some(&initiator)).await;
    assert!(sees_lun(ok, &out, &portal), "login with ACL again: {out}");
    // Revoked at teardown time: teardown still removes everything.
    t.set_initiator_access(false).await.unwrap();
    t.teardown().await.unwrap();
    assert_nothing_of(&guard.run_id, "after teardown");
    let mut demo = LioTarget::setup(&lane, spec(InitiatorAllow::All))
        .await
        .unwrap();
    assert!(demo.set_initiator_access(false).await.is_err());
    demo.teardown().await.unwrap();
    assert_nothing_of(&guard.run_id, "after the demo target");
    lane.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root and LIO"]
async fn lio_removing_the_portal_refuses_connections() {
    let guard = RunGuard::new("np");
    let mut lane = Lane::create(&guard.run_id, 228).await.expect("lane");
    let mut t = LioTarget::setup(&lane, spec(InitiatorAllow::All))
        .await
        .expect("LIO setup");
    let portal = t.portal().clone();
    let at = portal.addr.to_string();
    t.set_portal(false).await.unwrap();
    t.set_portal(false).await.unwrap();
    assert!(!listeners(Some(&lane.names().netns)).contains(&at));
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(portal.addr),
    )
    .await
    .expect("connect timed out");
    let err = conn.expect_err("connected without a portal");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    t.set_portal(true).await.unwrap();
    t.set_portal(true).await.unwrap();
    assert!(listeners(Some(&lane.names().netns)).contains(&at));
    let (ok, out) = iscsi_ls(&portal, None).await;
    assert!(
        sees_lun(ok, &out, &portal),
        "login with the portal back: {out}"
    );
    t.set_portal(false).await.unwrap();
    t.teardown().await.unwrap();
    assert_nothing_of(&guard.run_id, "after teardown");
    lane.destroy().await.unwrap();
}
