//! The registry of live runs: `/run/iscsi-chaos/runs/<run id>/`, holding
//! `lock` (an flock the run holds for its whole life), `pid` (pid and start
//! time, for people) and the run's ledger. Made before a run creates
//! anything.
//!
//! A run is live while someone holds its lock: the run itself, or a sweeper
//! that claimed it after it died. The kernel drops the lock when its holder
//! dies, however it dies, so liveness never rests on a pid that may be
//! reused.
//!
//! Invariants:
//! - A run's folder appears whole: it is made under `.new-<run>` with its
//!   lock already held and renamed into place (no replace), under the host
//!   lock; an existing id is refused.
//! - Deciding that a run is dead and claiming it happen under the host lock;
//!   a claimed run looks live to everyone else until its sweeper is done.
//! - Entries that are not plain folders of ours (symlinks, another owner's)
//!   are never touched.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::host::{self, HostLock};
use super::{Ledger, ProcessId};

pub const REGISTRY: &str = "/run/iscsi-chaos/runs";
const PARTIAL_PREFIX: &str = ".new-";

/// Run `run_id`'s folder in the registry: its lock, pid and ledger.
pub fn run_dir(run_id: &str) -> PathBuf {
    Path::new(REGISTRY).join(run_id)
}

/// Whether `run_id` can name a registry folder (and our objects).
fn valid_run_id(run_id: &str) -> bool {
    crate::model::names::check_run_id(run_id).is_ok()
}

/// This process's entry in the registry. On drop the run stops being live;
/// the folder goes too once its ledger has nothing pending.
pub struct LiveRun {
    dir: PathBuf,
    ledger: Ledger,
    _lock: File,
}

impl LiveRun {
    pub fn register(run_id: &str) -> std::io::Result<LiveRun> {
        Self::register_in(&host::base_dir(&["runs"])?, run_id)
    }

    fn register_in(registry: &Path, run_id: &str) -> std::io::Result<LiveRun> {
        if !valid_run_id(run_id) {
            return Err(std::io::Error::other(format!("bad run id {run_id:?}")));
        }
        let _host = HostLock::take_in(registry.parent().unwrap_or(registry))?;
        let partial = registry.join(format!("{PARTIAL_PREFIX}{run_id}"));
        let dir = registry.join(run_id);
        std::fs::DirBuilder::new().mode(0o700).create(&partial)?;
        let made = (|| {
            let lock = host::lock_file(&partial.join("lock"))?;
            if !host::try_lock(&lock, true) {
                return Err(std::io::Error::other("our own new lock is held"));
            }
            let me = ProcessId::of(std::process::id() as i32)
                .ok_or_else(|| std::io::Error::other("cannot read /proc/self/stat"))?;
            std::fs::write(partial.join("pid"), format!("{} {}", me.pid, me.start_time))?;
            // Fails if another run has this id: two runs never share a ledger.
            rename_noreplace(&partial, &dir)?;
            Ok(lock)
        })();
        match made {
            Ok(lock) => Ok(LiveRun {
                ledger: Ledger::at(dir.join("ledger.jsonl")),
                dir,
                _lock: lock,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                Err(e)
            }
        }
    }

    /// The whole run's ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        if self.ledger.pending().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        // The lock goes with the file, after the folder.
    }
}

/// renameat2(RENAME_NOREPLACE): fails if `to` exists, even as an empty
/// folder (plain rename would replace that).
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths, valid for the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What the registry says of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Its lock is held: the run goes on, or a sweeper is removing its
    /// objects. Nothing of it may be touched.
    Live,
    /// Its folder is there and nobody holds its lock.
    Dead,
    /// No folder: finished, swept, or never registered here.
    Absent,
}

/// The state of run `run_id`, now. Cheap: call it right before each removal.
pub fn state(run_id: &str) -> RunState {
    state_of(&run_dir(run_id))
}

fn state_of(dir: &Path) -> RunState {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return RunState::Absent;
    };
    if !meta.is_dir() {
        // An older version's pid file, or something planted: not a live run.
        return RunState::Dead;
    }
    match host::existing_lock_file(&dir.join("lock")) {
        Some(lock) if !host::try_lock(&lock, true) => RunState::Live,
        _ => RunState::Dead,
    }
}

/// Whether nothing of run `run_id` may be touched now.
pub fn is_live(run_id: &str) -> bool {
    state(run_id) == RunState::Live
}

/// The runs live now (a listing: for a decision about one object, ask
/// [`state`] right before it).
pub fn live_runs() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(REGISTRY) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (valid_run_id(&name) && state_of(&e.path()) == RunState::Live).then_some(name)
        })
        .collect()
}

/// Whether no run at all is live (call it under the host lock, so that
/// none registers before the caller is done).
pub fn no_run_is_live() -> bool {
    live_runs().is_empty()
}

/// A dead run this process claimed for sweeping: while it is held, the run
/// looks live to every other process.
pub struct Claim {
    pub run_id: String,
    pub dir: PathBuf,
    _lock: Option<File>,
}

/// Claims every dead run of the registry (under the host lock), and
/// removes the remains of registrations killed half-way.
pub fn claim_dead() -> Vec<Claim> {
    let Ok(registry) = host::base_dir(&["runs"]) else {
        return Vec::new();
    };
    claim_dead_in(&registry)
}

fn claim_dead_in(registry: &Path) -> Vec<Claim> {
    let Ok(_host) = HostLock::take_in(registry.parent().unwrap_or(registry)) else {
        return Vec::new();
    };
    let mut claims = Vec::new();
    let Ok(entries) = std::fs::read_dir(registry) else {
        return claims;
    };
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != me || meta.file_type().is_symlink() {
            continue; // not ours: never touched
        }
        if let Some(run) = name.strip_prefix(PARTIAL_PREFIX) {
            // Its maker held the host lock until the rename; we hold it now,
            // so the maker died half-way, before making anything.
            if meta.is_dir() && valid_run_id(run) {
                let _ = std::fs::remove_dir_all(&path);
            }
            continue;
        }
        if !valid_run_id(&name) {
            continue;
        }
        if !meta.is_dir() {
            claims.push(Claim {
                run_id: name,
                dir: path,
                _lock: None,
            });
            continue;
        }
        let Ok(lock) = host::lock_file(&path.join("lock")) else {
            continue;
        };
        if host::try_lock(&lock, true) {
            claims.push(Claim {
                run_id: name,
                dir: path,
                _lock: Some(lock),
            });
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, PathBuf) {
        let base = tempfile::tempdir().unwrap();
        let registry = base.path().join("runs");
        std::fs::create_dir(&registry).unwrap();
        (base, registry)
    }

    #[test]
    fn a_run_is_live_while_its_lock_is_held_and_its_id_is_its_own() {
        let (_base, registry) = registry();
        let run = LiveRun::register_in(&registry, "r1a").unwrap();
        assert_eq!(state_of(&registry.join("r1a")), RunState::Live);
        // A second run with the same id is refused, and the first stays.
        assert!(LiveRun::register_in(&registry, "r1a").is_err());
        assert_eq!(state_of(&registry.join("r1a")), RunState::Live);
        assert!(!registry.join(".new-r1a").exists());
        // A live run is not claimed.
        assert!(claim_dead_in(&registry).is_empty());
        run.ledger()
            .record(super::super::Object::Netns {
                name: "iscsi-chaos-r1a-0".into(),
            })
            .unwrap();
        // Dropped with something pending: the folder stays, and the run is dead.
        drop(run);
        assert_eq!(state_of(&registry.join("r1a")), RunState::Dead);
        let claims = claim_dead_in(&registry);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].run_id, "r1a");
        // Claimed: live to everyone else until the claim ends.
        assert_eq!(state_of(&registry.join("r1a")), RunState::Live);
        assert!(claim_dead_in(&registry).is_empty());
        drop(claims);
        assert_eq!(state_of(&registry.join("r1a")), RunState::Dead);
        assert_eq!(state_of(&registry.join("nope")), RunState::Absent);
    }

    #[test]
    fn a_finished_run_leaves_no_folder_and_bad_ids_are_refused() {
        let (_base, registry) = registry();
        drop(LiveRun::register_in(&registry, "r2").unwrap());
        assert_eq!(state_of(&registry.join("r2")), RunState::Absent);
        for bad in ["", "../x", "a/b", ".new-x", "r x", "R1"] {
            assert!(LiveRun::register_in(&registry, bad).is_err(), "{bad:?}");
        }
        // An empty folder planted under the id is not taken over.
        std::fs::create_dir(registry.join("r3")).unwrap();
        assert!(LiveRun::register_in(&registry, "r3").is_err());
    }

    #[test]
    fn half_made_registrations_are_removed_and_foreign_entries_left_alone() {
        let (base, registry) = registry();
        std::fs::create_dir(registry.join(".new-r4")).unwrap();
        std::fs::write(registry.join(".new-r4/pid"), "1 1").unwrap();
        let elsewhere = base.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, registry.join("r5")).unwrap();
        let claims = claim_dead_in(&registry);
        assert!(claims.is_empty());
        assert!(!registry.join(".new-r4").exists());
        assert!(registry.join("r5").symlink_metadata().is_ok());
        assert!(!elsewhere.join("lock").exists());
    }
}
