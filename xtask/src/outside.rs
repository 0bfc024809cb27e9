//! The lab test of `iscsi-chaos run --lab` as a user outside this
//! repository runs it: the harness binary alone in a folder under /tmp (no
//! blkprobe beside it: it is its own probe), a scenario folder there whose
//! scenario names an iscsid.conf beside it, `--iscsid-conf` of another file
//! there, and sudo's SUDO_UID. Checks that the run passed in the guest with
//! both files' settings applied, that console lines name host paths, and
//! that the reports belong to the sudo user.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use iscsi_chaos_formats::report::{Report, Verdict};

use crate::workspace;

/// uid and gid the outputs are handed to (nobody).
const USER: u32 = 65534;

const SCENARIO: &str = r#"version = 1
description = "A 2.5 s blackhole under the site's NOP-Out settings: a stall, no error."
duration_s = 12

[lane]
target = "tgt"
lun_size_mib = 64

[initiator]
iscsid_conf = "../site/iscsid.conf"

[[probe]]
kind = "blkprobe"
interval_ms = 10

[[fault]]
kind = "blackhole"
start_s = 3
duration_s = 2.5
"#;

pub fn check() -> Result<()> {
    let base = tempfile_dir()?;
    let result = check_in(&base);
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    for n in 0..100 {
        let dir =
            std::env::temp_dir().join(format!("iscsi-chaos-outside-{}-{n}", std::process::id()));
        if std::fs::create_dir(&dir).is_ok() {
            return Ok(dir);
        }
    }
    bail!("no temporary folder")
}

fn check_in(base: &Path) -> Result<()> {
    let bin = base.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(
        workspace::target_dir().join("debug/iscsi-chaos"),
        bin.join("iscsi-chaos"),
    )?;
    std::fs::create_dir_all(base.join("site"))?;
    std::fs::create_dir_all(base.join("scenarios"))?;
    std::fs::write(
        base.join("site/iscsid.conf"),
        "node.conn[0].timeo.noop_out_interval = 5\nnode.conn[0].timeo.noop_out_timeout = 5\n",
    )?;
    std::fs::write(
        base.join("extra.conf"),
        "node.session.timeo.replacement_timeout = 7\n",
    )?;
    std::fs::write(base.join("scenarios/outside.toml"), SCENARIO)?;
    let out = Command::new(bin.join("iscsi-chaos"))
        .current_dir(base)
        .args(["run", "--lab", "--iscsid-conf"])
        .arg(base.join("extra.conf"))
        .args(["--out", "out", "scenarios"])
        .env("SUDO_UID", USER.to_string())
        .env("SUDO_GID", USER.to_string())
        .output()
        .context("starting the copied iscsi-chaos")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    let mut problems = Vec::new();
    if !out.status.success() {
        problems.push(format!("run --lab exited with {}", out.status));
    }
    if stdout.contains("/lab/job/in") || stderr.contains("/lab/job/in") {
        problems.push("a console line names a guest path of a copied file".into());
    }
    let report_path = base.join("out/report.json");
    let report: Report = serde_json::from_str(
        &std::fs::read_to_string(&report_path)
            .with_context(|| format!("{} was not written", report_path.display()))?,
    )?;
    let run = report.scenarios.first().context("report.json has no run")?;
    if report.scenarios.len() != 1 || run.verdict != Verdict::Pass {
        problems.push(format!(
            "expected one passing run, got {:?}",
            report
                .scenarios
                .iter()
                .map(|e| (&e.id, e.verdict, &e.reasons))
                .collect::<Vec<_>>()
        ));
    }
    for (key, value) in [
        ("node.conn[0].timeo.noop_out_interval", "5"),
        ("node.session.timeo.replacement_timeout", "7"),
    ] {
        if run.settings.get(key).map(String::as_str) != Some(value) {
            problems.push(format!(
                "{key}: expected {value} (from the copied iscsid.conf files), got {:?}",
                run.settings.get(key)
            ));
        }
    }
    for entry in [base.join("out"), report_path] {
        let uid = std::fs::metadata(&entry)?.uid();
        if uid != USER {
            problems.push(format!(
                "{} belongs to uid {uid}, not SUDO_UID {USER}",
                entry.display()
            ));
        }
    }
    if problems.is_empty() {
        println!("== lab test: run --lab from outside the workspace: ok");
        Ok(())
    } else {
        bail!(
            "run --lab from outside the workspace:\n  {}",
            problems.join("\n  ")
        )
    }
}
