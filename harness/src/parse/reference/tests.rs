use std::path::PathBuf;

use serde::de::DeserializeOwned;

use super::*;
use crate::model::keys::names;
use crate::parse::raw::{
    RawCapture, RawExpect, RawFencing, RawHost, RawInitiator, RawLane, RawMultipath, RawProbe,
    RawScenario,
};
use crate::parse::schema;

fn docs_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/scenarios.md")
}

/// The keys serde accepts for `T` (a `deny_unknown_fields` struct), read
/// from its error for an unknown key: the parser's side, not the table's.
fn serde_fields<T: DeserializeOwned>() -> Vec<String> {
    let Err(e) = toml::from_str::<T>("zz_not_a_key = 1") else {
        panic!("an unknown key was accepted");
    };
    let msg = e.message().to_string();
    let expected = msg.split_once("expected").expect(&msg).1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every table with fixed keys, with the keys serde accepts in it.
fn accepted() -> Vec<(&'static str, Vec<String>)> {
    let tables = [
        "lane",
        "initiator",
        "probe",
        "fault",
        "expect",
        "multipath",
        "capture",
        "sweep",
        "host",
        "fencing",
    ];
    let top: Vec<String> = serde_fields::<RawScenario>()
        .into_iter()
        .filter(|k| !tables.contains(&k.as_str()))
        .collect();
    vec![
        ("", top),
        ("lane", serde_fields::<RawLane>()),
        ("multipath", serde_fields::<RawMultipath>()),
        ("initiator", serde_fields::<RawInitiator>()),
        ("probe", serde_fields::<RawProbe>()),
        ("expect", serde_fields::<RawExpect>()),
        ("capture", serde_fields::<RawCapture>()),
        ("host", serde_fields::<RawHost>()),
        ("fencing", serde_fields::<RawFencing>()),
    ]
}

#[test]
fn the_committed_reference_is_what_the_code_generates() {
    let generated = markdown();
    let path = docs_path();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/scenarios.md is not what the code generates: regenerate it with `{REGENERATE}` and commit it"
    );
}

#[test]
fn the_schema_tables_are_the_keys_serde_accepts() {
    let raw_scenario = serde_fields::<RawScenario>();
    for table in [
        "lane",
        "initiator",
        "probe",
        "fault",
        "expect",
        "multipath",
        "capture",
        "sweep",
        "host",
        "fencing",
    ] {
        assert!(raw_scenario.iter().any(|k| k == table), "{table}");
    }
    for (table, keys) in accepted() {
        let section = schema::section(table).unwrap_or_else(|| panic!("no section {table:?}"));
        let mut want: Vec<String> = names(section.keys).into_iter().map(String::from).collect();
        let mut got = keys;
        want.sort();
        got.sort();
        assert_eq!(
            got, want,
            "[{table}]: the serde struct and the schema table differ"
        );
    }
}

#[test]
fn the_reference_names_every_kind_and_every_key_the_parser_accepts() {
    let doc = std::fs::read_to_string(docs_path()).unwrap_or_default();
    let mut keys: Vec<String> = accepted().into_iter().flat_map(|(_, k)| k).collect();
    keys.extend(serde_fields::<RawScenario>());
    keys.extend(settings::SETTINGS.iter().map(|s| s.key.to_string()));
    keys.extend(settings::NAMED.iter().map(|(k, _)| k.to_string()));
    let mut missing = Vec::new();
    for k in &keys {
        let in_doc = doc.contains(&format!("`{k}`"))
            || doc.contains(&format!("[{k}]"))
            || doc.contains(&format!("[[{k}]]"));
        if !in_doc {
            missing.push(k.clone());
        }
    }
    for r in KINDS {
        if !doc.contains(&format!("### {}\n", r.name)) {
            missing.push(format!("kind {}", r.name));
        }
        for o in r.options {
            // Each kind's own table names its options.
            if !kind_entry(r).contains(&format!("`{}`", o.key)) || !doc.contains(&kind_entry(r)) {
                missing.push(format!("{}.{}", r.name, o.key));
            }
        }
    }
    for name in profiles::names() {
        if !doc.contains(&format!("### {name}\n")) {
            missing.push(format!("profile {name}"));
        }
    }
    // The fault table's common fields: the list the parser checks by.
    for k in names(schema::FAULT) {
        if !doc.contains(&format!("`{k}`")) {
            missing.push(format!("fault.{k}"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/scenarios.md does not name: {missing:?}"
    );
}

#[test]
fn explain_gives_an_entry_or_the_closest_kind() {
    let mtu = explain("mtu").unwrap();
    assert!(mtu.starts_with("### mtu\n"), "{mtu}");
    assert!(
        mtu.contains("| `mtu` | integer | bytes | required | 576 to 65535 |"),
        "{mtu}"
    );
    assert!(markdown().contains(&mtu));
    let e = explain("mut").unwrap_err();
    assert!(e.contains("did you mean `mtu`"), "{e}");
    let i = index();
    for r in KINDS {
        assert!(i.contains(&format!("  {} ", r.name)), "{i}");
    }
    assert!(i.contains("[initiator.settings]"), "{i}");
}

/// The default a table shows, for key `key` of section `table`.
fn shown_default(table: &str, key: &str) -> &'static str {
    let s = schema::section(table).unwrap();
    s.keys.iter().find(|k| k.key == key).unwrap().default
}

#[test]
fn the_tables_show_the_defaults_the_parser_gives() {
    let text = "version = 1\nduration_s = 10\n[lane]\ntarget = \"tgt\"\n";
    let s = crate::model::Scenario::parse(text, "x.toml").unwrap();
    let given = [
        ("lane", "lun_size_mib", s.lane.lun_size_mib.to_string()),
        ("lane", "paths", s.lane.paths.to_string()),
        ("lane", "alone", s.lane.alone.to_string()),
        ("", "long", s.long.to_string()),
        (
            "initiator",
            "noop_out_interval",
            s.initiator.noop_out_interval.to_string(),
        ),
        (
            "initiator",
            "noop_out_timeout",
            s.initiator.noop_out_timeout.to_string(),
        ),
        (
            "initiator",
            "replacement_timeout",
            s.initiator.replacement_timeout.to_string(),
        ),
        ("expect", "tolerance_s", s.expect.tolerance_s.to_string()),
        ("expect", "deadline_s", s.expect.deadline_s.to_string()),
        ("expect", "recovered", s.expect.recovered.to_string()),
        (
            "expect",
            "max_lost_writes",
            s.expect.max_lost_writes.to_string(),
        ),
        (
            "multipath",
            "polling_interval",
            crate::model::multipath::Multipath::default()
                .polling_interval
                .to_string(),
        ),
    ];
    for (table, key, value) in given {
        assert_eq!(shown_default(table, key), value, "[{table}] {key}");
    }
    // The words of `direction` are the parser's.
    let directions = [
        crate::model::Direction::Both,
        crate::model::Direction::ToTarget,
        crate::model::Direction::ToInitiator,
    ]
    .map(|d| d.as_str());
    let spec = schema::FAULT.iter().find(|k| k.key == "direction").unwrap();
    assert!(
        matches!(spec.bound, Bound::Words(w) if w == directions),
        "{spec:?}"
    );
}
