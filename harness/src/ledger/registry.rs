//! The registry of live runs: `/run/iscsi-chaos/runs/<run id>/pid` (pid and
//! start time), made before a run creates anything; its ledger lies beside
//! it. A run whose process is gone is stale.

use std::path::{Path, PathBuf};

use super::{Ledger, ProcessId};

pub const REGISTRY: &str = "/run/iscsi-chaos/runs";

/// Run `run_id`'s folder in the registry: its `pid` and its ledger.
pub fn run_dir(run_id: &str) -> PathBuf {
    Path::new(REGISTRY).join(run_id)
}

/// This process's entry in the registry. On drop the run stops being live;
/// the folder goes too once its ledger has nothing pending.
pub struct LiveRun {
    dir: PathBuf,
    ledger: Ledger,
}

impl LiveRun {
    pub fn register(run_id: &str) -> std::io::Result<LiveRun> {
        let dir = run_dir(run_id);
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Fails if another run has this id: two runs never share a ledger.
        std::fs::create_dir(&dir)?;
        let me = ProcessId::of(std::process::id() as i32)
            .ok_or_else(|| std::io::Error::other("cannot read /proc/self/stat"))?;
        // The pid file appears whole (written aside, renamed into place).
        let partial = dir.join(".pid.partial");
        std::fs::write(&partial, format!("{} {}", me.pid, me.start_time))?;
        std::fs::rename(&partial, dir.join("pid"))?;
        Ok(LiveRun {
            ledger: Ledger::of_run(run_id),
            dir,
        })
    }

    /// The whole run's ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("pid"));
        if self.ledger.pending().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether the registry entry at `entry` belongs to a process still alive.
/// A folder holds `pid` as "<pid> <start time>"; a plain file (before the
/// ledger) holds the pid alone.
pub fn is_live_entry(entry: &Path) -> bool {
    if entry.is_dir() {
        let text = std::fs::read_to_string(entry.join("pid")).unwrap_or_default();
        let mut words = text.split_whitespace().map(str::parse::<u64>);
        match (words.next(), words.next()) {
            (Some(Ok(pid)), Some(Ok(start_time))) => ProcessId {
                pid: pid as i32,
                start_time,
            }
            .is_alive(),
            _ => false,
        }
    } else {
        let pid = std::fs::read_to_string(entry).unwrap_or_default();
        pid.trim()
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }
}

/// Run ids whose process still lives; the others are returned as stale.
pub fn registered_runs() -> (Vec<String>, Vec<String>) {
    let (mut live, mut stale) = (Vec::new(), Vec::new());
    let Ok(dir) = std::fs::read_dir(REGISTRY) else {
        return (live, stale);
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_live_entry(&entry.path()) {
            live.push(name);
        } else {
            stale.push(name);
        }
    }
    (live, stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_live_only_while_its_very_process_is() {
        let registry = tempfile::tempdir().unwrap();
        let me = ProcessId::of(std::process::id() as i32).unwrap();
        let entry = |name: &str, pid: &str| {
            let dir = registry.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("pid"), pid).unwrap();
            dir
        };
        let live = entry("live", &format!("{} {}", me.pid, me.start_time));
        assert!(is_live_entry(&live));
        // Same pid, another start time: the pid was reused.
        let reused = entry("reused", &format!("{} {}", me.pid, me.start_time + 1));
        assert!(!is_live_entry(&reused));
        // Killed before it wrote its pid.
        assert!(!is_live_entry(&entry("nopid", "")));
        // An entry from before the ledger: a file holding the pid alone.
        let legacy = registry.path().join("legacy");
        std::fs::write(&legacy, me.pid.to_string()).unwrap();
        assert!(is_live_entry(&legacy));
    }
}
