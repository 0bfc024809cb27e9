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
