//! Every shipped scenario parses and validates, and the malformed ones under
//! tests/data/bad are rejected with the line and field they announce.

use std::path::{Path, PathBuf};

use iscsi_chaos::model::{Scenario, TargetKind};
use iscsi_chaos::oracle::{predict_run, predict_scenario, timer_slack_s};

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(toml_files(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_shipped_scenario_parses_and_is_decidable() {
    let files = toml_files(&root().join("scenarios"));
    assert!(files.len() >= 2, "{files:?}");
    for path in files {
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        // Per target: target faults differ between tgt and LIO.
        for run in s.expand() {
            let p = predict_run(&run);
            let id = format!("{} on {}", path.display(), run.target);
            // A shipped scenario must not sit on a model boundary, and must
            // leave time for recovery inside its I/O phase.
            assert!(!p.borderline, "{id}: borderline: {:?}", p.notes);
            // A chain of repeated disruptions (the retry limit's sixth)
            // spans iscsid's early relogin ticks: wider, as the lab is
            // (mtu-mismatch: 2.4 s); anything else within 1.5 s.
            let chain = p.notes.iter().any(|n| n.contains("at the sixth"));
            let widest = if chain { 2.5 } else { 1.5 };
            assert!(p.tolerance_s <= widest, "{id}: ± {}", p.tolerance_s);
            if let (Some(last), Some(rec)) = (s.faults.last(), p.recovery_s) {
                assert!(
                    last.end_s() + rec.hi + 1.0 < s.duration_s,
                    "{id}: recovery expected at {} s, I/O phase ends at {} s",
                    last.end_s() + rec.hi,
                    s.duration_s
                );
            }
        }
    }
}

#[test]
fn outage_scenarios_say_what_the_issue_asks() {
    let dir = root().join("scenarios/outage");
    let short = Scenario::load(dir.join("short-blackhole.toml")).unwrap();
    let long = Scenario::load(dir.join("long-blackhole.toml")).unwrap();
    assert_eq!(short.name, "short-blackhole");
    assert_eq!(short.expand()[0].target, TargetKind::Tgt);

    let p = predict_scenario(&short);
    assert_eq!(p.first_error_s, None);
    let stall = p.max_stall_s.unwrap();
    let outage = short.faults[0].duration_s;
    // A stall about as long as the outage, inside the scenario's bounds.
    assert!((stall.hi - outage).abs() <= 1.0, "{stall:?}");
    assert!(stall.hi <= short.expect.max_stall_s.unwrap());
    assert!(stall.lo >= short.expect.min_stall_s.unwrap());

    let p = predict_scenario(&long);
    let i = &long.initiator;
    let inr = f64::from(i.noop_out_interval + i.noop_out_timeout) + i.replacement_timeout as f64;
    // Up to the timer wheel's slack late: the centre moves by half of it.
    let half_slack = timer_slack_s(i.replacement_timeout as f64) / 2.0;
    assert!(
        (p.first_error_s.unwrap() - inr - half_slack).abs() < 0.1,
        "{p:#?}"
    );
    assert!(p.recovery_s.unwrap().hi <= long.expect.max_recovery_s.unwrap());
    // Both run well under a minute.
    assert!(short.duration_s < 60.0 && long.duration_s < 60.0);
}

#[test]
fn malformed_scenarios_name_line_and_field() {
    let files = toml_files(&root().join("harness/tests/data/bad"));
    assert!(files.len() >= 10);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        // First line: `# expect: LINE FIELD MESSAGE-PART`.
        let spec = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .unwrap();
        let mut parts = spec.splitn(3, ' ');
        let line: usize = parts.next().unwrap().parse().unwrap();
        let field = parts.next().unwrap();
        let part = parts.next().unwrap();
        // As the command line reads a file: its sweep expanded.
        let err = Scenario::load_swept(&path, &[]).expect_err(&path.display().to_string());
        let d = &err.diagnostics()[0];
        let shown = err.to_string();
        assert_eq!((d.line, d.field.as_str()), (line, field), "{shown}");
        assert!(shown.contains(part), "{shown}");
        let prefix = format!("{}:{line}:{}: {field}: ", path.display(), d.column);
        assert!(shown.starts_with(&prefix), "{shown}");
    }
}

#[test]
fn target_side_scenarios_say_what_they_expect() {
    let dir = root().join("scenarios/target");
    for name in [
        "target-restart",
        "target-stop-lio",
        "portal-remove",
        "access-revoke",
        "slow-store",
    ] {
        let s = Scenario::load(dir.join(format!("{name}.toml"))).unwrap();
        assert!(
            s.description.as_deref().is_some_and(|d| d.len() > 100),
            "{name}"
        );
        for run in s.expand() {
            let p = predict_run(&run);
            let detected = p.detection_s.is_some();
            match name {
                // Sessions closed at once; the long outage fails I/O at R.
                "target-restart" | "target-stop-lio" | "access-revoke" => {
                    assert!(detected, "{name}");
                    assert!(p.first_error_s.is_some(), "{name}: {p:#?}");
                }
                // The live session never notices; the slow store is no outage.
                _ => {
                    assert!(!detected, "{name}");
                    assert_eq!(p.first_error_s, None, "{name}");
                }
            }
        }
    }
}

/// Every shipped profile applies cleanly to every shipped scenario, sets
/// what it says, and cites its source.
#[test]
fn shipped_profiles_apply_to_every_shipped_scenario() {
    use iscsi_chaos::parse::iscsid_conf;
    let profiles = root().join("profiles");
    let mut files: Vec<_> = std::fs::read_dir(&profiles)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for profile in files {
        let text = std::fs::read_to_string(&profile).unwrap();
        assert!(
            text.contains("# Source:"),
            "{}: cite the source",
            profile.display()
        );
        let conf = iscsid_conf::read(&profile).unwrap();
        assert!(conf.not_applied.is_empty(), "{:?}", conf.not_applied);
        let rt = conf
            .settings
            .iter()
            .find(|a| a.key == "node.session.timeo.replacement_timeout")
            .and_then(|a| a.values[0].as_integer())
            .expect("a profile sets replacement_timeout");
        for file in toml_files(&root().join("scenarios")) {
            let got = Scenario::load_swept(&file, &conf.settings)
                .unwrap_or_else(|e| panic!("{} on {}: {e}", profile.display(), file.display()));
            assert!(
                got.iter().all(|s| s.initiator.replacement_timeout == rt),
                "{}",
                file.display()
            );
        }
    }
}
