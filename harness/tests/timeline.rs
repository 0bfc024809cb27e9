//! Timeline pictures of recorded lab histories (tests/data/histories):
//! each parses as XML, shows what the run did, and is snapshot-tested
//! (the writer is deterministic).

use std::path::{Path, PathBuf};

use iscsi_chaos::check::check;
use iscsi_chaos::history::History;
use iscsi_chaos::model::Scenario;
use iscsi_chaos::oracle::predict_run;
use iscsi_chaos::report::timeline::{render, Timeline};
use iscsi_chaos::report::{Entry, EntryExt, Timings};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The checked entry and the picture of a recorded `<scenario>@lio` run.
fn picture(folder: &str, name: &str) -> (Entry, String) {
    let scenario = Scenario::load(
        root()
            .join("../scenarios")
            .join(folder)
            .join(format!("{name}.toml")),
    )
    .unwrap();
    let text = std::fs::read_to_string(
        root().join(format!("tests/data/histories/{name}@lio.history.jsonl")),
    )
    .unwrap();
    let history = History::from_json_lines(&text).unwrap();
    let run = scenario
        .expand()
        .into_iter()
        .find(|r| r.target.to_string() == "lio")
        .unwrap();
    let p = predict_run(&run);
    let c = check(&history, &run.scenario, &p);
    let origin = history.first_fault_begin().unwrap();
    let entry = Entry::checked(&run, &p, &c, origin, Timings::default());
    let svg = render(&Timeline::new(&entry, &history));
    (entry, svg)
}

fn check_picture(folder: &str, name: &str) -> String {
    let (entry, svg) = picture(folder, name);
    let doc = roxmltree::Document::parse(&svg).expect("the timeline is XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    // Every fault is labelled, the session band is drawn, the verdict is
    // in the title.
    for (i, f) in entry.faults.iter().enumerate() {
        assert!(
            svg.contains(&format!("fault[{i}] {}", f.label)),
            "{name}: fault[{i}]"
        );
    }
    assert!(svg.contains("LOGGED_IN from"), "{name}: no session band");
    assert!(svg.contains(&format!(
        "{}: {}",
        entry.id,
        entry.verdict.as_str().to_uppercase()
    )));
    // The same history draws the same bytes.
    assert_eq!(picture(folder, name).1, svg);
    svg
}

#[test]
fn long_blackhole_on_lio() {
    let svg = check_picture("outage", "long-blackhole");
    assert!(
        svg.contains("recovery timed out"),
        "the kernel's recovery timeout is marked"
    );
    assert!(svg.contains("predicted first error"));
    insta::assert_snapshot!(svg);
}

#[test]
fn mtu_mismatch_on_lio() {
    insta::assert_snapshot!(check_picture("path", "mtu-mismatch"));
}

#[test]
fn slow_store_on_lio() {
    insta::assert_snapshot!(check_picture("target", "slow-store"));
}

/// A ghost write recorded in the lab (bookworm, LIO, 2026-12-07; the
/// history keeps block 6's operations and WRITEs, and every frame the
/// stall held): write seq 780 of block 6 was held on path 1, retried and
/// acknowledged on path 0 at 9.3 s, rewritten there since, and the held
/// copy reached the target when the controller resumed, 25 s after the
/// stall began.
#[test]
fn a_ghost_write_on_lio_is_a_stale_version_with_the_late_write_that_made_it() {
    let (entry, svg) = picture("integrity", "ghost-write-after-failover");
    assert_eq!(entry.verdict.as_str(), "pass", "{:?}", entry.reasons);
    assert_eq!(entry.expected.possible_damage, ["stale version"]);
    let b = &entry.measured.bad_blocks;
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!((b[0].block, b[0].class.as_str()), (6, "stale version"));
    assert!(matches!(
        b[0].found,
        Some(iscsi_chaos_formats::probe::Found::Stamp { seq: 780, block: 6 })
    ));
    // The acknowledgement of seq 780 came through path 0 at 9.3 s; the
    // WRITE that overwrote newer versions was sent on path 1 just before
    // the stall and reached the target 25 s later.
    let late = &b[0].late_writes;
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].path, 1);
    assert!(late[0].sent_s.abs() < 0.05, "{late:?}");
    assert!((late[0].reached_s - 25.0).abs() < 0.1, "{late:?}");
    assert!(entry
        .reasons
        .iter()
        .any(|r| r.contains("block 6 (stale version)") && r.contains("sent on path 1")));
    assert!(
        svg.contains("block 6 stale version"),
        "the timeline marks it"
    );
}
