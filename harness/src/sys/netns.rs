//! Named network namespaces, created the way iproute2's `ip netns add` does,
//! so `ip netns exec NAME ...` and `ip -n NAME ...` work on them for debugging.
//!
//! `setns` changes only the calling thread, so nothing here ever switches a
//! tokio worker: [`NetNs::run_in`] uses a fresh std thread, and
//! [`NetNs::enter_on_exec`] switches a forked child before it execs.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where iproute2 keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Every namespace this harness creates starts with this.
pub const NETNS_PREFIX: &str = "iscsi-chaos-";

#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    #[error("invalid network namespace name {0:?}")]
    InvalidName(String),
    #[error("network namespace {0:?} already exists")]
    AlreadyExists(String),
    #[error("network namespace {name:?}: {op}: {source}")]
    Sys {
        name: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("thread switched into a network namespace panicked")]
    ThreadPanicked,
}

fn sys(name: &str, op: &'static str, source: impl Into<io::Error>) -> NetNsError {
    NetNsError::Sys {
        name: name.to_string(),
        op,
        source: source.into(),
    }
}

/// An open handle on a named network namespace. Cloning shares the fd.
/// Holding it keeps the namespace alive even after [`NetNs::delete`]
/// removed its name, so drop handles before expecting the kernel to free it.
#[derive(Debug, Clone)]
pub struct NetNs {
    name: String,
    fd: Arc<OwnedFd>,
}

fn check_name(name: &str) -> Result<(), NetNsError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(NetNsError::InvalidName(name.to_string()))
    }
}

/// Path of the bind mount that names namespace `name`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Make /run/netns exist and be a shared mount, like iproute2: a shared
/// mount point propagates our bind mounts into mount namespaces created
/// later (e.g. by `ip netns exec`), and unmounts propagate too.
fn prepare_netns_dir() -> Result<(), NetNsError> {
    let dir = Path::new(NETNS_DIR);
    fs::create_dir_all(dir).map_err(|e| sys(NETNS_DIR, "mkdir", e))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, dir, None::<&str>, shared, None::<&str>) {
        Ok(()) => Ok(()),
        // EINVAL: not a mount point yet; bind it onto itself first.
        Err(Errno::EINVAL) => {
            mount(
                Some(dir),
                dir,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| sys(NETNS_DIR, "bind /run/netns", e))?;
            mount(None::<&str>, dir, None::<&str>, shared, None::<&str>)
                .map_err(|e| sys(NETNS_DIR, "make /run/netns shared", e))
        }
        Err(e) => Err(sys(NETNS_DIR, "make /run/netns shared", e)),
    }
}

impl NetNs {
    /// Create a new named namespace (fails if the name is taken).
    pub fn create(name: &str) -> Result<NetNs, NetNsError> {
        check_name(name)?;
        prepare_netns_dir()?;
        let path = netns_path(name);
        // The mount point: an empty file, created exclusively so two callers
        // never share one name.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&path)
        {
            Ok(f) => drop(f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(NetNsError::AlreadyExists(name.to_string()))
            }
            Err(e) => return Err(sys(name, "create mount point", e)),
        }
        let bind_path = path.clone();
        let owned_name = name.to_string();
        // A throwaway thread unshares so no other thread (least of all a tokio
        // worker) ever changes namespace; the bind mount keeps the namespace
        // alive after the thread is gone.
        let made = std::thread::spawn(move || -> Result<(), NetNsError> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| sys(&owned_name, "unshare", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &bind_path,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| sys(&owned_name, "bind mount", e))
        })
        .join()
        .map_err(|_| NetNsError::ThreadPanicked)
        .and_then(|r| r);
        if let Err(e) = made {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        match Self::open(name) {
            Ok(ns) => Ok(ns),
            Err(e) => {
                let _ = Self::delete_by_name(name);
                Err(e)
            }
        }
    }

    /// Open an existing named namespace.
    pub fn open(name: &str) -> Result<NetNs, NetNsError> {
        check_name(name)?;
        let file = File::open(netns_path(name)).map_err(|e| sys(name, "open", e))?;
        let ns = NetNs {
            name: name.to_string(),
            fd: Arc::new(OwnedFd::from(file)),
        };
        // An unmounted leftover is a plain empty file; setns would reject it.
        if !ns.is_namespace() {
            return Err(sys(
                name,
                "open",
                io::Error::new(io::ErrorKind::InvalidData, "not a mounted netns"),
            ));
        }
        Ok(ns)
    }

    fn is_namespace(&self) -> bool {
        // NS_GET_NSTYPE (_IO(0xb7, 0x3)) answers CLONE_NEWNET for a netns fd.
        const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), NS_GET_NSTYPE as _) };
        r == libc::CLONE_NEWNET
    }

    /// Whether a namespace with this name is mounted under /run/netns.
    pub fn exists(name: &str) -> bool {
        Self::open(name).is_ok()
    }

    /// Remove the name (unmount + unlink). Idempotent: a missing name is Ok.
    /// The kernel frees the namespace, and the devices in it, once no process
    /// and no open handle refers to it any more.
    pub fn delete_by_name(name: &str) -> Result<(), NetNsError> {
        check_name(name)?;
        let path = netns_path(name);
        match umount2(&path, MntFlags::MNT_DETACH) {
            // EINVAL: not mounted (half-created); ENOENT: already gone.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(sys(name, "umount", e)),
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(sys(name, "unlink", e)),
        }
    }

    /// Remove this namespace's name. See [`NetNs::delete_by_name`].
    pub fn delete(&self) -> Result<(), NetNsError> {
        Self::delete_by_name(&self.name)
    }

    /// Names under /run/netns that start with `prefix` (never anything else).
    pub fn list_with_prefix(prefix: &str) -> Vec<String> {
        let Ok(dir) = fs::read_dir(NETNS_DIR) else {
            return Vec::new();
        };
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names
    }

    /// Our namespaces: every name starting with [`NETNS_PREFIX`].
    pub fn list_ours() -> Vec<String> {
        Self::list_with_prefix(NETNS_PREFIX)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        netns_path(&self.name)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Inode of the namespace, to match against `/proc/PID/ns/net`.
    pub fn inode(&self) -> io::Result<u64> {
        let st = nix::sys::stat::fstat(self.fd.as_fd())?;
        Ok(st.st_ino)
    }

    /// Run `f` on a fresh std thread switched into this namespace, and wait
    /// for it. Sockets opened there stay bound to this namespace. To open a
    /// tokio-registered socket, enter a runtime handle inside `f`.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetNsError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| sys(&self.name, "setns", e))?;
                Ok(f())
            })
            .join()
            .map_err(|_| NetNsError::ThreadPanicked)?
        })
    }

    /// A closure for `Command::pre_exec` that moves the forked child into
    /// this namespace (only the network namespace: unlike `ip netns exec`, it
    /// does not remount /sys, so configfs stays visible).
    pub fn pre_exec_hook(&self) -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
        let fd = Arc::clone(&self.fd);
        move || {
            // setns(2) is async-signal-safe: fine between fork and exec.
            if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
    }

    /// Make `cmd` run inside this namespace.
    pub fn enter_on_exec(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: the hook calls only setns(2), which is async-signal-safe
        // and allocates nothing.
        unsafe {
            cmd.pre_exec(self.pre_exec_hook());
        }
    }

    /// Make a tokio `cmd` run inside this namespace.
    pub fn enter_on_exec_tokio(&self, cmd: &mut tokio::process::Command) {
        // SAFETY: as for `enter_on_exec`.
        unsafe {
            cmd.pre_exec(self.pre_exec_hook());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("iscsi-chaos-abc-0").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
    }

    #[test]
    fn path_is_under_run_netns() {
        assert_eq!(
            netns_path("iscsi-chaos-x-1"),
            PathBuf::from("/run/netns/iscsi-chaos-x-1")
        );
    }
}
