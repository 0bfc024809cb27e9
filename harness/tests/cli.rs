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
