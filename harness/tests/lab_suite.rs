//! End-to-end: the real harness binary against real tgt, open-iscsi and
//! netem. These need root and the iSCSI kernel stack, so they are ignored by
//! default and run in the lab by `cargo xtask test` (or natively with
//! `cargo test -p iscsi-chaos --test lab_suite -- --ignored --test-threads=1`
//! on a host where `iscsi-chaos doctor` is happy).

use iscsi_chaos::report::{Report, Verdict};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HARNESS: &str = env!("CARGO_BIN_EXE_iscsi-chaos");

/// Whether an iscsid ran before these tests (a host's own, natively).
static ISCSID_BEFORE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| !sh("pgrep -x iscsid").trim().is_empty());

/// A run's output folder, kept when its test fails: copied to
/// `target/test-out/failed/<test>-<n>` (the lab shares the workspace), so
/// the histories and captures of a failure outlive the lab.
struct Out(tempfile::TempDir);

impl Out {
    fn new() -> Out {
        Out(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .replace("::", "-");
        let failed = workspace().join("target/test-out/failed");
        let _ = std::fs::create_dir_all(&failed);
        let n = (0..).find(|n| !failed.join(format!("{test}-{n}")).exists());
        let to = failed.join(format!("{test}-{}", n.unwrap_or(0)));
        let copied = Command::new("cp")
            .arg("-a")
            .arg(self.0.path())
            .arg(&to)
            .status();
        eprintln!("output kept in {} ({copied:?})", to.display());
    }
}

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
        if qdisc.contains("netem") || qdisc.contains("tbf") {
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
    for dir in sh("ls -d /tmp/iscsi-chaos-* /run/iscsi-chaos/work/* 2>/dev/null").lines() {
        found.push(format!("folder {dir}"));
    }
    for run in sh("ls /run/iscsi-chaos/runs 2>/dev/null").lines() {
        found.push(format!("registered run {run}"));
    }
    // A further host's iface record; LIO's reservation state of our LUNs
    // (a unit serial of ours: 32 hex digits, where targetcli's have dashes).
    for iface in sh("ls /etc/iscsi/ifaces /var/lib/iscsi/ifaces 2>/dev/null").lines() {
        if iface.starts_with("iscsi-chaos-") {
            found.push(format!("iface record {iface}"));
        }
    }
    for file in sh("ls /var/target/pr 2>/dev/null").lines() {
        if file.strip_prefix("aptpl_").is_some_and(|s| s.len() == 32) {
            found.push(format!("LIO reservation state {file}"));
        }
    }
    found
}

/// `tc qdisc show` of the root namespace and of every named one (a fault of
/// the fabric is a qdisc in a lane's switch).
fn qdiscs_everywhere() -> String {
    sh("tc qdisc show; for n in $(ip netns list | cut -d' ' -f1); do tc -n \"$n\" qdisc show; done")
}

fn assert_nothing_left(after: &str) {
    let left = leftovers();
    assert!(left.is_empty(), "{after} left behind: {left:#?}");
}

fn report(dir: &Path) -> Report {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    Report::from_json(&text).expect("report.json parses")
}

/// Each run's id, verdict and reasons, a line each: a failure's message
/// that says what went wrong before the whole entry is dumped.
fn verdicts(report: &Report) -> String {
    report
        .scenarios
        .iter()
        .map(|s| format!("{} {:?}: {}", s.id, s.verdict, s.reasons.join("; ")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn the_shipped_suite_passes_and_leaves_nothing() {
    let _ = *ISCSID_BEFORE;
    let tmp = tempfile::tempdir().unwrap();
    // `cargo xtask test` keeps this folder to open its report.html in a
    // browser afterwards.
    let out = std::env::var_os("ISCSI_CHAOS_SUITE_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let status = Command::new(HARNESS)
        .arg("run")
        .arg(workspace().join("scenarios"))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    let report = report(&out);
    assert_eq!(status.code(), Some(0), "report: {report:#?}");
    assert_eq!(report.schema, iscsi_chaos::report::SCHEMA);
    let scenarios = &report.scenarios;
    assert!(
        scenarios.len() >= 20,
        "every shipped scenario on each of its targets"
    );
    for s in scenarios {
        // The one skip a shipped scenario may have: fencing on tgt, which
        // has no PREEMPT AND ABORT (`Run::unsupported`).
        if s.verdict == Verdict::Skipped
            && s.target == "tgt"
            && s.reasons.iter().any(|r| r.contains("PREEMPT AND ABORT"))
        {
            continue;
        }
        assert_eq!(s.verdict, Verdict::Pass, "{s:#?}");
        if s.expected.possible_damage.is_empty() {
            assert_eq!(s.measured.lost_writes, 0, "{s:#?}");
            assert_eq!(s.measured.corrupt_writes, 0, "{s:#?}");
        } else {
            // Only the damage the oracle called possible (a held write
            // landing after failover), each bad block classified.
            let bad = &s.measured.bad_blocks;
            assert!(
                bad.iter()
                    .all(|b| s.expected.possible_damage.contains(&b.class)),
                "{s:#?}"
            );
            assert_eq!(
                s.measured.lost_writes + s.measured.corrupt_writes,
                bad.len() as u64,
                "{s:#?}"
            );
        }
        // The kernel's timers were read back and are the ones asked for.
        assert!(
            s.measured.effective.contains_key("session.recovery_tmo"),
            "{s:#?}"
        );
        assert!(s.measured.settings_warnings.is_empty(), "{s:#?}");
        match &s.measured.fs {
            // The block probe: many writes, and I/O back after an error.
            None => assert!(s.measured.acked_writes > 100, "{s:#?}"),
            // A filesystem: brought back by what the oracle said (a broken
            // one does not run the workload again by itself).
            Some(fs) => {
                if let Some(want) = s.expected.fs_recovery {
                    assert_eq!(fs.recovery, Some(want), "{s:#?}");
                }
                assert!(!fs.states.is_empty(), "{s:#?}");
            }
        }
        match s.expected.first_error_s {
            Some(expected) => {
                let measured = s.measured.first_error_s.expect("an error");
                assert!(
                    (measured - expected).abs() <= s.expected.tolerance_s,
                    "{s:#?}"
                );
                if s.measured.fs.is_none() {
                    assert!(s.measured.recovered_s.is_some(), "{s:#?}");
                }
            }
            None => assert!(s.measured.first_error_s.is_none(), "{s:#?}"),
        }
    }
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".history.jsonl") {
            assert_every_fault_hit(&path);
        }
    }
    // The reports people and CI read, and one picture per run.
    for file in ["report.html", "junit.xml", "summary.md"] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    for s in scenarios.iter().filter(|s| s.verdict != Verdict::Skipped) {
        let svg = out.join(iscsi_chaos::report::timeline::file(&s.id));
        let svg = std::fs::read_to_string(&svg).expect("a timeline per run");
        roxmltree::Document::parse(&svg).expect("the timeline is XML");
    }
    assert_nothing_left("a finished run");
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn the_switch_captures_every_path_and_the_history_holds_what_the_file_holds() {
    use iscsi_chaos::history::{Event, History};
    use iscsi_chaos_formats::wire::{Fate, WireWhat};
    use std::collections::BTreeMap;
    let scenarios = tempfile::tempdir().unwrap();
    let out = Out::new();
    // The whole run of a long blackhole on tgt; a multipath run on LIO
    // with the default window and a file capped at 2 MiB.
    let whole = shipped_on("outage/long-blackhole.toml", "tgt", scenarios.path());
    let text = std::fs::read_to_string(&whole).unwrap();
    std::fs::write(&whole, format!("{text}\n[capture]\nmode = \"all\"\n")).unwrap();
    let capped = shipped_on(
        "multipath/one-path-blackholed.toml",
        "lio",
        scenarios.path(),
    );
    let text = std::fs::read_to_string(&capped).unwrap();
    std::fs::write(&capped, format!("{text}\n[capture]\nmax_mib = 2\n")).unwrap();
    let status = Command::new(HARNESS)
        .arg("run")
        .arg(&whole)
        .arg(&capped)
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    let report = report(out.path());
    assert_eq!(status.code(), Some(0), "{report:#?}");
    let pdus = |events: &mut dyn Iterator<Item = &WireWhat>| {
        let mut by_op = BTreeMap::<u8, usize>::new();
        for w in events {
            if let WireWhat::Pdu(p) = w {
                *by_op.entry(p.opcode).or_default() += 1;
            }
        }
        by_op
    };
    for s in &report.scenarios {
        let history = out.path().join(iscsi_chaos::report::history_file(&s.id));
        assert_every_fault_hit(&history);
        let h = History::from_json_lines(&std::fs::read_to_string(&history).unwrap()).unwrap();
        let summary = h
            .entries
            .iter()
            .find_map(|e| match &e.event {
                Event::Capture(c) => Some(c.clone()),
                _ => None,
            })
            .expect("the capture's summary");
        let file = out.path().join(&summary.file);
        let bytes = std::fs::read(&file).expect("the capture file beside the history");
        assert_eq!(bytes.len() as u64, summary.bytes);
        let wire: Vec<_> = h
            .entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::Wire(w) => Some(w),
                _ => None,
            })
            .collect();
        let commands_on = |path: u8| {
            wire.iter()
                .filter(|w| w.path == path)
                .any(|w| matches!(&w.what, WireWhat::Pdu(p) if p.cdb.as_ref().is_some_and(|c| c.is_write())))
        };
        assert!(commands_on(0), "{}: no WRITE decoded on path 0", s.id);
        assert!(
            wire.iter().any(|w| w.fate == Fate::Dropped),
            "{}: the blackhole dropped nothing the capture saw",
            s.id
        );
        let svg =
            std::fs::read_to_string(out.path().join(iscsi_chaos::report::timeline::file(&s.id)))
                .unwrap();
        assert!(svg.contains(">wire 0<"), "{}: no wire lane", s.id);
        if s.id.starts_with("long-blackhole") {
            // The whole run: the file holds every frame the history
            // decoded, and decodes to the same PDUs.
            assert!(summary.truncated_at.is_none());
            let from_file = iscsi_chaos::wire::decode::decode_file(&bytes).unwrap();
            assert_eq!(
                pdus(&mut from_file.iter().map(|(_, w)| &w.what)),
                pdus(&mut wire.iter().map(|w| &w.what)),
                "{}: PDUs by opcode, file against history",
                s.id
            );
        } else {
            assert!(commands_on(1), "{}: no WRITE decoded on path 1", s.id);
            assert!(
                svg.contains(">wire 1<") && svg.contains(">path 1<"),
                "{}",
                s.id
            );
            assert!(summary.truncated_at.is_some(), "{}: {summary:?}", s.id);
            assert!(
                bytes.len() <= 2 * 1024 * 1024,
                "{}: {} bytes",
                s.id,
                bytes.len()
            );
        }
    }
    assert_nothing_left("two captured runs");
}

/// Blocks damaged through the real device before the probe's verify pass
/// (its test hook: block 0's bytes over block 1, zeroes over block 2) are
/// found and classified by what they hold.
#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn planted_bad_blocks_are_classified_by_what_they_hold() {
    let _ = *ISCSID_BEFORE;
    let scenarios = tempfile::tempdir().unwrap();
    let out = Out::new();
    let scenario = shipped_on("outage/short-blackhole.toml", "lio", scenarios.path());
    let status = Command::new(HARNESS)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .env("ISCSI_CHAOS_TEST_PLANT_BAD_BLOCKS", "1")
        .status()
        .unwrap();
    let report = report(out.path());
    assert_eq!(status.code(), Some(1), "{report:#?}");
    let s = &report.scenarios[0];
    assert_eq!(s.verdict, Verdict::Fail, "{s:#?}");
    let class_of = |block: u64| {
        s.measured
            .bad_blocks
            .iter()
            .find(|b| b.block == block)
            .map(|b| b.class.clone())
    };
    assert_eq!(class_of(2).as_deref(), Some("zeroed"), "{s:#?}");
    let one = class_of(1).unwrap_or_default();
    assert!(
        one == "misdirected" || one == "zeroed",
        "block 1: {one}; {s:#?}"
    );
    assert!(
        s.reasons
            .iter()
            .any(|r| r.starts_with("block 2 (zeroed): write seq")),
        "{:#?}",
        s.reasons
    );
    assert_nothing_left("a run with planted bad blocks");
}

/// Each fault step of a run's history must show its effect, not only that
/// the harness asked for it: the kind's own check of the typed evidence (a
/// qdisc that counted packets, drops for an outage, a firewall rule that
/// matched, the target's or the store's effect read back).
fn assert_every_fault_hit(history: &Path) {
    use iscsi_chaos::history::{Event, History};
    let text = std::fs::read_to_string(history).unwrap();
    let h = History::from_json_lines(&text).expect("the history parses");
    let mut steps: Vec<(usize, String, Option<u8>)> = h
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Fault {
                step, kind, path, ..
            } => Some((*step, kind.clone(), *path)),
            _ => None,
        })
        .collect();
    steps.sort();
    steps.dedup();
    assert!(!steps.is_empty(), "{}: no fault step", history.display());
    for (step, kind, path) in steps {
        assert!(
            iscsi_chaos::model::fault::took_effect(&kind, step, path, &h.entries),
            "{}: fault {step} ({kind}) left no trace of its effect",
            history.display()
        );
    }
}

/// Shipped scenario `relative` (under `scenarios/`) rewritten to run on
/// `target` alone, saved in `out`.
fn shipped_on(relative: &str, target: &str, out: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(workspace().join("scenarios").join(relative)).unwrap();
    let (head, rest) = text.split_once("target = ").unwrap();
    let rest = rest.split_once('\n').unwrap().1;
    let name = Path::new(relative).file_name().unwrap();
    let scenario = out.join(name);
    std::fs::write(&scenario, format!("{head}target = \"{target}\"\n{rest}")).unwrap();
    scenario
}

/// Starts `iscsi-chaos run scenario --out out` and waits (at most `within`)
/// until `reached` holds; `what` names that moment in the failure.
fn start_until(
    scenario: &Path,
    out: &Path,
    within: Duration,
    what: &str,
    reached: impl Fn() -> bool,
) -> std::process::Child {
    let _ = *ISCSID_BEFORE;
    let child = Command::new(HARNESS)
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !reached() {
        assert!(started.elapsed() < within, "the run never reached {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
    child
}

/// `iscsi-chaos cleanup`, which must succeed: what it said on stdout, then
/// on stderr.
fn cleanup_output() -> (String, String) {
    let cleanup = Command::new(HARNESS).arg("cleanup").output().unwrap();
    assert!(cleanup.status.success());
    (
        String::from_utf8_lossy(&cleanup.stdout).into_owned(),
        String::from_utf8_lossy(&cleanup.stderr).into_owned(),
    )
}

/// Starts a run of the long outage on one target and waits until its fault
/// is in place.
fn start_long_outage(out: &Path, target: &str) -> std::process::Child {
    let scenario = shipped_on("outage/long-blackhole.toml", target, out);
    start_until(&scenario, out, Duration::from_secs(60), "its fault", || {
        qdiscs_everywhere().contains("netem")
    })
}

/// Interrupts a run mid-outage with `signal`; it must tear down by itself
/// and exit with the shell's status for that signal (128 + its number).
fn interrupted_mid_outage(target: &str, signal: i32) {
    let out = Out::new();
    let mut child = start_long_outage(out.path(), target);
    std::thread::sleep(Duration::from_secs(2));
    let interrupted = Instant::now();
    nix_kill(child.id(), signal);
    let status = child.wait().unwrap();
    let took = interrupted.elapsed();
    assert_eq!(status.code(), Some(128 + signal));
    assert!(took < Duration::from_secs(30), "teardown took {took:?}");
    assert_nothing_left(&format!("an interrupted run on {target}"));
}

fn sigkill_mid_outage_then_cleanup(target: &str) {
    let out = Out::new();
    let mut child = start_long_outage(out.path(), target);
    nix_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    assert!(
        !leftovers().is_empty(),
        "a killed run should leave something to clean"
    );
    // The killed run's ledger wrote each object down before making it.
    let ledger = sh("cat /run/iscsi-chaos/runs/*/ledger.jsonl");
    let made = if target == "lio" {
        "configfs"
    } else {
        "process"
    };
    for kind in [
        "netns",
        "veth",
        made,
        "folder",
        "node_record",
        "session",
        "qdisc",
    ] {
        assert!(
            ledger.contains(&format!("\"kind\":\"{kind}\"")),
            "no {kind} in the ledger: {ledger}"
        );
    }
    let (said, _) = cleanup_output();
    for object in ["namespace", "session", "qdisc"] {
        assert!(
            said.lines()
                .any(|l| l.contains(object) && l.contains("(ledger of run")),
            "cleanup did not remove a {object} through the ledger: {said}"
        );
    }
    assert_nothing_left(&format!("a killed run on {target} followed by cleanup"));
}

/// A panic in a run (forced right after setup by the test hook) drops its
/// setup without the teardown; the ledger's walk removes everything, and
/// the next run goes on.
#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn a_panic_in_a_run_tears_down_through_the_ledger() {
    let _ = *ISCSID_BEFORE;
    let out = Out::new();
    let status = Command::new(HARNESS)
        .arg("run")
        .arg(workspace().join("scenarios/outage/short-blackhole.toml"))
        .arg("--out")
        .arg(out.path())
        .env(iscsi_chaos::runner::PANIC_AFTER_SETUP_ENV, "1")
        .status()
        .unwrap();
    let report = report(out.path());
    assert_eq!(status.code(), Some(1), "{report:#?}");
    let entries = &report.scenarios;
    assert_eq!(entries.len(), 2, "both targets ran: {report:#?}");
    for entry in entries {
        assert_eq!(entry.verdict, Verdict::Error, "{entry:#?}");
        let reason = entry.reasons[0].as_str();
        let removed: u32 = reason
            .split_once("torn down through the ledger (")
            .and_then(|(_, n)| n.split_once(' '))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("reason: {reason}"));
        assert!(reason.starts_with("panic: "), "{reason}");
        // The unwinding itself kills tgtd and deletes the temporary
        // folders (their handles' Drop); the namespace, veth, session and
        // node record (and LIO's configfs objects) are the ledger's to remove.
        assert!(removed >= 4, "{reason}");
    }
    assert_nothing_left("runs that panicked");
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigint_mid_outage_tears_everything_down_and_exits_130_tgt() {
    interrupted_mid_outage("tgt", libc::SIGINT);
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigterm_mid_outage_tears_everything_down_and_exits_143_lio() {
    interrupted_mid_outage("lio", libc::SIGTERM);
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

/// A multipath run killed mid-outage leaves its map (multipathd dies with
/// the harness), its further path's switch and veths and both sessions;
/// `cleanup` removes them all through the ledger.
#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn sigkill_mid_multipath_outage_then_cleanup_restores_the_host() {
    let out = Out::new();
    let scenario = workspace().join("scenarios/multipath/one-path-blackholed.toml");
    let mut child = start_until(
        &scenario,
        out.path(),
        Duration::from_secs(120),
        "its outage over a multipath map",
        || {
            sh("dmsetup table 2>/dev/null").contains(" multipath ")
                && qdiscs_everywhere().contains("netem")
        },
    );
    nix_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let left = leftovers();
    assert!(
        left.iter().any(|l| l.starts_with("dm device")),
        "a killed multipath run should leave its map: {left:#?}"
    );
    let ledger = sh("cat /run/iscsi-chaos/runs/*/ledger.jsonl");
    for kind in ["dm_device", "process", "session", "veth"] {
        assert!(
            ledger.contains(&format!("\"kind\":\"{kind}\"")),
            "no {kind} in the ledger: {ledger}"
        );
    }
    let (said, errors) = cleanup_output();
    assert!(said.contains("dm device"), "cleanup said: {said}");
    assert!(
        !sh("dmsetup table 2>/dev/null").contains(" multipath "),
        "a multipath map is left"
    );
    let left = leftovers();
    assert!(
        left.is_empty(),
        "a killed multipath run followed by cleanup left behind: {left:#?}; cleanup said: {said}; {errors}"
    );
}

/// A run killed while its slow store is slow leaves the dm-delay device and
/// its loop device behind; `cleanup` removes them (after the target that
/// held them) with everything else.
fn sigkill_mid_slow_store_then_cleanup(target: &str) {
    let out = Out::new();
    let scenario = shipped_on("target/slow-store.toml", target, out.path());
    let mut child = start_until(
        &scenario,
        out.path(),
        Duration::from_secs(90),
        "its slow store being slow",
        || sh("dmsetup table 2>/dev/null").contains(" 3000"),
    );
    nix_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let left = leftovers();
    assert!(
        left.iter().any(|l| l.starts_with("dm device"))
            && left.iter().any(|l| l.starts_with("loop device")),
        "a killed slow-store run should leave its devices: {left:#?}"
    );
    let (said, _) = cleanup_output();
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

/// The probe is made to hang in the kernel for real: `replacement_timeout =
/// -1` queues I/O forever while the session is down, and once the probe runs
/// this test drops every packet in the lane's namespace with an nftables
/// table of its own, from outside the harness. The harness's fault clearing
/// cannot lift that (the scenario has no faults; the rule is not ours to
/// know), so the probe stays in D state with a write queued, SIGKILL cannot
/// end it, and only logging the session out (which fails the queued I/O)
/// releases it. A qdisc on the host veth would be removed by the harness's
/// `clear_all`, and stopping tgtd with SIGSTOP would tie the test to one
/// target; a table inside the lane's namespace is gone with the namespace,
/// so it leaves nothing behind by itself either.
fn probe_hung_in_the_kernel(target: &str) {
    let _ = *ISCSID_BEFORE;
    const DURATION_S: u64 = 8;
    const DEADLINE_S: u64 = 6;
    // run.rs's wind-down bounds: SIGKILL grace, logout, release, drain.
    const WIND_DOWN_S: u64 = 5 + 30 + 10 + 2;
    let out = Out::new();
    let scenario = out.path().join("probe-hang.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"version = 1
description = "I/O queued forever behind a link blackholed from outside the harness"
duration_s = {DURATION_S}

[lane]
target = "{target}"

[initiator]
noop_out_interval = 2
noop_out_timeout = 2
replacement_timeout = -1

[expect]
first_error = "none"
deadline_s = {DEADLINE_S}
"#
        ),
    )
    .unwrap();
    let mut child = Command::new(HARNESS)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let netns = loop {
        let ns = sh("ip netns list")
            .lines()
            // The target's namespace, not the switch's (`…-sw<lane>`).
            .find(|l| {
                let name = l.split_whitespace().next().unwrap_or("");
                name.starts_with("iscsi-chaos-")
                    && !name.rsplit('-').next().unwrap_or("").starts_with("sw")
            })
            .map(|l| l.split_whitespace().next().unwrap().to_string());
        let probing = !sh("pgrep -x blkprobe").trim().is_empty();
        match ns {
            Some(ns) if probing => break ns,
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the probe never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let blackholed = Instant::now();
    let rules = "table inet hang {
        chain input { type filter hook input priority -300; policy drop; }
        chain output { type filter hook output priority -300; policy drop; }
    }";
    let nft = Command::new("ip")
        .args(["netns", "exec", &netns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(rules.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(nft.success(), "nft in {netns}");
    let status = child.wait().unwrap();
    let took = blackholed.elapsed();
    let report = report(out.path());
    eprintln!("run ended {took:?} after the blackhole: {report:#?}");
    assert_eq!(
        status.code(),
        Some(1),
        "an error fails the run: {report:#?}"
    );
    let entry = &report.scenarios[0];
    assert_eq!(entry.verdict, Verdict::Error, "{entry:#?}");
    let reason = entry.reasons[0].as_str();
    assert!(reason.starts_with("probe hung:"), "{reason}");
    // The probe writes and reads back: blocked in either.
    assert!(reason.contains("last op: "), "{reason}");
    assert!(reason.contains(", blocked for "), "{reason}");
    assert!(
        reason.contains("logging the session out released it"),
        "the probe should have been in D state, released by the logout: {reason}"
    );
    // The probe's records are kept, up to the blocked operation.
    let history =
        std::fs::read_to_string(out.path().join("probe-hang.history.jsonl")).expect("history");
    assert!(history.contains("stalled"), "no stall recorded");
    // Within its deadline: the I/O phase, the deadline, the bounded wind-down,
    // and teardown (the probe started before the blackhole).
    let bound = Duration::from_secs(DURATION_S + DEADLINE_S + WIND_DOWN_S + 30);
    assert!(took < bound, "took {took:?}, more than {bound:?}");
    assert_nothing_left(&format!("a run on {target} whose probe hung"));
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn a_probe_hung_in_the_kernel_ends_as_error_within_its_deadline_tgt() {
    probe_hung_in_the_kernel("tgt");
}

#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn a_probe_hung_in_the_kernel_ends_as_error_within_its_deadline_lio() {
    probe_hung_in_the_kernel("lio");
}

/// A run whose target needs a tool the host lacks is "skipped" with the
/// reason, not failed, and the rest of the command goes on. tgtd is hidden
/// by a PATH holding only what every run needs (doctor.rs's GLOBAL).
#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn a_run_whose_needs_are_missing_is_skipped_with_the_reason() {
    let _ = *ISCSID_BEFORE;
    let out = Out::new();
    let bin = out.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["iscsiadm", "iscsid", "modprobe"] {
        let path = sh(&format!("command -v {tool}"));
        std::os::unix::fs::symlink(path.trim(), bin.join(tool)).unwrap();
    }
    let scenario = out.path().join("needs-tgt.toml");
    std::fs::write(
        &scenario,
        "version = 1\nduration_s = 5\n[lane]\ntarget = \"tgt\"\n\
         [[fault]]\nkind = \"blackhole\"\nstart_s = 1\nduration_s = 1\n",
    )
    .unwrap();
    let run = Command::new(HARNESS)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .env("PATH", &bin)
        .output()
        .unwrap();
    let report = report(out.path());
    assert_eq!(
        run.status.code(),
        Some(0),
        "skipped is not failed: {report:#?}"
    );
    let s = &report.scenarios[0];
    assert_eq!(s.verdict, Verdict::Skipped, "{s:#?}");
    let reason = s.reasons[0].as_str();
    assert!(
        reason.contains("tgtd is not installed: apt-get install tgt"),
        "{reason}"
    );
    assert_nothing_left("skipped runs");
}

/// Two `iscsi-chaos run` started at the same moment, each running the
/// short blackhole on both targets: each gets its own lane slot (subnet),
/// they share one iscsid (the last one out stops it), both pass, and
/// nothing is left.
#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn two_runs_started_together_both_pass_and_leave_nothing() {
    let _ = *ISCSID_BEFORE;
    let scenario = workspace().join("scenarios/outage/short-blackhole.toml");
    let outs = [Out::new(), Out::new()];
    let children: Vec<std::process::Child> = outs
        .iter()
        .map(|out| {
            Command::new(HARNESS)
                .arg("run")
                .arg(&scenario)
                .arg("--out")
                .arg(out.path())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, out) in children.into_iter().zip(&outs) {
        let status = child.wait_with_output().unwrap().status;
        let report = report(out.path());
        let said = verdicts(&report);
        assert_eq!(status.code(), Some(0), "{said}");
        assert_eq!(report.scenarios.len(), 2, "{said}");
        for s in &report.scenarios {
            assert_eq!(s.verdict, Verdict::Pass, "{said}\n{s:#?}");
        }
    }
    assert_nothing_left("two runs side by side");
}

/// `cleanup` while a run is mid-outage removes nothing of it (the run is
/// live: it holds its registry lock), and the run goes on to pass.
#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn cleanup_mid_outage_leaves_the_live_run_passing() {
    let out = Out::new();
    let child = start_long_outage(out.path(), "tgt");
    let (said, _) = cleanup_output();
    assert_eq!(said.trim(), "nothing to clean up", "{said}");
    // The fault is still in place, the run's objects all there.
    assert!(qdiscs_everywhere().contains("netem"));
    let status = child.wait_with_output().unwrap().status;
    let report = report(out.path());
    assert_eq!(status.code(), Some(0), "{report:#?}");
    assert_eq!(report.scenarios[0].verdict, Verdict::Pass, "{report:#?}");
    assert_nothing_left("a run that cleanup ran beside");
}

/// Folders named like ours but not made by us (in the work base and in
/// /tmp, where earlier versions kept theirs) neither break a run nor get
/// removed by it or by `cleanup`.
#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn planted_folders_named_like_ours_are_left_alone() {
    let _ = *ISCSID_BEFORE;
    let out = Out::new();
    let work = Path::new(iscsi_chaos::ledger::host::WORK);
    std::fs::create_dir_all(work).unwrap();
    let planted = [
        work.join("iscsi-chaos-r0dead-0-tgt"),
        work.join("iscsi-chaos-r0dead-1-lio00aa11bb22cc"),
        PathBuf::from("/tmp/iscsi-chaos-r0dead-0-tgt"),
    ];
    for dir in &planted {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("keep"), b"not yours").unwrap();
    }
    let scenario = shipped_on("outage/short-blackhole.toml", "tgt", out.path());
    let status = Command::new(HARNESS)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let report = report(out.path());
    assert_eq!(status.code(), Some(0), "{report:#?}");
    cleanup_output();
    for dir in &planted {
        assert_eq!(
            std::fs::read(dir.join("keep")).ok().as_deref(),
            Some(&b"not yours"[..]),
            "{} was touched",
            dir.display()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
    assert_nothing_left("a run beside planted folders");
}

/// Two lanes side by side in one run (`--jobs 2`): one blackholed, the
/// other quiet. The quiet one sees no stall beyond its normal latency and
/// none of the other session's kernel lines; the blackholed one behaves as
/// it does alone.
#[test]
#[ignore = "lab: needs root and the iSCSI kernel stack (run by `cargo xtask test`)"]
fn a_blackhole_on_one_lane_leaves_the_lane_beside_it_alone() {
    let _ = *ISCSID_BEFORE;
    let out = Out::new();
    let broken = shipped_on("outage/long-blackhole.toml", "tgt", out.path());
    let quiet = out.path().join("quiet.toml");
    std::fs::write(
        &quiet,
        "version = 1\nduration_s = 30\n[lane]\ntarget = \"lio\"\n\
         [[probe]]\nkind = \"blkprobe\"\ninterval_ms = 10\n",
    )
    .unwrap();
    let status = Command::new(HARNESS)
        .arg("run")
        .args([&broken, &quiet])
        .args(["--jobs", "2", "--out"])
        .arg(out.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let report = report(out.path());
    assert_eq!(status.code(), Some(0), "{report:#?}");
    let entry = |name: &str| {
        report
            .scenarios
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no {name}: {report:#?}"))
    };
    let (b, q) = (entry("long-blackhole"), entry("quiet"));
    assert_eq!(b.verdict, Verdict::Pass, "{b:#?}");
    assert!(b.measured.first_error_s.is_some(), "{b:#?}");
    assert_eq!(q.verdict, Verdict::Pass, "{q:#?}");
    assert_eq!(q.measured.errors, 0, "{q:#?}");
    assert!(q.measured.max_stall_s < 2.0, "{q:#?}");
    let history = std::fs::read_to_string(out.path().join("quiet.history.jsonl")).unwrap();
    assert!(
        !history.contains("detected conn error"),
        "the quiet lane's history holds the other session's kernel lines"
    );
    assert_nothing_left("two lanes side by side");
}
