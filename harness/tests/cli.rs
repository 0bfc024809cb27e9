//! The command line as users meet it, without root: bad scenario input exits
//! with status 2 and names the file, line and field; `list` expands targets.

use std::path::{Path, PathBuf};
use std::process::Command;

const HARNESS: &str = env!("CARGO_BIN_EXE_iscsi-chaos");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn every_malformed_scenario_exits_2_naming_file_line_and_field() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data("bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    let out_dir = tempfile::tempdir().unwrap();
    for file in files {
        // First line of each bad file: `# expect: LINE FIELD MESSAGE...`;
        // MESSAGE (with the hint) must appear as written.
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("# expect: ");
        let mut words = expect.split_whitespace();
        let line = words.next().unwrap();
        let field = words.next().unwrap();
        let message = words.collect::<Vec<_>>().join(" ");
        let out = Command::new(HARNESS)
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(out_dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert!(
            stderr.contains(&format!("{}:{line}:", file.display())),
            "{}: no line {line} in: {stderr}",
            file.display()
        );
        assert!(
            stderr.contains(field),
            "{}: no field {field} in: {stderr}",
            file.display()
        );
        assert!(
            stderr.contains(&message),
            "{}: no `{message}` in: {stderr}",
            file.display()
        );
        assert!(
            !out_dir.path().join("report.json").exists(),
            "bad input must not produce a report"
        );
    }
}

#[test]
fn a_missing_scenario_file_is_an_input_error() {
    let out = Command::new(HARNESS)
        .args(["run", "/nonexistent/scenario.toml", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scenario.toml"));
}

#[test]
fn list_shows_every_shipped_scenario_with_its_target() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = Command::new(HARNESS)
        .arg("list")
        .arg(&scenarios)
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    for name in ["long-blackhole", "short-blackhole"] {
        let line = listing
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from: {listing}"));
        assert!(line.contains("tgt"), "{line}");
        assert!(line.contains("lackhole"), "no description in: {line}");
    }
}

/// A valid scenario (the shipped short blackhole).
fn good_scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/outage/short-blackhole.toml")
}

#[test]
fn a_symlink_planted_in_out_is_refused_and_its_target_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("shadow");
    std::fs::write(&victim, "root:$6$secret:19000::::::\n").unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::os::unix::fs::symlink(&victim, out_dir.join("report.json")).unwrap();
    let out = Command::new(HARNESS)
        .arg("run")
        .arg(good_scenario())
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("report.json is a symbolic link"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root:$6$secret:19000::::::\n"
    );
    assert!(std::fs::symlink_metadata(out_dir.join("report.json"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn an_out_folder_other_users_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = Command::new(HARNESS)
        .arg("run")
        .arg(good_scenario())
        .arg("--out")
        .arg(&shared)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("other users can write it"), "{stderr}");
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
}

/// The first two runs of the report snapshot's recorded report (the rest
/// repeat their ids, which a real report never does), timings emptied (the
/// snapshot redacts them).
fn recorded_report() -> serde_json::Value {
    let snap = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots/report__report_json_snapshot.snap"),
    )
    .unwrap();
    // An insta snapshot: a `---` header, then the JSON.
    let json = snap.splitn(3, "---\n").nth(2).unwrap();
    let mut old: serde_json::Value = serde_json::from_str(json).unwrap();
    old["scenarios"].as_array_mut().unwrap().truncate(2);
    for entry in old["scenarios"].as_array_mut().unwrap() {
        entry["timings"] = serde_json::json!({});
    }
    old
}

/// `v` written as `dir/name`; its path.
fn write_json(dir: &Path, name: &str, v: &serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
    p
}

/// `compare A B`: its exit status and stdout.
fn compare(a: &Path, b: &Path) -> (Option<i32>, String) {
    let out = Command::new(HARNESS)
        .arg("compare")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `compare` on a recorded report (the report snapshot's): quiet on the
/// same report and on noise, exit 1 with a line when a first error appears
/// (replacement_timeout shortened under an outage the host rode through).
#[test]
fn compare_flags_a_regression_and_stays_quiet_on_noise() {
    let old = recorded_report();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: &serde_json::Value| write_json(dir.path(), name, v);
    let base = write("old.json", &old);
    let (code, said) = compare(&base, &base);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("0 regression(s)"), "{said}");

    let mut noisy = old.clone();
    noisy["scenarios"][1]["measured"]["first_error_s"] = serde_json::json!(9.6);
    let (code, said) = compare(&base, &write("noisy.json", &noisy));
    assert_eq!(code, Some(0), "{said}");

    let mut worse = old.clone();
    worse["scenarios"][0]["measured"]["first_error_s"] = serde_json::json!(4.2);
    let (code, said) = compare(&base, &write("worse.json", &worse));
    assert_eq!(code, Some(1), "{said}");
    let id = old["scenarios"][0]["id"].as_str().unwrap().to_string();
    assert!(
        said.contains(&format!(
            "regression: {id}: first error appeared at 4.2 s (baseline: none)"
        )),
        "{said}"
    );
    assert!(said.contains("1 regression(s)"), "{said}");
    let (code, _) = compare(&base, &dir.path().join("missing.json"));
    assert_eq!(code, Some(2));
}

/// A report that lost runs (all of them, one, or had them all skipped)
/// fails the comparison, a line per run; settings that differ are named,
/// each; reports of another schema are refused.
#[test]
fn compare_fails_on_missing_or_skipped_runs_and_names_every_changed_setting() {
    let old = recorded_report();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: &serde_json::Value| write_json(dir.path(), name, v);
    let base = write("old.json", &old);
    let ids: Vec<String> = old["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();

    let mut empty = old.clone();
    empty["scenarios"] = serde_json::json!([]);
    let (code, said) = compare(&base, &write("empty.json", &empty));
    assert_eq!(code, Some(1), "{said}");
    for id in &ids {
        assert!(
            said.contains(&format!("regression: {id}: in the baseline, not run")),
            "{said}"
        );
    }

    let mut skipped = old.clone();
    for e in skipped["scenarios"].as_array_mut().unwrap() {
        e["verdict"] = serde_json::json!("skipped");
    }
    let (code, said) = compare(&base, &write("skipped.json", &skipped));
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(said.matches("regression: ").count(), ids.len(), "{said}");

    let mut one_missing = old.clone();
    one_missing["scenarios"].as_array_mut().unwrap().remove(1);
    let missing = write("one-missing.json", &one_missing);
    let (code, said) = compare(&base, &missing);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("regression: {}: in the baseline, not run", ids[1])),
        "{said}"
    );
    let out = Command::new(HARNESS)
        .arg("compare")
        .arg(&base)
        .arg(&missing)
        .arg("--allow-missing")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    let mut retuned = old.clone();
    for e in retuned["scenarios"].as_array_mut().unwrap() {
        let settings = e["settings"].as_object_mut().unwrap();
        settings.insert(
            "node.session.timeo.replacement_timeout".into(),
            serde_json::json!("120"),
        );
        settings.insert(
            "node.conn[0].timeo.noop_out_interval".into(),
            serde_json::json!("30"),
        );
    }
    let (code, said) = compare(&base, &write("retuned.json", &retuned));
    assert_eq!(code, Some(0), "{said}");
    let old_rt = old["scenarios"][0]["settings"]["node.session.timeo.replacement_timeout"]
        .as_str()
        .unwrap();
    assert!(
        said.contains(&format!("setting: replacement_timeout {old_rt} -> 120")),
        "{said}"
    );
    assert!(said.contains("setting: noop_out_interval "), "{said}");

    let mut future = old.clone();
    future["schema"] = serde_json::json!(2);
    let (code, _) = compare(&base, &write("future.json", &future));
    assert_eq!(code, Some(2));
}

#[test]
fn a_budget_of_an_unknown_key_or_a_bad_resolution_is_an_input_error() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/outage/long-blackhole.toml"
    );
    for (args, said) in [
        (vec!["--vary", "nope"], "unknown sweep key `nope`"),
        (
            vec!["--resolution", "0"],
            "--resolution must be at least 0.1 s",
        ),
        (vec!["--vary", "fault[3].duration_s"], "fault"),
    ] {
        let out = Command::new(HARNESS)
            .args(["budget", scenario, "--out"])
            .arg(tempfile::tempdir().unwrap().path())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
}

/// `budget --predict-only` (no --out): a timer's boundary on a 40 s
/// outage, a range that is empty, a value of the wrong kind named by the
/// option given.
#[test]
fn a_budget_prediction_answers_for_timers_and_refuses_an_empty_range() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/outage/long-blackhole.toml"
    );
    let budget = |args: &[&str]| {
        let out = Command::new(HARNESS)
            .args(["budget", scenario, "--predict-only"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let outage = [
        "--set",
        "fault[0].duration_s=40",
        "--set",
        "noop_out_interval=5",
        "--set",
        "noop_out_timeout=5",
    ];
    for vary in ["replacement_timeout", "noop_out_interval"] {
        let (code, said) = budget(&[&["--vary", vary][..], &outage].concat());
        assert_eq!(code, Some(0), "{vary}: {said}");
        assert!(
            said.contains(&format!("the oracle predicts {vary} ")),
            "{said}"
        );
        assert!(
            said.contains("boundary") || said.contains("whole range"),
            "{said}"
        );
    }
    let (code, said) = budget(&["--min", "30", "--max", "20"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("30..20 is empty"), "{said}");
    let (code, said) = budget(&["--set", "replacement_timeout=1.5"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("--set replacement_timeout") && said.contains("expected a whole number"),
        "{said}"
    );
    assert!(!said.contains("--sweep"), "{said}");
}

/// `predict` on a shipped scenario: each run's settings with their
/// origins, the predicted figures and the model's reasoning.
#[test]
fn predict_tells_the_settings_their_origins_and_the_oracles_reasoning() {
    let out = Command::new(HARNESS)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "predict",
            "scenarios/outage/long-blackhole.toml",
            "--sweep",
            "replacement_timeout=5,40",
            "--sweep",
            "target=tgt",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(stdout);
}

#[test]
fn list_names_the_paths_it_found_no_scenario_in() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.txt");
    std::fs::write(&typo, "").unwrap();
    let out = Command::new(HARNESS)
        .arg("list")
        .arg(&typo)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains(&typo.display().to_string()), "{stderr}");
}

#[test]
fn long_scenarios_in_folders_wait_for_long_and_are_marked_in_the_list() {
    let tuning = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/tuning");
    let out = Command::new(HARNESS)
        .args(["list", tuning])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .filter(|l| l.starts_with("silent-outage-grid["))
            .all(|l| l.contains("(long)")),
        "{text}"
    );
    assert!(text
        .lines()
        .any(|l| l.starts_with("seed[") && !l.contains("(long)")));
    // `run` says what it leaves out (before it needs root).
    let out = Command::new(HARNESS)
        .args(["run", tuning, "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("24 long scenario point(s) left out (minutes each): add --long"),
        "{stderr}"
    );
}

#[test]
fn init_writes_a_project_whose_scenarios_list_and_refuses_a_full_folder() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("x");
    let out = Command::new(HARNESS)
        .args(["init"])
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for f in [
        "iscsid.conf",
        "scenarios/silent-outage.toml",
        "scenarios/target-restart.toml",
        "compare-baseline.sh",
        ".github/workflows/iscsi-chaos.yml",
    ] {
        assert!(project.join(f).is_file(), "{f}");
    }
    let list = Command::new(HARNESS)
        .arg("list")
        .arg(project.join("scenarios"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(list.status.code(), Some(0), "{list:?}");
    assert_eq!(text.lines().count(), 3, "{text}");
    let again = Command::new(HARNESS)
        .args(["init"])
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

#[test]
fn run_in_the_lab_checks_a_scenario_outside_the_workspace_on_the_host() {
    // A syntax error in the user's own file is reported with the user's
    // path and line before any VM boots.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("mine.toml");
    std::fs::write(
        &bad,
        "version = 1\nname = \"mine\"\nduration_s = 20\n[lane\ntarget = \"tgt\"\n",
    )
    .unwrap();
    let out = Command::new(HARNESS)
        .args(["run", "--lab", "--out"])
        .arg(dir.path().join("out"))
        .arg(&bad)
        .env("ISCSI_CHAOS_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:4", bad.display())),
        "names the host path and line: {stderr}"
    );
    assert!(!stderr.contains("/lab/job"), "{stderr}");
    assert!(
        !dir.path().join("cache").exists(),
        "nothing booted or built"
    );
    // A missing --iscsid-conf is named too.
    let out = Command::new(HARNESS)
        .args([
            "run",
            "--lab",
            "--iscsid-conf",
            "/nonexistent/iscsid.conf",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .arg(good_scenario())
        .env("ISCSI_CHAOS_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/iscsid.conf"));
}

#[test]
fn the_harness_binary_is_the_probe_under_the_probes_name() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("blkprobe");
    std::os::unix::fs::symlink(HARNESS, &probe).unwrap();
    let out = Command::new(&probe).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text.contains("Write-then-read probe") && text.contains("--device"),
        "{text}"
    );
    // A bad argument is the probe's own error (clap: status 2).
    let out = Command::new(&probe).arg("--nonsense").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("blkprobe"));
}

#[test]
fn explain_prints_a_kinds_entry_and_refuses_an_unknown_kind() {
    let out = Command::new(HARNESS)
        .args(["explain", "mtu"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("### mtu\n"), "{stdout}");
    assert!(
        stdout.contains("| `mtu` | integer | bytes | required | 576 to 65535 |"),
        "{stdout}"
    );
    // The same text as the reference's entry.
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenarios.md"))
            .unwrap();
    assert!(docs.contains(&*stdout), "{stdout}");

    let out = Command::new(HARNESS)
        .args(["explain", "nosuch"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown fault kind `nosuch`"), "{stderr}");
    let out = Command::new(HARNESS)
        .args(["explain", "mut"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean `mtu`"),
        "{out:?}"
    );

    let out = Command::new(HARNESS).arg("explain").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("  netem ") && stdout.contains("[[fault]]"),
        "{stdout}"
    );
}
