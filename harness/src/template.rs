//! `iscsi-chaos init DIR`: a starter project for a team's own settings,
//! kept in their own repository. Pure: the files as (relative path, text);
//! the CLI writes them.
//!
//! - `iscsid.conf`: the settings under test (the host's own, when it has
//!   one, else open-iscsi's defaults), never with a secret: each line
//!   setting a CHAP name or secret (`model::settings::is_secret`), commented
//!   out or not, is replaced by a note to set it from a CI secret store;
//! - `scenarios/`: a silent outage and a target restart against it;
//! - `compare-baseline.sh`: keep a baseline report, compare each run with it;
//! - `.github/workflows/iscsi-chaos.yml`: the reusable workflow, called
//!   with these scenarios and this iscsid.conf.

use crate::model::settings;

/// One file of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: &'static str,
    pub text: String,
    pub executable: bool,
}

impl File {
    /// The mode to write it with: 0600 while it holds a secret, else 0755
    /// for a script and 0644 for the rest.
    pub fn mode(&self) -> u32 {
        if self.text.lines().any(|l| secret_key(l).is_some()) {
            0o600
        } else if self.executable {
            0o755
        } else {
            0o644
        }
    }
}

/// The template: its files, and the iscsid.conf lines left out as secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub files: Vec<File>,
    pub redacted: Vec<Redacted>,
}

/// An iscsid.conf line that set a secret, left out of the copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    /// 1-based, in the conf read.
    pub line: usize,
    pub key: String,
}

/// The key of an iscsid.conf line that sets a secret (a CHAP name or
/// secret, as `model::settings::is_secret` says), commented out or not:
/// a commented-out credential is still one.
fn secret_key(line: &str) -> Option<&str> {
    let (key, _) = line.trim_start().trim_start_matches('#').split_once('=')?;
    let key = key.trim();
    let is_key = !key.is_empty() && !key.contains(char::is_whitespace);
    (is_key && settings::is_secret(key)).then_some(key)
}

/// `text` without its secrets: each line setting one replaced by a comment
/// (that sets nothing) saying where it belongs, and a line at the top
/// saying so; and which lines those were.
pub fn redact_conf(text: &str) -> (String, Vec<Redacted>) {
    let mut redacted = Vec::new();
    let mut body = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        match secret_key(line) {
            Some(key) => {
                body.push_str(&format!(
                    "# {key}: left out by iscsi-chaos init (a secret); set it from your CI's secret store\n"
                ));
                redacted.push(Redacted {
                    line: i + 1,
                    key: key.to_string(),
                });
            }
            None => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    if redacted.is_empty() {
        return (body, redacted);
    }
    let head = format!(
        "# iscsi-chaos init left {} CHAP name and secret line(s) out of this copy: \
         keep credentials in your CI's secret store, never in this file.\n",
        redacted.len()
    );
    (head + &body, redacted)
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
      # Gate on a kept report: the first run says where to put it
      # (compare-baseline.sh keeps one when run by hand).
      baseline: baseline/report.json
"#;

/// Where the workflow takes the harness from until the user says
/// (`init --harness-repo`): a placeholder the last line of `init` names.
pub const HARNESS_REPO_PLACEHOLDER: &str = "OWNER/iscsi-chaos";

/// The template's files. `iscsid_conf`: the host's own iscsid.conf text,
/// if it has one; copied without its secrets.
pub fn files(iscsid_conf: Option<&str>) -> Template {
    files_for(iscsid_conf, None)
}

/// [`files`], with the workflow taking iscsi-chaos from `harness_repo`
/// (`owner/name`) when given.
pub fn files_for(iscsid_conf: Option<&str>, harness_repo: Option<&str>) -> Template {
    let conf = match iscsid_conf {
        Some(text) => text.to_string(),
        None => format!(
            "# No iscsid.conf was found on the machine `iscsi-chaos init` ran on:\n\
             # these are open-iscsi's defaults. Put your hosts' settings here.\n{}\
             # Use: the scenarios in scenarios/ name this file (iscsid_conf = \"../iscsid.conf\").\n",
            // The profile's own usage line names this repository's
            // profiles/ folder, which the user's project does not have.
            crate::model::profiles::profile("open-iscsi-defaults")
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.starts_with("# Use:"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        ),
    };
    let workflow = WORKFLOW.replace(
        HARNESS_REPO_PLACEHOLDER,
        harness_repo.unwrap_or(HARNESS_REPO_PLACEHOLDER),
    );
    let (conf, redacted) = redact_conf(&conf);
    let file = |path, text: &str, executable| File {
        path,
        text: text.to_string(),
        executable,
    };
    let files = vec![
        file("iscsid.conf", &conf, false),
        file("scenarios/silent-outage.toml", SILENT, false),
        file("scenarios/target-restart.toml", RESTART, false),
        file("compare-baseline.sh", COMPARE, true),
        file(".github/workflows/iscsi-chaos.yml", &workflow, false),
    ];
    Template { files, redacted }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_scenarios_use_its_iscsid_conf_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        for f in files(Some("node.session.timeo.replacement_timeout = 7\n")).files {
            let p = dir.path().join(f.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &f.text).unwrap();
        }
        for name in ["silent-outage", "target-restart"] {
            let path = dir.path().join(format!("scenarios/{name}.toml"));
            let s = crate::model::Scenario::load_swept(&path, &[]).unwrap();
            assert_eq!(s[0].initiator.replacement_timeout, 7, "{name}");
        }
        let defaults = files(None).files;
        assert!(
            !defaults[0].text.contains("profiles/"),
            "{}",
            defaults[0].text
        );
        let wf = |t: Template| {
            t.files
                .into_iter()
                .find(|f| f.path.ends_with(".yml"))
                .unwrap()
                .text
        };
        assert!(wf(files(None)).contains(HARNESS_REPO_PLACEHOLDER));
        let mine = wf(files_for(None, Some("acme/iscsi-chaos")));
        assert!(!mine.contains("OWNER"), "{mine}");
        assert!(mine.contains("uses: acme/iscsi-chaos/.github/workflows/suite.yml@main"));
        assert!(mine.contains("harness-repository: acme/iscsi-chaos"));
        assert!(defaults[0].text.contains("replacement_timeout = 120"));
    }

    #[test]
    fn the_copied_iscsid_conf_holds_no_secret() {
        let host = "node.session.timeo.replacement_timeout = 7\n\
                    node.session.auth.authmethod = CHAP\n\
                    node.session.auth.username = iqn.example:alice-chap\n\
                    node.session.auth.password = 98765432101234\n\
                    #node.session.auth.password_in = 11112222333344\n\
                    discovery.sendtargets.auth.password = 55556666777788\n\
                    node.conn[0].timeo.auth_timeout = 45\n";
        // As root wrote it: never copied with its secrets, nor world-readable with them.
        let raw = File {
            path: "iscsid.conf",
            text: host.to_string(),
            executable: false,
        };
        assert_eq!(raw.mode(), 0o600);
        let t = files(Some(host));
        let conf = &t.files[0];
        for secret in [
            "alice-chap",
            "98765432101234",
            "11112222333344",
            "55556666777788",
        ] {
            assert!(!conf.text.contains(secret), "{secret} in\n{}", conf.text);
        }
        assert_eq!(conf.mode(), 0o644);
        assert!(
            conf.text.starts_with("# iscsi-chaos init left 4 CHAP"),
            "{}",
            conf.text
        );
        assert!(conf
            .text
            .contains("# node.session.auth.password: left out by iscsi-chaos init (a secret); set it from your CI's secret store\n"));
        // What is no secret stays.
        for kept in [
            "node.session.timeo.replacement_timeout = 7\n",
            "node.session.auth.authmethod = CHAP\n",
            "node.conn[0].timeo.auth_timeout = 45\n",
        ] {
            assert!(conf.text.contains(kept), "{kept}");
        }
        let said: Vec<(usize, &str)> = t
            .redacted
            .iter()
            .map(|r| (r.line, r.key.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                (3, "node.session.auth.username"),
                (4, "node.session.auth.password"),
                (5, "node.session.auth.password_in"),
                (6, "discovery.sendtargets.auth.password"),
            ]
        );
        // The copy still reads as an iscsid.conf, with no credential in it.
        let parsed = crate::parse::sweep::iscsid_conf::parse("iscsid.conf", &conf.text).unwrap();
        assert!(
            !format!("{parsed:?}").contains("auth.password"),
            "{parsed:?}"
        );
        // Without secrets: copied as it is, no header.
        assert_eq!(files(None).redacted, []);
        assert!(!files(None).files[0]
            .text
            .starts_with("# iscsi-chaos init left"));
    }
}
