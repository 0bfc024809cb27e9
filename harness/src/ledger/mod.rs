//! The ledger: every object a run makes is written down, with the run id and
//! lane, before it is made; teardown and `cleanup` walk it newest first and
//! remove what still exists.
//!
//! One append-only JSON-lines file per run, `/run/iscsi-chaos/runs/<run>/
//! ledger.jsonl`, next to the run's `pid` (see [`registry`]):
//!
//! ```text
//! {"lane":0,"made":{"kind":"netns","name":"iscsi-chaos-r1-0"}}
//! {"lane":0,"swept":true}      every entry of lane 0 above is gone
//! ```
//!
//! Invariants:
//! - A line is appended (one `write(2)` on an `O_APPEND` file) before the
//!   object exists. The exceptions are the ones whose name the kernel picks
//!   (a process's pid): those are written right after, and a process of ours
//!   dies with the harness anyway (`PR_SET_PDEATHSIG`).
//! - Walking is idempotent: an entry whose object is gone counts as done, and
//!   an entry that does not carry our marker ([`Object::is_ours`]) is refused,
//!   so a damaged or edited ledger can never make us touch a foreign object.
//! - A torn last line (killed mid-write) is ignored: its object was never made.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

pub mod host;
pub mod registry;

use crate::model::names::{IQN_PREFIX, NETNS_PREFIX};
use crate::sys::netns::NetNs;

/// Programs the harness starts; a recorded process is killed only if it is
/// still the same process (pid and start time) and runs one of these.
const OUR_PROGRAMS: [&str; 4] = ["tgtd", "blkprobe", "iscsid", "multipathd"];
/// Folders where tgtd leaves its control socket and lock.
const TGTD_RUN_DIRS: [&str; 2] = ["/var/run/tgtd", "/run/tgtd"];

/// A process, told apart from a later one that reuses its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    /// Clock ticks after boot (field 22 of /proc/<pid>/stat).
    pub start_time: u64,
}

impl ProcessId {
    /// The process `pid` as it is now (None if there is none).
    pub fn of(pid: i32) -> Option<ProcessId> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(ProcessId {
            pid,
            start_time: start_time_of_stat(&stat)?,
        })
    }

    /// Whether this very process still exists (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        start_time_of_stat(&stat) == Some(self.start_time) && state != Some('Z')
    }

    pub(crate) fn program(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/comm", self.pid))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

/// Field 22 of a `/proc/<pid>/stat` line. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
pub fn start_time_of_stat(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// One object a run makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Object {
    /// A lane's network namespace (processes still in it are killed first).
    Netns {
        name: String,
    },
    /// A veth in the root namespace (deleting it takes its peer).
    Veth {
        name: String,
    },
    /// The root qdisc (netem or tbf) we put on link `link`, in `netns` or in
    /// the root namespace.
    Qdisc {
        netns: Option<String>,
        link: String,
    },
    /// Our nftables table in a lane's namespace.
    FirewallTable {
        netns: String,
    },
    NodeRecord {
        iqn: String,
        portal: String,
    },
    /// An open-iscsi iface record of ours (a further host's initiator name).
    Iface {
        name: String,
    },
    Session {
        iqn: String,
    },
    /// A LIO configfs directory or symlink.
    Configfs {
        path: PathBuf,
    },
    /// A process we started, with the files it leaves behind when killed.
    Process {
        program: String,
        id: ProcessId,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        leaves: Vec<PathBuf>,
    },
    /// A folder in the temporary directory (backing files, logs).
    Folder {
        path: PathBuf,
    },
    DmDevice {
        name: String,
    },
    /// The loop device(s) over this backing file.
    LoopDevice {
        backing_file: PathBuf,
    },
    /// A filesystem a probe mounts on this work folder of ours.
    Mount {
        path: PathBuf,
    },
    /// The persistent-reservation state file LIO writes for our LUN.
    PrStateFile {
        path: PathBuf,
    },
}

impl Object {
    /// "namespace iscsi-chaos-r1-0", for reports.
    pub fn describe(&self) -> String {
        match self {
            Object::Netns { name } => format!("namespace {name}"),
            Object::Veth { name } => format!("veth {name}"),
            Object::Qdisc { netns, link } => match netns {
                Some(ns) => format!("qdisc on {link} in {ns}"),
                None => format!("qdisc on {link}"),
            },
            Object::FirewallTable { netns } => format!("nft table in {netns}"),
            Object::NodeRecord { iqn, portal } => format!("node record {iqn} {portal}"),
            Object::Iface { name } => format!("iface record {name}"),
            Object::Session { iqn } => format!("session {iqn}"),
            Object::Configfs { path } => format!("LIO {}", path.display()),
            Object::Process { program, id, .. } => format!("process {program} ({})", id.pid),
            Object::Folder { path } => format!("folder {}", path.display()),
            Object::DmDevice { name } => format!("dm device {name}"),
            Object::LoopDevice { backing_file } => {
                format!("loop device over {}", backing_file.display())
            }
            Object::Mount { path } => format!("mount on {}", path.display()),
            Object::PrStateFile { path } => format!("LIO reservation state {}", path.display()),
        }
    }

    /// Whether the object carries our marker. Everything is checked again at
    /// removal time; this is the first gate.
    pub fn is_ours(&self) -> bool {
        let our_ns = |name: &str| name.starts_with(NETNS_PREFIX) && !name.contains('/');
        match self {
            Object::Netns { name } | Object::FirewallTable { netns: name } => our_ns(name),
            Object::Veth { name } => crate::model::names::is_our_veth_name(name),
            Object::Qdisc { netns, link } => {
                netns.as_deref().into_iter().all(our_ns)
                    && crate::model::names::is_our_veth_name(link)
            }
            Object::NodeRecord { iqn, .. } | Object::Session { iqn } => iqn.starts_with(IQN_PREFIX),
            Object::Iface { name } => crate::model::names::is_our_iface_name(name),
            Object::Configfs { path } => crate::sys::configfs::is_our_configfs_path(path),
            Object::Process {
                program, leaves, ..
            } => {
                OUR_PROGRAMS.contains(&program.as_str())
                    && leaves.iter().all(|p| {
                        is_absolute_without_dots(p)
                            && TGTD_RUN_DIRS
                                .iter()
                                .any(|d| p.parent() == Some(Path::new(d)))
                    })
            }
            Object::Folder { path } | Object::Mount { path } => is_our_folder(path),
            Object::PrStateFile { path } => crate::sys::configfs::is_our_pr_state_file(path),
            Object::DmDevice { name } => crate::model::names::run_of_dm(name).is_some(),
            Object::LoopDevice { backing_file } => backing_file.parent().is_some_and(|folder| {
                is_our_folder(folder) && is_absolute_without_dots(backing_file)
            }),
        }
    }

    /// Whether the object still exists. Cheap when its container is gone
    /// (anything in a deleted namespace).
    pub async fn exists(&self) -> bool {
        match self {
            Object::Netns { name } => crate::sys::netns::netns_path(name).exists(),
            Object::Veth { name } => Path::new("/sys/class/net").join(name).exists(),
            Object::Qdisc { netns, link } => {
                let link = link.clone();
                in_netns(netns.as_deref(), move || {
                    crate::sys::tc::our_root_qdisc(&link)
                })
                .is_ok_and(|found| matches!(found, Ok(Some(_))))
            }
            Object::FirewallTable { netns } => {
                NetNs::exists(netns) && crate::sys::nft::table_exists(netns)
            }
            Object::NodeRecord { iqn, portal } => {
                crate::sys::iscsi::node_record_exists(iqn, portal).await
            }
            Object::Iface { name } => crate::sys::iscsi::iface_exists(name),
            Object::Session { iqn } => crate::sys::iscsi::session_id(iqn).is_some(),
            Object::Configfs { path } => path.symlink_metadata().is_ok(),
            Object::Process { id, .. } => id.is_alive(),
            Object::Folder { path } => path.symlink_metadata().is_ok(),
            Object::DmDevice { name } => crate::sys::dm::dm_exists(name),
            Object::LoopDevice { backing_file } => {
                !crate::sys::dm::loops_over(backing_file).is_empty()
            }
            Object::Mount { path } => crate::sys::mount::is_mounted(path),
            Object::PrStateFile { path } => path.symlink_metadata().is_ok(),
        }
    }

    /// Removes the object (it exists and is ours).
    async fn remove(&self, iscsid: &mut Option<host::IscsidUse>) -> Result<()> {
        match self {
            Object::Netns { name } => {
                let name = name.clone();
                crate::sys::blocking::spawn(move || crate::sys::link::kill_and_delete_netns(&name))
                    .await?
            }
            Object::Veth { name } => crate::sys::link::delete_root_link(name).await,
            Object::Qdisc { netns, link } => {
                let link = link.clone();
                in_netns(netns.as_deref(), move || {
                    crate::sys::tc::remove_our_root_qdisc(&link)
                })?
                .map_err(Into::into)
            }
            Object::FirewallTable { netns } => crate::sys::nft::delete_table(netns),
            Object::NodeRecord { iqn, portal } => {
                crate::sys::iscsi::delete_node_record(iqn, portal).await
            }
            Object::Iface { name } => crate::sys::iscsi::delete_iface(name).await,
            Object::Session { iqn } => {
                // iscsiadm needs iscsid; a killed run's died with it.
                if iscsid.is_none() {
                    *iscsid = Some(host::IscsidUse::take().await?);
                }
                let sid = crate::sys::iscsi::session_id(iqn).context("session vanished")?;
                crate::sys::iscsi::logout_session(&sid)
                    .await
                    .map_err(|why| anyhow!("logging out session {sid}: {why}"))
            }
            Object::Configfs { path } => crate::sys::configfs::remove_configfs_object(path),
            Object::Process {
                program,
                id,
                leaves,
            } => {
                if id.program() != *program {
                    bail!("pid {} now runs {:?}, not {program}", id.pid, id.program());
                }
                if !crate::sys::cmd::carries_marker(id.pid) {
                    bail!(
                        "pid {} ({program}) does not carry our marker {}: not started by us",
                        id.pid,
                        crate::sys::cmd::MARKER_VAR
                    );
                }
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(id.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                // A process blocked in the kernel (a probe on a failed
                // session) ends only once its I/O fails: `unwind` waits for
                // it after the session is gone.
                wait_gone(id, Duration::from_secs(2)).await;
                // Not while a live process holds the lock beside a file:
                // another run's tgtd may have the port by now.
                let lock_of = |f: &PathBuf| {
                    let name = f.file_name().unwrap_or_default().to_string_lossy();
                    match name.strip_suffix(".lock") {
                        Some(_) => f.clone(),
                        None => f.with_file_name(format!("{name}.lock")),
                    }
                };
                for file in leaves {
                    if !host::lockf_held(&lock_of(file)) {
                        let _ = std::fs::remove_file(file);
                    }
                }
                Ok(())
            }
            Object::Folder { path } => std::fs::remove_dir_all(path)
                .with_context(|| format!("removing {}", path.display())),
            Object::DmDevice { name } => crate::sys::dm::remove_dm(name).await,
            Object::LoopDevice { backing_file } => {
                for dev in crate::sys::dm::loops_over(backing_file) {
                    crate::sys::dm::detach_loop(&dev).await?;
                }
                Ok(())
            }
            Object::Mount { path } => crate::sys::mount::detach(path),
            Object::PrStateFile { path } => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            },
        }
    }
}

/// An absolute path with no `..` or `.` parts (so a prefix check means
/// what it says).
fn is_absolute_without_dots(path: &Path) -> bool {
    path.is_absolute()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::RootDir
            )
        })
}

/// `<work base>/iscsi-chaos-<run>-<lane>-<purpose><random>`.
fn is_our_folder(path: &Path) -> bool {
    is_absolute_without_dots(path)
        && path.parent() == Some(Path::new(host::WORK))
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(run_of_work_folder)
            .is_some()
}

/// The run id in a work folder's name `iscsi-chaos-<run>-<lane>-<purpose>`.
pub fn run_of_work_folder(name: &str) -> Option<&str> {
    let (run_and_lane, _purpose) = name.strip_prefix("iscsi-chaos-")?.rsplit_once('-')?;
    crate::model::names::run_of(run_and_lane)
}

/// A folder of ours in the work base (backing files, logs): written in the
/// ledger before it is made, removed on drop.
#[derive(Debug)]
pub struct WorkFolder {
    path: PathBuf,
}

impl WorkFolder {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes it now, saying why not.
    pub fn close(mut self) -> std::io::Result<()> {
        let path = std::mem::take(&mut self.path);
        std::fs::remove_dir_all(path)
    }
}

impl Drop for WorkFolder {
    fn drop(&mut self) {
        // Never into a filesystem still mounted on it: the ledger's Mount
        // entry detaches it first.
        if !self.path.as_os_str().is_empty() && !crate::sys::mount::is_mounted(&self.path) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// 48 random bits, as hex (names nobody can guess ahead).
fn random_tag() -> String {
    let mut bytes = [0u8; 6];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if got.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `f` in namespace `netns` (on a fresh thread), or here.
fn in_netns<T: Send>(netns: Option<&str>, f: impl FnOnce() -> T + Send) -> Result<T> {
    match netns {
        None => Ok(f()),
        Some(name) => Ok(NetNs::open(name)?.run_in(f)?),
    }
}

async fn wait_gone(id: &ProcessId, bound: Duration) -> bool {
    let until = Instant::now() + bound;
    while id.is_alive() {
        if Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// One line of the ledger file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    lane: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    made: Option<Object>,
    /// Every entry of `lane` above this line is gone (all lanes if None).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    swept: bool,
    /// The latest entry of this object was not made by us after all (it
    /// existed already): it is never removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_made: Option<Object>,
}

/// What a walk of the ledger did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Objects that still existed and were removed.
    pub removed: Vec<String>,
    /// Objects that could not be removed (or were refused), with why.
    pub failed: Vec<String>,
}

impl Removal {
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty()
    }
}

/// A run's ledger, as seen from one lane (or from the whole run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    path: PathBuf,
    lane: Option<u8>,
}

impl Ledger {
    /// The ledger file at `path` (created on the first record), for the
    /// whole run.
    pub fn at(path: impl Into<PathBuf>) -> Ledger {
        Ledger {
            path: path.into(),
            lane: None,
        }
    }

    /// The ledger of run `run_id`, in the run registry.
    pub fn of_run(run_id: &str) -> Ledger {
        Ledger::at(registry::run_dir(run_id).join("ledger.jsonl"))
    }

    /// The same ledger, its records and walks limited to lane `index`.
    pub fn lane(&self, index: u8) -> Ledger {
        Ledger {
            path: self.path.clone(),
            lane: Some(index),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, line: &Line) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("writing the ledger {}", self.path.display()))
    }

    /// Writes `object` down; call it before making the object. Refuses an
    /// object without our marker (a bug: we would never remove it).
    pub fn record(&self, object: Object) -> Result<()> {
        if !object.is_ours() {
            bail!(
                "refusing to record {}: it lacks our marker",
                object.describe()
            );
        }
        self.append(&Line {
            lane: self.lane,
            made: Some(object),
            swept: false,
            not_made: None,
        })
    }

    /// Writes down that `object`, recorded just before, was not made by us
    /// (it existed already): no walk will ever remove it.
    pub fn not_made(&self, object: Object) -> Result<()> {
        self.append(&Line {
            lane: self.lane,
            made: None,
            swept: false,
            not_made: Some(object),
        })
    }

    /// Makes a work folder `iscsi-chaos-<run>-<lane>-<purpose><random>` in
    /// the root-only work base, written down first. A name that exists
    /// already (planted) is written down as not made, left alone, and
    /// another name is tried.
    pub fn work_folder(&self, run_id: &str, lane: u8, purpose: &str) -> Result<WorkFolder> {
        use std::os::unix::fs::DirBuilderExt;
        let base = host::base_dir(&["work"]).context("the work base")?;
        for _ in 0..8 {
            let path = base.join(format!(
                "iscsi-chaos-{run_id}-{lane}-{purpose}{}",
                random_tag()
            ));
            let object = Object::Folder { path: path.clone() };
            self.record(object.clone())?;
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(WorkFolder { path }),
                Err(e) => {
                    self.not_made(object)?;
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(e).with_context(|| format!("making {}", path.display()));
                    }
                }
            }
        }
        bail!("no free work folder name in {}", base.display())
    }

    /// Records a process just started (see the module's invariants).
    pub fn record_process(
        &self,
        program: &str,
        pid: Option<u32>,
        leaves: Vec<PathBuf>,
    ) -> Result<()> {
        let pid = pid.context("the process has no pid")? as i32;
        let id = ProcessId::of(pid).with_context(|| format!("{program} ({pid}) is gone"))?;
        self.record(Object::Process {
            program: program.to_string(),
            id,
            leaves,
        })
    }

    /// The entries not yet swept, oldest first, of this lane (every lane if
    /// this is the whole run's view).
    pub fn pending(&self) -> Vec<Object> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let mut text = String::new();
        // Never through a symlink: a ledger is a plain file of ours.
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
        {
            let _ = file.read_to_string(&mut text);
        }
        pending_in(&text, self.lane)
    }

    /// Walks the pending entries newest first and removes what still exists,
    /// then waits (bounded) for processes that only end once their session is
    /// gone. If everything is gone, the entries are marked swept.
    pub async fn unwind(&self) -> Removal {
        let pending = self.pending();
        let mut removal = Removal::default();
        let mut iscsid = None;
        let mut busy = Vec::new();
        for object in pending.iter().rev() {
            if !object.is_ours() {
                removal.failed.push(format!(
                    "refused {}: it lacks our marker",
                    object.describe()
                ));
                continue;
            }
            if !object.exists().await {
                continue;
            }
            match object.remove(&mut iscsid).await {
                Ok(()) => removal.removed.push(object.describe()),
                // A folder a dying process still holds (a daemon's mount
                // namespace over it) is tried again once processes ended.
                Err(e) if matches!(object, Object::Folder { .. }) => busy.push((object, e)),
                Err(e) => removal.failed.push(format!("{}: {e:#}", object.describe())),
            }
        }
        for object in &pending {
            if let Object::Process { id, program, .. } = object {
                let ours = crate::sys::cmd::carries_marker(id.pid);
                if id.is_alive() && ours && !wait_gone(id, Duration::from_secs(10)).await {
                    removal
                        .failed
                        .push(format!("process {program} ({}) did not end", id.pid));
                }
            }
        }
        for (object, first) in busy {
            match object.remove(&mut iscsid).await {
                Ok(()) => removal.removed.push(object.describe()),
                Err(e) => removal.failed.push(format!(
                    "{}: {e:#} (first try: {first:#})",
                    object.describe()
                )),
            }
        }
        if let Some(d) = iscsid {
            d.release().await;
        }
        if removal.is_clean() && !pending.is_empty() {
            if let Err(e) = self.append(&Line {
                lane: self.lane,
                made: None,
                swept: true,
                not_made: None,
            }) {
                removal.failed.push(format!("{e:#}"));
            }
        }
        removal
    }
}

/// The pending entries of `lane` (all if None) in ledger text `text`.
fn pending_in(text: &str, lane: Option<u8>) -> Vec<Object> {
    let mut pending: Vec<(Option<u8>, Object)> = Vec::new();
    for raw in text.lines() {
        // A torn line (killed mid-write) is skipped: its object was not made.
        let Ok(line) = serde_json::from_str::<Line>(raw) else {
            continue;
        };
        if line.swept {
            pending.retain(|(l, _)| line.lane.is_some() && *l != line.lane);
        } else if let Some(object) = line.not_made {
            if let Some(i) = pending
                .iter()
                .rposition(|(l, o)| *l == line.lane && *o == object)
            {
                pending.remove(i);
            }
        } else if let Some(object) = line.made {
            pending.push((line.lane, object));
        }
    }
    pending
        .into_iter()
        .filter(|(l, _)| lane.is_none() || *l == lane)
        .map(|(_, o)| o)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netns(name: &str) -> Object {
        Object::Netns { name: name.into() }
    }

    #[test]
    fn entries_round_trip_as_one_json_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path().join("l.jsonl")).lane(3);
        let objects = vec![
            netns("iscsi-chaos-r1-3"),
            Object::Qdisc {
                netns: Some("iscsi-chaos-r1-3".into()),
                link: "icXabcdeft3".into(),
            },
            Object::Process {
                program: "tgtd".into(),
                id: ProcessId {
                    pid: 42,
                    start_time: 7,
                },
                leaves: vec!["/var/run/tgtd/socket.13001".into()],
            },
        ];
        for o in &objects {
            ledger.record(o.clone()).unwrap();
        }
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with(r#"{"lane":3,"made":{"kind":"netns","name":"iscsi-chaos-r1-3"}}"#));
        assert_eq!(ledger.pending(), objects);
    }

    #[test]
    fn swept_lanes_and_torn_lines_are_not_pending() {
        let text = concat!(
            r#"{"lane":null,"made":{"kind":"session","iqn":"iqn.2026-11.io.iscsi-chaos:r-0"}}"#,
            "\n",
            r#"{"lane":0,"made":{"kind":"netns","name":"iscsi-chaos-r-0"}}"#,
            "\n",
            r#"{"lane":1,"made":{"kind":"netns","name":"iscsi-chaos-r-1"}}"#,
            "\n",
            r#"{"lane":0,"swept":true}"#,
            "\n",
            r#"{"lane":0,"made":{"kind":"netns","name":"iscsi-chaos-r-0b"}}"#,
            "\n",
            r#"{"lane":1,"made":{"kind":"netns","na"#,
        );
        assert_eq!(pending_in(text, Some(0)), vec![netns("iscsi-chaos-r-0b")]);
        assert_eq!(pending_in(text, Some(1)), vec![netns("iscsi-chaos-r-1")]);
        assert_eq!(pending_in(text, None).len(), 3);
        let all_swept = format!("{text}\n{}\n", r#"{"lane":null,"swept":true}"#);
        assert!(pending_in(&all_swept, None).is_empty());
    }

    #[test]
    fn objects_without_our_marker_are_refused() {
        let foreign = [
            netns("default"),
            netns("iscsi-chaos-x/../../etc"),
            Object::Veth {
                name: "eth0".into(),
            },
            Object::Qdisc {
                netns: None,
                link: "eth0".into(),
            },
            Object::NodeRecord {
                iqn: "iqn.2001-04.com.example:storage".into(),
                portal: "192.168.1.5:3260".into(),
            },
            Object::Configfs {
                path: "/sys/kernel/config/target/iscsi/iqn.2003-01.org.linux-iscsi.host:sn.1"
                    .into(),
            },
            Object::Configfs {
                path: "/sys/kernel/config/target/iscsi/iqn.2026-11.io.iscsi-chaos:r-0/../../core"
                    .into(),
            },
            Object::Process {
                program: "sshd".into(),
                id: ProcessId {
                    pid: 1,
                    start_time: 1,
                },
                leaves: vec![],
            },
            Object::Process {
                program: "tgtd".into(),
                id: ProcessId {
                    pid: 1,
                    start_time: 1,
                },
                leaves: vec!["/etc/passwd".into()],
            },
            Object::Folder {
                path: "/etc".into(),
            },
            Object::Folder {
                path: Path::new(host::WORK).join("iscsi-chaos-"),
            },
            Object::Folder {
                path: std::env::temp_dir().join("iscsi-chaos-r1-0-tgt"),
            },
            Object::Folder {
                path: Path::new(host::WORK).join("iscsi-chaos-r1-x-tgt/../../etc"),
            },
            Object::DmDevice {
                name: "root".into(),
            },
            Object::LoopDevice {
                backing_file: "/var/lib/images/disk.img".into(),
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path().join("l.jsonl"));
        for o in foreign {
            assert!(!o.is_ours(), "{o:?}");
            assert!(ledger.record(o).is_err());
        }
        assert!(ledger.pending().is_empty());
    }

    #[test]
    fn our_names_carry_the_marker() {
        let ours = [
            netns("iscsi-chaos-r1-0"),
            Object::Veth {
                name: "icXabc123i0".into(),
            },
            Object::Session {
                iqn: "iqn.2026-11.io.iscsi-chaos:r1-0".into(),
            },
            Object::Configfs {
                path: "/sys/kernel/config/target/iscsi/iqn.2026-11.io.iscsi-chaos:r1-0/tpgt_1"
                    .into(),
            },
            Object::Folder {
                path: Path::new(host::WORK).join("iscsi-chaos-r1-0-tgt5d2f0a"),
            },
            Object::DmDevice {
                name: "iscsi-chaos-r1-0-slow".into(),
            },
            Object::LoopDevice {
                backing_file: Path::new(host::WORK).join("iscsi-chaos-r1-0-slow01ab/lun1.img"),
            },
        ];
        for o in ours {
            assert!(o.is_ours(), "{o:?}");
        }
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let stat =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(start_time_of_stat(stat), Some(987654));
        let me = ProcessId::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let other = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive(), "a reused pid is another process");
    }

    #[tokio::test]
    async fn unwinding_removes_recorded_folders_newest_first_and_marks_them_swept() {
        let run = format!("ledgertest{}", std::process::id());
        let work = host::base_dir(&["work"]).unwrap();
        let folder = |i: u8| work.join(format!("iscsi-chaos-{run}-{i}-t"));
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path().join("l.jsonl"));
        for (lane, i) in [(0, 0), (0, 1), (1, 2)] {
            ledger
                .lane(lane)
                .record(Object::Folder { path: folder(i) })
                .unwrap();
            std::fs::create_dir(folder(i)).unwrap();
            std::fs::write(folder(i).join("lun1.img"), b"x").unwrap();
        }
        // Lane 1's folder is already gone: not an error, not "removed".
        std::fs::remove_dir_all(folder(2)).unwrap();
        // Lane 0's walk leaves lane 1's entries pending.
        let removal = ledger.lane(0).unwind().await;
        let removed: Vec<String> = [1, 0]
            .iter()
            .map(|i| format!("folder {}", folder(*i).display()))
            .collect();
        assert_eq!(
            removal,
            Removal {
                removed,
                failed: vec![],
            }
        );
        assert!(!folder(0).exists() && !folder(1).exists());
        assert!(ledger.lane(0).pending().is_empty());
        assert_eq!(ledger.pending(), vec![Object::Folder { path: folder(2) }]);
        assert_eq!(ledger.unwind().await, Removal::default());
        assert!(ledger.pending().is_empty());
    }

    #[tokio::test]
    async fn a_process_without_our_marker_is_never_killed() {
        // A hostile entry: a process named like ours, not started by us.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("tgtd");
        std::fs::copy("/bin/sleep", &fake).unwrap();
        let mut child = std::process::Command::new(&fake)
            .arg("30")
            .env_remove(crate::sys::cmd::MARKER_VAR)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let until = Instant::now() + Duration::from_secs(10);
        while ProcessId::of(pid).map(|p| p.program()).as_deref() != Some("tgtd")
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let ledger = Ledger::at(dir.path().join("l.jsonl"));
        ledger
            .record_process("tgtd", Some(pid as u32), vec![])
            .unwrap();
        let removal = ledger.unwind().await;
        assert!(
            removal
                .failed
                .iter()
                .any(|f| f.contains("does not carry our marker")),
            "{removal:?}"
        );
        assert!(ProcessId::of(pid).is_some_and(|p| p.is_alive()));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn an_object_not_made_by_us_is_never_pending() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path().join("l.jsonl")).lane(2);
        let planted = Object::Folder {
            path: Path::new(host::WORK).join("iscsi-chaos-r9-2-tgt00"),
        };
        let made = Object::Folder {
            path: Path::new(host::WORK).join("iscsi-chaos-r9-2-tgt01"),
        };
        ledger.record(planted.clone()).unwrap();
        ledger.not_made(planted.clone()).unwrap();
        ledger.record(made.clone()).unwrap();
        assert_eq!(ledger.pending(), vec![made]);
        // Only the latest entry of that object in that lane is taken back.
        ledger.record(planted.clone()).unwrap();
        ledger.lane(3).not_made(planted.clone()).unwrap();
        assert_eq!(ledger.pending().len(), 2);
    }

    #[test]
    fn work_folders_are_private_written_down_and_named_for_their_run() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path().join("l.jsonl")).lane(4);
        let run = format!("wftest{}", std::process::id());
        let folder = ledger.work_folder(&run, 4, "tgt").unwrap();
        let path = folder.path().to_path_buf();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o700);
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(run_of_work_folder(&name), Some(run.as_str()));
        assert_eq!(
            ledger.pending(),
            vec![Object::Folder { path: path.clone() }]
        );
        // A second one never reuses the name.
        let other = ledger.work_folder(&run, 4, "tgt").unwrap();
        assert_ne!(other.path(), path);
        drop(folder);
        other.close().unwrap();
        assert!(!path.exists());
    }
}
