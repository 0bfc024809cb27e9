//! What harness processes on one host share, and how they keep out of each
//! other's way: the base folder `/run/iscsi-chaos` (root's alone), one host
//! lock around registering a run and deciding that a run is dead, lane slots
//! (a lane's subnet is the host's, not the process's), and the iscsid that
//! runs use together.
//!
//! Every claim is an `flock` on a file under the base: the kernel drops it
//! when its holder dies, however it dies, so no claim outlives its process.
//!
//! Invariants:
//! - Folders under the base are made 0700 and checked with `lstat`: a
//!   symlink, or a folder another user owns or can write, is refused.
//! - Lock files are opened with `O_NOFOLLOW` and `O_CLOEXEC` (a process we
//!   start never inherits a claim).
//! - An iscsid we start is stopped only by the last run that uses it, and
//!   only if it is still the very process we started and carries our marker.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::ProcessId;
use crate::sys::iscsi;

/// The base folder of everything the harness keeps on the host.
pub const BASE: &str = "/run/iscsi-chaos";

/// Where work folders go (backing files, logs): root's alone.
pub const WORK: &str = "/run/iscsi-chaos/work";

/// Lane slots: slot `n` is the subnet 10.213.n.0/24.
pub const LANE_SLOTS: u16 = 255;

/// The effective user id (the owner of /proc/self).
fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

/// Makes `path` a folder only we can use (0700), or checks that it is one:
/// a symlink, a non-folder, a folder someone else owns are refused; one of
/// ours with a looser mode (an older version's) is tightened.
pub fn private_dir(path: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(path)?;
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing {}: {why}", path.display()),
        ))
    };
    if meta.file_type().is_symlink() {
        return refuse("it is a symlink");
    }
    if !meta.is_dir() {
        return refuse("it is not a folder");
    }
    if meta.uid() != euid() {
        return refuse(&format!("it belongs to uid {}, not to us", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// `BASE/<parts>`, each folder on the way private.
pub fn base_dir(parts: &[&str]) -> io::Result<PathBuf> {
    base_dir_under(Path::new(BASE), parts)
}

fn base_dir_under(base: &Path, parts: &[&str]) -> io::Result<PathBuf> {
    if let Some(parent) = base.parent() {
        std::fs::create_dir_all(parent)?;
    }
    private_dir(base)?;
    let mut dir = base.to_path_buf();
    for part in parts {
        dir.push(part);
        private_dir(&dir)?;
    }
    Ok(dir)
}

/// Opens (creating) the lock file `path`, never through a symlink.
pub fn lock_file(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens an existing lock file (None if there is none).
pub fn existing_lock_file(path: &Path) -> Option<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()
}

/// flock(2) on `file` with `op`.
fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on a file descriptor we own, open for the whole call.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Tries to take `file`'s lock without waiting; whether we got it.
pub fn try_lock(file: &File, exclusive: bool) -> bool {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    flock(file, op | libc::LOCK_NB).is_ok()
}

/// Waits for `file`'s lock (through the policy for blocking work: the
/// holder may be starting iscsid).
fn lock(file: &File, exclusive: bool) -> io::Result<()> {
    crate::sys::blocking::blocking(|| lock_now(file, exclusive))
}

fn lock_now(file: &File, exclusive: bool) -> io::Result<()> {
    flock(
        file,
        if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        },
    )
}

/// Whether another process holds a `lockf` lock on the file at `path`
/// (how tgtd guards its control socket); false when there is no file.
pub fn lockf_held(path: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    else {
        return false;
    };
    // SAFETY: lockf F_TEST on a descriptor we own, open for the call:
    // 0 if unlocked (or locked by us), -1 if another process holds it.
    unsafe { libc::lockf(f.as_raw_fd(), libc::F_TEST, 0) != 0 }
}

/// Drops a lock we hold (the file stays open).
fn unlock(file: &File) {
    let _ = flock(file, libc::LOCK_UN);
}

/// The host lock: held while a run registers, while a dead run is claimed
/// for sweeping, and while the shared iscsid is started or stopped. Held
/// briefly; never across a sweep.
pub struct HostLock(#[allow(dead_code)] File);

impl HostLock {
    pub fn take() -> io::Result<HostLock> {
        Self::take_in(&base_dir(&[])?)
    }

    /// The host lock of the base folder `base` (tests use their own).
    pub fn take_in(base: &Path) -> io::Result<HostLock> {
        let file = lock_file(&base.join("lock"))?;
        lock(&file, true)?;
        Ok(HostLock(file))
    }
}

/// A numbered thing of the host that one process at a time may hold (a
/// lane's subnet slot, a tgtd control port): an flock on
/// `BASE/<kind>/<n>`, which the kernel drops when its holder dies. Taking
/// it is the check and the use in one step.
#[derive(Debug)]
pub struct Claim {
    pub n: u32,
    _lock: File,
}

impl Claim {
    /// Thing `n` of `kind`, if no live process holds it.
    pub fn try_take(kind: &str, n: u32) -> io::Result<Option<Claim>> {
        let file = lock_file(&base_dir(&[kind])?.join(n.to_string()))?;
        Ok(try_lock(&file, true).then_some(Claim { n, _lock: file }))
    }
}

/// A lane slot this process holds: slot `n` is the subnet 10.213.n.0/24,
/// the host's to give out, one process at a time.
#[derive(Debug)]
pub struct LaneSlot {
    pub index: u8,
    _claim: Claim,
}

impl LaneSlot {
    /// Slot `index`, if no live process holds it.
    pub fn try_claim(index: u8) -> io::Result<Option<LaneSlot>> {
        Ok(Claim::try_take("lanes", u32::from(index))?.map(|c| LaneSlot { index, _claim: c }))
    }
}

/// The slots to try for a lane that prefers `preferred`, in order.
pub fn slots_from(preferred: u8) -> impl Iterator<Item = u8> {
    (0..LANE_SLOTS).map(move |i| ((preferred as u16 + i) % LANE_SLOTS) as u8)
}

/// This process's use of iscsid, shared with every other run on the host.
/// If none ran, one is started (in its own process group, not tied to us:
/// other runs may come to use it) and written down in `BASE/iscsid`; the
/// last user stops it.
pub struct IscsidUse {
    lock: Option<File>,
}

/// Where the iscsid we started is written down ("<pid> <start time>").
fn iscsid_record() -> io::Result<PathBuf> {
    Ok(base_dir(&[])?.join("iscsid"))
}

impl IscsidUse {
    pub async fn take() -> Result<IscsidUse> {
        let host = HostLock::take().context("taking the host lock")?;
        let users = lock_file(&base_dir(&[])?.join("iscsid.lock"))?;
        // No one holds it exclusively: that happens only under the host lock.
        lock(&users, false)?;
        let me = IscsidUse { lock: Some(users) };
        if !iscsi::iscsid_running() {
            let pid = iscsi::start_iscsid().await?;
            let id = ProcessId::of(pid as i32).context("iscsid died at once")?;
            let record = iscsid_record()?;
            let partial = record.with_extension("partial");
            std::fs::write(&partial, format!("{} {}", id.pid, id.start_time))?;
            std::fs::rename(&partial, &record)?;
        }
        drop(host);
        Ok(me)
    }

    /// Ends this use; the last user stops an iscsid we started.
    pub async fn release(mut self) {
        if let Some(lock) = self.lock.take() {
            unlock(&lock);
        }
        stop_unused_iscsid().await;
    }
}

impl Drop for IscsidUse {
    fn drop(&mut self) {
        // A use dropped without `release` (a panic) lets go of its claim;
        // the next run or `cleanup` stops an iscsid left without users.
        if let Some(lock) = self.lock.take() {
            unlock(&lock);
        }
    }
}

/// Stops the iscsid a harness started if no run uses it any more (also
/// after a SIGKILLed run). Leaves any other iscsid alone.
pub async fn stop_unused_iscsid() {
    let Ok(host) = HostLock::take() else {
        return;
    };
    let Ok(record) = iscsid_record() else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(&record) else {
        return;
    };
    let Ok(users) = lock_file(&record.with_extension("lock")) else {
        return;
    };
    if !try_lock(&users, true) {
        return; // someone uses it
    }
    let mut words = text.split_whitespace().map(str::parse::<u64>);
    if let (Some(Ok(pid)), Some(Ok(start_time))) = (words.next(), words.next()) {
        let id = ProcessId {
            pid: pid as i32,
            start_time,
        };
        if id.is_alive() && id.program() == "iscsid" && crate::sys::cmd::carries_marker(id.pid) {
            iscsi::stop_iscsid(id.pid, ISCSID_STOP_GRACE, || id.is_alive()).await;
        }
    }
    let _ = std::fs::remove_file(&record);
    unlock(&users);
    drop(host);
}

/// How long a stopped iscsid gets before SIGKILL.
pub const ISCSID_STOP_GRACE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_folders_refuse_symlinks_and_tighten_loose_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        let runs = base_dir_under(&base, &["runs"]).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&base), 0o700);
        assert_eq!(mode(&runs), 0o700);
        std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&runs).unwrap();
        assert_eq!(mode(&runs), 0o700);

        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, base.join("lanes")).unwrap();
        let err = base_dir_under(&base, &["lanes"]).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        std::fs::write(base.join("work"), b"").unwrap();
        let err = base_dir_under(&base, &["work"]).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
    }

    #[test]
    fn a_lock_is_held_until_its_file_is_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("slot");
        let first = lock_file(&path).unwrap();
        assert!(try_lock(&first, true));
        let second = lock_file(&path).unwrap();
        assert!(!try_lock(&second, true));
        assert!(!try_lock(&second, false));
        drop(first);
        assert!(try_lock(&second, true));
        // Shared holders exclude an exclusive one, not each other.
        let path = tmp.path().join("shared");
        let (a, b, c) = (
            lock_file(&path).unwrap(),
            lock_file(&path).unwrap(),
            lock_file(&path).unwrap(),
        );
        assert!(try_lock(&a, false) && try_lock(&b, false));
        assert!(!try_lock(&c, true));
        unlock(&a);
        unlock(&b);
        assert!(try_lock(&c, true));
    }

    #[test]
    fn lock_files_are_never_opened_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = tmp.path().join("lock");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(lock_file(&link).is_err());
        assert!(existing_lock_file(&link).is_none());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn slots_wrap_around_from_the_preferred_one() {
        let slots: Vec<u8> = slots_from(253).take(4).collect();
        assert_eq!(slots, [253, 254, 0, 1]);
        assert_eq!(slots_from(0).count(), LANE_SLOTS as usize);
    }
}
