//! End-to-end: the real harness binary against real tgt, open-iscsi and
//! netem. These need root and the iSCSI kernel stack, so they are ignored by
//! default and run in the lab by `cargo xtask test` (or natively with
//! `cargo test -p iscsi-chaos --test lab_suite -- --ignored --test-threads=1`
//! on a host where `iscsi-chaos doctor` is happy).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HARNESS: &str = env!("CARGO_BIN_EXE_iscsi-chaos");

/// Whether an iscsid ran before these tests (a host's own, natively).
static ISCSID_BEFORE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| !sh("pgrep -x iscsid").trim().is_empty());

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every kind of object a run creates, listed from the host's point of view.
fn leftovers() -> Vec<String> {
    let mut found = Vec::new();
    for ns in sh("ip netns list").lines() {
        if ns.starts_with("iscsi-chaos-") {
            found.push(format!("namespace {ns}"));
        }
    }
    for link in sh("ip -o link show").lines() {
        if link.contains(": icX") {
            found.push(format!("veth {link}"));
        }
    }
    for qdisc in sh("tc qdisc show").lines() {
        if qdisc.contains("netem") {
            found.push(format!("qdisc {qdisc}"));
        }
    }
    for node in sh("iscsiadm -m node 2>/dev/null").lines() {
        if node.contains("io.iscsi-chaos") {
            found.push(format!("node record {node}"));
        }
    }
    for session in sh("cat /sys/class/iscsi_session/*/targetname 2>/dev/null").lines() {
        if session.contains("io.iscsi-chaos") {
            found.push(format!("session {session}"));
        }
    }
    for process in sh("pgrep -a 'tgtd|blkprobe'").lines() {
        found.push(format!("process {process}"));
    }
    // An iscsid the harness started must be gone; one that ran before stays.
    if !*ISCSID_BEFORE && !sh("pgrep -x iscsid").trim().is_empty() {
        found.push("process iscsid (started by the harness)".into());
    }
    for object in sh("ls -d /sys/kernel/config/target/iscsi/*iscsi-chaos* /sys/kernel/config/target/core/*/iscsi-chaos-* 2>/dev/null").lines() {
        found.push(format!("configfs {object}"));
    }
    // Slow stores: dm devices by name, loop devices by their backing file.
    for dm in sh("cat /sys/block/dm-*/dm/name 2>/dev/null").lines() {
        if dm.starts_with("iscsi-chaos-") {
            found.push(format!("dm device {dm}"));
        }
    }
    for lo in sh("losetup -a 2>/dev/null").lines() {
        if lo.contains("iscsi-chaos-") {
            found.push(format!("loop device {lo}"));
        }
    }
    for dir in sh("ls -d /tmp/iscsi-chaos-* 2>/dev/null").lines() {
        found.push(format!("folder {dir}"));
    }
    for run in sh("ls /run/iscsi-chaos/runs 2>/dev/null").lines() {
        found.push(format!("registered run {run}"));
    }
    found
}

fn assert_nothing_left(after: &str) {
    let left = leftovers();
    assert!(left.is_empty(), "{after} left behind: {left:#?}");
}

fn report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json parses")
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn the_shipped_suite_passes_and_leaves_nothing() {
    let _ = *ISCSID_BEFORE;
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(HARNESS)
        .arg("run")
        .arg(workspace().join("scenarios"))
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    let report = report(out.path());
    assert_eq!(status.code(), Some(0), "report: {report:#}");
    assert_eq!(report["schema"], 1);
    let scenarios = report["scenarios"].as_array().unwrap();
    assert!(
        scenarios.len() >= 20,
        "every shipped scenario on each of its targets"
    );
    for s in scenarios {
        assert_eq!(s["verdict"], "pass", "{s:#}");
        assert_eq!(s["measured"]["lost_writes"], 0, "{s:#}");
        assert_eq!(s["measured"]["corrupt_writes"], 0, "{s:#}");
        assert!(
            s["measured"]["acked_writes"].as_u64().unwrap() > 100,
            "{s:#}"
        );
        match s["expected"]["first_error_s"].as_f64() {
            Some(expected) => {
                let measured = s["measured"]["first_error_s"].as_f64().expect("an error");
                assert!((measured - expected).abs() <= 1.5, "{s:#}");
                assert!(s["measured"]["recovered_s"].as_f64().is_some(), "{s:#}");
            }
            None => assert!(s["measured"]["first_error_s"].is_null(), "{s:#}"),
        }
    }
    assert_nothing_left("a finished run");
}

/// Starts a run of the long outage on one target and waits until its fault
/// is in place.
fn start_long_outage(out: &Path, target: &str) -> std::process::Child {
    let _ = *ISCSID_BEFORE;
    let shipped = workspace().join("scenarios/outage/long-blackhole.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let (head, rest) = text.split_once("target = ").unwrap();
    let rest = rest.split_once('\n').unwrap().1;
    let scenario = out.join("long-blackhole.toml");
    std::fs::write(&scenario, format!("{head}target = \"{target}\"\n{rest}")).unwrap();
    let child = Command::new(HARNESS)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !sh("tc qdisc show").contains("netem") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the fault never began"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child
}

fn sigint_mid_outage(target: &str) {
    let out = tempfile::tempdir().unwrap();
    let mut child = start_long_outage(out.path(), target);
    std::thread::sleep(Duration::from_secs(2));
    let interrupted = Instant::now();
    nix_kill(child.id(), libc::SIGINT);
    let status = child.wait().unwrap();
    let took = interrupted.elapsed();
    assert_eq!(status.code(), Some(130));
    assert!(took < Duration::from_secs(30), "teardown took {took:?}");
    assert_nothing_left(&format!("an interrupted run on {target}"));
}

fn sigkill_mid_outage_then_cleanup(target: &str) {
    let out = tempfile::tempdir().unwrap();
    let mut child = start_long_outage(out.path(), target);
    nix_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    assert!(
        !leftovers().is_empty(),
        "a killed run should leave something to clean"
    );
    let cleanup = Command::new(HARNESS).arg("cleanup").output().unwrap();
    assert!(cleanup.status.success());
    let said = String::from_utf8_lossy(&cleanup.stdout);
    assert!(said.contains("removed"), "cleanup said: {said}");
    assert_nothing_left(&format!("a killed run on {target} followed by cleanup"));
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigint_mid_outage_tears_everything_down_and_exits_130_tgt() {
    sigint_mid_outage("tgt");
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigint_mid_outage_tears_everything_down_and_exits_130_lio() {
    sigint_mid_outage("lio");
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigkill_mid_outage_then_cleanup_restores_the_host_tgt() {
    sigkill_mid_outage_then_cleanup("tgt");
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigkill_mid_outage_then_cleanup_restores_the_host_lio() {
    sigkill_mid_outage_then_cleanup("lio");
}

/// A run killed while its slow store is slow leaves the dm-delay device and
/// its loop device behind; `cleanup` removes them (after the target that
/// held them) with everything else.
fn sigkill_mid_slow_store_then_cleanup(target: &str) {
    let _ = *ISCSID_BEFORE;
    let out = tempfile::tempdir().unwrap();
    let shipped = workspace().join("scenarios/target/slow-store.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let (head, rest) = text.split_once("target = ").unwrap();
    let rest = rest.split_once('\n').unwrap().1;
    let scenario = out.path().join("slow-store.toml");
    std::fs::write(&scenario, format!("{head}target = \"{target}\"\n{rest}")).unwrap();
    let mut child = Command::new(HARNESS)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !sh("dmsetup table 2>/dev/null").contains(" 3000") {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the slow store never became slow"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nix_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let left = leftovers();
    assert!(
        left.iter().any(|l| l.starts_with("dm device"))
            && left.iter().any(|l| l.starts_with("loop device")),
        "a killed slow-store run should leave its devices: {left:#?}"
    );
    let cleanup = Command::new(HARNESS).arg("cleanup").output().unwrap();
    assert!(cleanup.status.success());
    let said = String::from_utf8_lossy(&cleanup.stdout);
    assert!(
        said.contains("dm device") && said.contains("loop device"),
        "cleanup said: {said}"
    );
    assert_nothing_left(&format!(
        "a killed slow-store run on {target} followed by cleanup"
    ));
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigkill_mid_slow_store_then_cleanup_removes_its_devices_tgt() {
    sigkill_mid_slow_store_then_cleanup("tgt");
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigkill_mid_slow_store_then_cleanup_removes_its_devices_lio() {
    sigkill_mid_slow_store_then_cleanup("lio");
}

fn nix_kill(pid: u32, signal: i32) {
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(pid as i32, signal) };
}
