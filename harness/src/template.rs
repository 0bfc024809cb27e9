//! `iscsi-chaos init DIR`: a starter project for a team's own settings,
//! kept in their own repository. Pure: the files as (relative path, text);
//! the CLI writes them.
//!
//! - `iscsid.conf`: the settings under test (the host's own, when it has
//!   one, else open-iscsi's defaults);
//! - `scenarios/`: a silent outage and a target restart against it;
//! - `compare-baseline.sh`: keep a baseline report, compare each run with it;
//! - `.github/workflows/iscsi-chaos.yml`: the reusable workflow, called
//!   with these scenarios and this iscsid.conf.

/// One file of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: &'static str,
    pub text: String,
    pub executable: bool,
}

const SILENT: &str = r#"version = 1
description = """
The storage network goes silent for 20 s (a switch reboot, a pulled cable \
on the array's side): nothing arrives, nothing is refused. With your \
settings the oracle predicts whether I/O fails (EIO) or waits, and when."""
duration_s = 60

[lane]
target = ["tgt", "lio"]   # both open-source targets; drop one if you like

[initiator]
# The settings under test; this file's own keys (below) override single ones.
iscsid_conf = "../iscsid.conf"
# replacement_timeout = 15

[[probe]]
kind = "blkprobe"
interval_ms = 20

[[fault]]
kind = "blackhole"
start_s = 3
duration_s = 20

# [expect] defaults to what the oracle predicts for your settings; pin what
# your application needs instead, for example:
# first_error = "none"
# max_stall_s = 30
"#;

const RESTART: &str = r#"version = 1
description = """
The array's target restarts: its connections close at once and new ones \
are refused for 12 s. Detection is immediate; whether I/O fails depends on \
replacement_timeout."""
duration_s = 40

[lane]
target = "tgt"

[initiator]
iscsid_conf = "../iscsid.conf"

[[probe]]
kind = "blkprobe"
interval_ms = 20

[[fault]]
kind = "target_stop"
start_s = 3
duration_s = 12
"#;

const COMPARE: &str = r#"#!/bin/sh
# Run the scenarios against iscsid.conf and compare with the baseline:
# exit 1 on a regression (a run that stopped passing, a first error that
# appeared, vanished or moved, a stall or recovery that grew).
# The first run keeps its report as the baseline; commit baseline/.
# Needs root, and a host with the iSCSI stack (`iscsi-chaos doctor` says what
# is missing) or ISCSI_CHAOS_LAB=1 to run them in the lab VM, as the workflow
# beside this does in CI.
set -eu
cd "$(dirname "$0")"
lab=${ISCSI_CHAOS_LAB:+--lab}
if [ -f baseline/report.json ]; then
    iscsi-chaos run $lab scenarios/ --out out --baseline baseline/report.json
else
    iscsi-chaos run $lab scenarios/ --out out
    mkdir -p baseline
    cp out/report.json baseline/report.json
    echo "baseline kept in baseline/report.json: commit it"
fi
"#;

const WORKFLOW: &str = r#"# Runs the scenarios against iscsid.conf on each push, on the lab's
# kernels, and publishes report.html, JUnit results and a job summary.
name: iscsi-chaos
on: [push, pull_request, workflow_dispatch]
permissions:
  contents: read
jobs:
  iscsi:
    uses: OWNER/iscsi-chaos/.github/workflows/suite.yml@main
    permissions:
      contents: read
      checks: write
    with:
      harness-repository: OWNER/iscsi-chaos
      scenarios: scenarios
      iscsid-conf: iscsid.conf
      releases: '["bookworm", "trixie"]'
      shards: 1
"#;

/// The template's files. `iscsid_conf`: the host's own iscsid.conf text,
/// if it has one.
pub fn files(iscsid_conf: Option<&str>) -> Vec<File> {
    let conf = match iscsid_conf {
        Some(text) => text.to_string(),
        None => format!(
            "# No iscsid.conf was found on the machine `iscsi-chaos init` ran on:\n\
             # these are open-iscsi's defaults. Put your hosts' settings here.\n{}",
            crate::model::profiles::profile("open-iscsi-defaults").unwrap_or_default()
        ),
    };
    let file = |path, text: &str, executable| File {
        path,
        text: text.to_string(),
        executable,
    };
    vec![
        file("iscsid.conf", &conf, false),
        file("scenarios/silent-outage.toml", SILENT, false),
        file("scenarios/target-restart.toml", RESTART, false),
        file("compare-baseline.sh", COMPARE, true),
        file(".github/workflows/iscsi-chaos.yml", WORKFLOW, false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_scenarios_use_its_iscsid_conf_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        for f in files(Some("node.session.timeo.replacement_timeout = 7\n")) {
            let p = dir.path().join(f.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &f.text).unwrap();
        }
        for name in ["silent-outage", "target-restart"] {
            let path = dir.path().join(format!("scenarios/{name}.toml"));
            let s = crate::model::Scenario::load_swept(&path, &[]).unwrap();
            assert_eq!(s[0].initiator.replacement_timeout, 7, "{name}");
        }
        let defaults = files(None);
        assert!(defaults[0].text.contains("replacement_timeout = 120"));
    }
}
