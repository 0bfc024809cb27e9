//! The targets' SCSI-3 persistent reservations as a peer's suite sees them:
//! libiscsi's `iscsi-test-cu` (Debian's libiscsi-bin), its `SCSI.Prin*`
//! and `SCSI.Prout*` tests, logged in under two initiator names, against a
//! LUN of each backend. Fencing (PREEMPT AND ABORT of a partitioned
//! host's key) stands on these; a target or kernel change that breaks
//! them shows here first. Root-only (the lab runs it):
//! `cargo test -p iscsi-chaos --test reservations -- --ignored`.
//!
//! LIO writes reservation state under its `db_root` (`/var/target`): with
//! no `pr` folder there every PERSISTENT RESERVE OUT fails with NOT READY.
//! The test makes the folders it needs and removes those it made (with
//! what LIO wrote in them for its LUNs).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use iscsi_chaos::env::lane::Lane;
use iscsi_chaos::env::target::lio;
use iscsi_chaos::env::target::{InitiatorAllow, LunSpec, Target, TargetKind};

/// Removes the run's LIO objects, namespaces and veths, and the folders it
/// made, on drop (also while unwinding from a failed assertion).
struct RunGuard {
    run_id: String,
    made: Vec<PathBuf>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let id = self.run_id.clone();
        let _ = lio::remove_leftovers(&|r| r == id);
        common::remove_lanes_of_run(&self.run_id);
        // The outermost folder the test made, with what LIO wrote in it
        // for the test's LUNs (APTPL state).
        if let Some(dir) = self.made.first() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The folders of `path` that do not exist yet, made, outermost first.
fn make_dirs(path: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = path
        .ancestors()
        .take_while(|p| !p.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    std::fs::create_dir_all(path).unwrap();
    missing
}

/// What the suite said: tests passed and failed (`Suite.Test`), with the
/// first failed condition of each failure.
#[derive(Debug, Default)]
struct Outcome {
    passed: BTreeSet<String>,
    failed: Vec<(String, String)>,
}

/// Reads CUnit's automated-mode results (`-x`).
fn outcome(xml: &str) -> Outcome {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).expect("CUnit XML parses");
    let text = |n: roxmltree::Node, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut out = Outcome::default();
    for suite in doc.descendants().filter(|n| {
        n.has_tag_name("CUNIT_RUN_SUITE_SUCCESS") || n.has_tag_name("CUNIT_RUN_SUITE_FAILURE")
    }) {
        let name = text(suite, "SUITE_NAME");
        for t in suite.descendants() {
            let test = format!("{name}.{}", text(t, "TEST_NAME"));
            if t.has_tag_name("CUNIT_RUN_TEST_SUCCESS") {
                out.passed.insert(test);
            } else if t.has_tag_name("CUNIT_RUN_TEST_FAILURE")
                && !out.failed.iter().any(|(f, _)| *f == test)
            {
                out.failed.push((test, text(t, "CONDITION")));
            }
        }
    }
    out
}

/// `iscsi-test-cu` on a fresh LUN of `kind`, as two initiators.
async fn run_suite(kind: TargetKind, lane_no: u8, guard: &RunGuard) -> Outcome {
    let mut lane = Lane::create(&guard.run_id, lane_no).await.expect("lane");
    let spec = LunSpec {
        size_bytes: 64 << 20,
        allow: InitiatorAllow::All,
    };
    let mut target = Target::setup(kind, &lane, spec).await.expect("target");
    let portal = target.portal().clone();
    let cwd = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::process::Command::new("iscsi-test-cu")
            .current_dir(cwd.path())
            .args(["-i", "iqn.2026-12.io.iscsi-chaos:host0"])
            .args(["-I", "iqn.2026-12.io.iscsi-chaos:host1"])
            .args(["-t", "SCSI.Prin*,SCSI.Prout*", "--dataloss", "-x"])
            .arg(portal.url())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("iscsi-test-cu timed out")
    .expect("run iscsi-test-cu (apt-get install libiscsi-bin)");
    let results = std::fs::read_dir(cwd.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("-Results.xml"))
        .unwrap_or_else(|| panic!("no CUnit results: {out:?}"));
    let got = outcome(&std::fs::read_to_string(results.path()).unwrap());
    eprintln!("{kind:?}: {got:#?}");
    target.teardown().await.expect("teardown");
    lane.destroy().await.expect("lane down");
    got
}

/// tgt's known shortfalls: READ FULL STATUS is refused, and a UNIT
/// ATTENTION (2A/04, reservations released) the tests do not expect
/// arrives after a reservation changes hands.
const TGT_KNOWN_FAILURES: &[&str] = &[
    "PrinServiceactionRange.Range",
    "ProutReserve.OwnershipEA",
    "ProutReserve.OwnershipEARO",
    "ProutReserve.OwnershipWE",
    "ProutReserve.OwnershipWERO",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lab: needs root, tgt, LIO and libiscsi-bin"]
async fn both_targets_keep_the_reservations_a_peer_suite_checks() {
    let db_root = Path::new("/var/target/pr");
    let guard = RunGuard {
        run_id: format!("t{}-pr", std::process::id()),
        made: make_dirs(db_root),
    };
    let lio = run_suite(TargetKind::Lio, 231, &guard).await;
    assert!(lio.passed.len() >= 20, "{lio:#?}");
    assert!(lio.failed.is_empty(), "LIO: {:#?}", lio.failed);
    let tgt = run_suite(TargetKind::Tgt, 232, &guard).await;
    let failed: BTreeSet<&str> = tgt.failed.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        failed,
        TGT_KNOWN_FAILURES.iter().copied().collect(),
        "tgt: {:#?}",
        tgt.failed
    );
    assert!(tgt.passed.len() >= 15, "{tgt:#?}");
    // The same tests ran on both.
    let all = |o: &Outcome| -> BTreeSet<String> {
        o.passed
            .iter()
            .cloned()
            .chain(o.failed.iter().map(|(t, _)| t.clone()))
            .collect()
    };
    assert_eq!(all(&lio), all(&tgt));
    let made = guard.made.clone();
    drop(guard);
    for dir in made {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
