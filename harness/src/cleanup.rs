//! Leftovers of crashed or killed runs, and the registry of live runs that
//! tells them apart from runs still going.
//!
//! A run registers `/run/iscsi-chaos/runs/<run id>` (holding its pid) before
//! it creates anything. An object is stale when it carries our marker (the
//! `iscsi-chaos-` namespace prefix, our veth prefix, our IQN prefix, our
//! temporary-folder prefix) and its run is not live. Nothing without our
//! marker is ever touched.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::netns::NetNs;
use crate::topology;

const REGISTRY: &str = "/run/iscsi-chaos/runs";
/// The IQN prefix of every target we create (see `target::iqn_for`).
pub const IQN_PREFIX: &str = "iqn.2026-11.io.iscsi-chaos:";

/// This process's entry in the registry; removed on drop.
pub struct LiveRun {
    path: PathBuf,
}

impl LiveRun {
    pub fn register(run_id: &str) -> std::io::Result<LiveRun> {
        std::fs::create_dir_all(REGISTRY)?;
        let path = Path::new(REGISTRY).join(run_id);
        std::fs::write(&path, std::process::id().to_string())?;
        Ok(LiveRun { path })
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Run ids whose process still lives (entries of dead ones are removed).
fn live_runs() -> Vec<String> {
    let mut live = Vec::new();
    let Ok(dir) = std::fs::read_dir(REGISTRY) else {
        return live;
    };
    for entry in dir.flatten() {
        let pid = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let alive = pid
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if alive {
            live.push(entry.file_name().to_string_lossy().into_owned());
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    live
}

/// The run id inside one of our names: `iscsi-chaos-<run>-<lane>`, or an IQN
/// `…:<run>-<lane>`.
fn run_of(name_tail: &str) -> Option<&str> {
    name_tail.rsplit_once('-').map(|(run, _lane)| run)
}

/// Removes every stale object; returns a description of each.
pub async fn stale() -> Vec<String> {
    let live = live_runs();
    let is_live = |run: &str| live.iter().any(|l| l == run);
    let mut removed = Vec::new();

    // iSCSI sessions and node records first: they hold the lanes' links.
    // Logging out needs iscsid; a killed run's iscsid died with it.
    let mut iscsid = None;
    let ours = sessions();
    if !ours.is_empty() {
        iscsid = crate::initiator::Iscsid::ensure().await.ok();
    }
    for (session, iqn) in ours {
        let tail = &iqn[IQN_PREFIX.len()..];
        if run_of(tail).is_some_and(|r| !is_live(r)) {
            let _ = iscsiadm(&["-m", "session", "-r", &session, "-u"]).await;
            removed.push(format!("session {session} ({iqn})"));
        }
    }
    for (portal, iqn) in node_records().await {
        let tail = &iqn[IQN_PREFIX.len()..];
        if run_of(tail).is_some_and(|r| !is_live(r)) {
            let _ = iscsiadm(&["-m", "node", "-o", "delete", "-T", &iqn, "-p", &portal]).await;
            removed.push(format!("node record {iqn}"));
        }
    }
    if let Some(mut iscsid) = iscsid {
        iscsid.stop().await;
    }
    // Namespaces (with their veths and target processes).
    let reports = if live.is_empty() {
        vec![topology::cleanup_all_runs().await]
    } else {
        let mut runs: Vec<String> = NetNs::list_ours()
            .iter()
            .filter_map(|ns| ns.strip_prefix("iscsi-chaos-").and_then(run_of))
            .filter(|r| !is_live(r))
            .map(str::to_string)
            .collect();
        runs.dedup();
        let mut reports = Vec::new();
        for run in runs {
            reports.push(topology::cleanup_run(&run).await);
        }
        reports
    };
    for report in reports {
        match report {
            Ok(r) => {
                removed.extend(r.netns.into_iter().map(|n| format!("namespace {n}")));
                removed.extend(r.veths.into_iter().map(|v| format!("veth {v}")));
            }
            Err(e) => removed.push(format!("(cleanup of lanes failed: {e:#})")),
        }
    }
    // Target temporary folders (backing files, logs).
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(tail) = name.strip_prefix("iscsi-chaos-") else {
                continue;
            };
            // tempfile appends a random suffix after `<run>-<lane>-`.
            let run = tail.rsplitn(3, '-').nth(2);
            if run.is_some_and(|r| !is_live(r)) && entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
                removed.push(format!("folder {}", entry.path().display()));
            }
        }
    }
    removed
}

async fn iscsiadm(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("iscsiadm").args(args).output().await
}

/// (session id, target IQN) of our sessions, from sysfs.
fn sessions() -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir("/sys/class/iscsi_session") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let iqn = std::fs::read_to_string(e.path().join("targetname")).ok()?;
            let iqn = iqn.trim().to_string();
            let id = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("session")?
                .to_string();
            iqn.starts_with(IQN_PREFIX).then_some((id, iqn))
        })
        .collect()
}

/// (portal, IQN) of our node records, from `iscsiadm -m node`.
async fn node_records() -> Vec<(String, String)> {
    let Ok(out) = iscsiadm(&["-m", "node"]).await else {
        return Vec::new();
    };
    parse_node_list(&String::from_utf8_lossy(&out.stdout))
}

/// Lines of `iscsiadm -m node`: `10.213.0.2:3260,1 iqn...`.
pub fn parse_node_list(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (portal, iqn) = line.trim().split_once(' ')?;
            let portal = portal.split(',').next()?.to_string();
            iqn.starts_with(IQN_PREFIX)
                .then(|| (portal, iqn.trim().to_string()))
        })
        .collect()
}

pub async fn command() -> u8 {
    let removed = stale().await;
    if removed.is_empty() {
        println!("nothing to clean up");
    } else {
        for r in &removed {
            println!("removed {r}");
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_node_records_are_listed() {
        let text = "10.213.0.2:3260,1 iqn.2026-11.io.iscsi-chaos:r1a2b-0\n\
                    192.168.1.5:3260,1 iqn.2001-04.com.example:storage\n";
        assert_eq!(
            parse_node_list(text),
            vec![(
                "10.213.0.2:3260".to_string(),
                "iqn.2026-11.io.iscsi-chaos:r1a2b-0".to_string()
            )]
        );
    }

    #[test]
    fn run_ids_come_from_names_with_a_lane_suffix() {
        assert_eq!(run_of("r1a2b-0"), Some("r1a2b"));
        assert_eq!(run_of("r-x-12"), Some("r-x"));
        assert_eq!(run_of("nolane"), None);
    }
}
