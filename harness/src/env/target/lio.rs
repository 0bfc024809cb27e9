//! The LIO (kernel target) backend, driven through configfs directly: no
//! targetcli, no Python.
//!
//! Per lane: a fileio HBA `core/fileio_<N>` (N in our own range, see
//! [`hba_index`]) holding device `iscsi-chaos-<run>-<lane>` on a sparse file;
//! target `iqn_for(run, lane)` with `tpgt_1`, LUN 1 linked to the device, an
//! ACL for the initiator's IQN (or demo mode for [`InitiatorAllow::All`]),
//! and the portal `np/<ip>:3260`.
//!
//! Facts this relies on (kernel 6.1, checked in the lab):
//! - The portal listens in the network namespace of the thread that makes
//!   the `np/IP:PORT` directory, so only that mkdir runs in the lane's
//!   namespace (`NetNs::run_in`; `ip netns exec` would hide configfs).
//! - LIO has no per-address access control: `InitiatorAllow::Address` becomes
//!   an ACL for the IQN in `/etc/iscsi/initiatorname.iscsi`, the name the
//!   kernel initiator (iscsid) logs in with.
//! - A device cannot be disabled by writing `enable`; it goes with its rmdir,
//!   which fails while a LUN links to it: the fabric side goes first.
//! - "Stopping" LIO means disabling the TPG: sessions are closed, and the
//!   portal still accepts TCP connections but refuses logins (tgt killed
//!   refuses the connection instead).

use std::io::{self, ErrorKind};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::{iqn_for, InitiatorAllow, LunSpec, Portal, StopMode};
use crate::env::lane::{run_hash, Lane, ISCSI_PORT};
use crate::ledger::{Ledger, Object};
pub use crate::model::names::IQN_PREFIX;
pub use crate::sys::configfs::*;
use crate::sys::netns::NetNs;

/// The kernel initiator's name.
pub const INITIATOR_NAME_FILE: &str = "/etc/iscsi/initiatorname.iscsi";
const LUN: u32 = 1;
const TPGT: &str = "tpgt_1";
/// Name of the symlinks we make (LUN → device, mapped LUN → LUN).
const LINK_NAME: &str = "iscsi-chaos";
/// The lab loads the modules in the background at boot: give them a moment.
const MODULE_WAIT: Duration = Duration::from_secs(5);

/// The HBA index of lane `index` of `run_id`.
pub fn hba_index(run_id: &str, index: u8) -> u64 {
    HBA_BASE + (run_hash(run_id) % HBA_RUN_SLOTS) * 256 + u64::from(index)
}

/// The backstore device name of lane `index` of `run_id`.
pub fn device_name(run_id: &str, index: u8) -> String {
    format!("{DEVICE_PREFIX}{run_id}-{index}")
}

/// How far [`LioTarget::setup_until`] goes; each stage includes the ones
/// before it. Tests use it to prove teardown of a half-built target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LioStage {
    Hba,
    Device,
    DeviceEnabled,
    TargetIqn,
    Tpg,
    Lun,
    Acl,
    Portal,
    Complete,
}

impl LioStage {
    pub const ALL: [LioStage; 9] = [
        LioStage::Hba,
        LioStage::Device,
        LioStage::DeviceEnabled,
        LioStage::TargetIqn,
        LioStage::Tpg,
        LioStage::Lun,
        LioStage::Acl,
        LioStage::Portal,
        LioStage::Complete,
    ];
}

/// One configfs object we made; undone in reverse order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Made {
    Dir(PathBuf),
    Link(PathBuf),
    /// An `enable` attribute we set to 1 (undone by writing 0).
    Enabled(PathBuf),
    /// Device `enable`: undone by the device's rmdir, nothing to do.
    DeviceEnabled,
}

/// A LIO target serving one LUN in one lane.
#[derive(Debug)]
pub struct LioTarget {
    netns: NetNs,
    portal: Portal,
    spec: LunSpec,
    hba: PathBuf,
    device: PathBuf,
    tpg: PathBuf,
    /// The initiator IQN the ACL admits (None: demo mode).
    acl_iqn: Option<String>,
    made: Vec<Made>,
    /// The lane's ledger: each directory and link is written in it first.
    ledger: Ledger,
    /// Holds the backing file; removed on teardown.
    dir: Option<crate::ledger::WorkFolder>,
    backing: PathBuf,
}

/// Short blocking configfs work (a TPG disable waits for its sessions to
/// close) goes through the one policy for blocking work.
use crate::sys::blocking::blocking;

fn write_attr(path: &Path, value: &str) -> Result<()> {
    // configfs wants the whole value in one write.
    std::fs::write(path, value).map_err(|e| io_ctx(e, &format!("write {value:?} to"), path))
}

/// Fails clearly when LIO is not there (waiting briefly for modules that
/// are still loading).
pub fn check_available() -> Result<()> {
    let deadline = Instant::now() + MODULE_WAIT;
    while !Path::new(CONFIGFS_TARGET).join("core").is_dir() {
        if Instant::now() > deadline {
            // A host without LIO skips LIO runs; it does not fail them.
            return Err(anyhow::Error::new(super::Unsupported(
                "LIO is not available on this host: /sys/kernel/config/target is missing \
                 (load target_core_mod, iscsi_target_mod and target_core_file, and mount \
                 configfs on /sys/kernel/config; see `iscsi-chaos doctor`)",
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The kernel initiator's IQN, from `/etc/iscsi/initiatorname.iscsi`.
pub fn initiator_name() -> Result<String> {
    let text = std::fs::read_to_string(INITIATOR_NAME_FILE)
        .with_context(|| format!("read {INITIATOR_NAME_FILE}"))?;
    parse_initiator_name(&text)
        .ok_or_else(|| anyhow!("no InitiatorName= line in {INITIATOR_NAME_FILE}"))
}

/// The `InitiatorName=` value of an initiatorname.iscsi file.
pub fn parse_initiator_name(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix("InitiatorName="))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl LioTarget {
    /// Configure target `iqn_for(run, lane)` with LUN 1 on a sparse file,
    /// its portal listening in the lane's namespace.
    pub async fn setup(lane: &Lane, spec: LunSpec) -> Result<LioTarget> {
        Self::setup_until(lane, spec, LioStage::Complete).await
    }

    /// Like [`LioTarget::setup`], stopping after `stage` (for tests). On an
    /// error everything made so far is removed.
    pub async fn setup_until(lane: &Lane, spec: LunSpec, stage: LioStage) -> Result<LioTarget> {
        Self::setup_on(lane, spec, stage, None).await
    }

    /// Like [`LioTarget::setup_until`], the LUN on `store` (a block device,
    /// e.g. a [`super::slow_store::SlowStore`]) instead of a sparse file.
    pub async fn setup_on(
        lane: &Lane,
        spec: LunSpec,
        stage: LioStage,
        store: Option<&Path>,
    ) -> Result<LioTarget> {
        let mut t = Self::new(lane, spec)?;
        if let Some(store) = store {
            t.backing = store.to_path_buf();
        }
        let res = blocking(|| t.build(stage));
        if let Err(e) = res {
            if let Err(te) = t.teardown().await {
                tracing::warn!("LIO teardown after failed setup: {te:#}");
            }
            return Err(e.context(format!("LIO target for lane {}", lane.index())));
        }
        Ok(t)
    }

    fn new(lane: &Lane, spec: LunSpec) -> Result<LioTarget> {
        check_available()?;
        let netns = lane
            .netns()
            .ok_or_else(|| anyhow!("lane {} has no namespace", lane.index()))?
            .clone();
        let acl_iqn = match spec.allow {
            InitiatorAllow::All => None,
            InitiatorAllow::Address(_) => Some(initiator_name()?),
        };
        let (dir, backing) = super::backing_store(lane, "lio", spec.size_bytes)?;
        let root = Path::new(CONFIGFS_TARGET);
        let hba = root
            .join("core")
            .join(format!("fileio_{}", hba_index(lane.run_id(), lane.index())));
        let device = hba.join(device_name(lane.run_id(), lane.index()));
        let iqn = iqn_for(lane.run_id(), lane.index());
        let tpg = root.join("iscsi").join(&iqn).join(TPGT);
        Ok(LioTarget {
            netns,
            portal: Portal {
                addr: SocketAddrV4::new(lane.target_addr(), ISCSI_PORT),
                iqn,
                lun: LUN,
            },
            spec,
            hba,
            device,
            tpg,
            acl_iqn,
            made: Vec::new(),
            ledger: lane.ledger().clone(),
            dir: Some(dir),
            backing,
        })
    }

    fn mkdir(&mut self, path: PathBuf) -> Result<()> {
        self.record(&path)?;
        std::fs::create_dir(&path).map_err(|e| io_ctx(e, "mkdir", &path))?;
        self.made.push(Made::Dir(path));
        Ok(())
    }

    fn record(&self, path: &Path) -> Result<()> {
        self.ledger.record(Object::Configfs {
            path: path.to_path_buf(),
        })
    }

    fn symlink(&mut self, to: &Path, link: PathBuf) -> Result<()> {
        self.record(&link)?;
        std::os::unix::fs::symlink(to, &link).map_err(|e| io_ctx(e, "symlink", &link))?;
        self.made.push(Made::Link(link));
        Ok(())
    }

    /// The blocking configfs work, in creation order, recording each object.
    fn build(&mut self, stage: LioStage) -> Result<()> {
        let iscsi = Path::new(CONFIGFS_TARGET).join("iscsi");
        // The HBA: ours by its index range; an empty one left by a crash of
        // the same run id is reused (and removed by our teardown).
        self.record(&self.hba)?;
        match std::fs::create_dir(&self.hba) {
            Ok(()) => self.made.push(Made::Dir(self.hba.clone())),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.made.push(Made::Dir(self.hba.clone()))
            }
            Err(e) => return Err(io_ctx(e, "mkdir", &self.hba)),
        }
        if stage == LioStage::Hba {
            return Ok(());
        }
        self.mkdir(self.device.clone())?;
        // Buffered I/O like tgt's rdwr backing store (and it advertises a
        // write cache, so the initiator's flushes reach the file).
        let control = format!(
            "fd_dev_name={},fd_dev_size={},fd_buffered_io=1",
            self.backing.display(),
            self.spec.size_bytes
        );
        write_attr(&self.device.join("control"), &control)?;
        if stage == LioStage::Device {
            return Ok(());
        }
        write_attr(&self.device.join("enable"), "1")?;
        self.made.push(Made::DeviceEnabled);
        // A unit serial of ours: LIO builds the LUN's NAA designator (VPD
        // page 0x83, the WWID multipath goes by) from it and reports none
        // without it.
        write_attr(
            &self.device.join("wwn/vpd_unit_serial"),
            &unit_serial(&self.device),
        )?;
        if stage == LioStage::DeviceEnabled {
            return Ok(());
        }
        // mkdir of `iscsi` loads iscsi_target_mod if needed; it is not ours.
        if !iscsi.is_dir() {
            std::fs::create_dir(&iscsi).or_else(|e| match e.kind() {
                ErrorKind::AlreadyExists => Ok(()),
                _ => Err(io_ctx(e, "mkdir (is iscsi_target_mod available?)", &iscsi)),
            })?;
        }
        let target_dir = self.tpg.parent().expect("tpg has a parent").to_path_buf();
        self.mkdir(target_dir)?;
        if stage == LioStage::TargetIqn {
            return Ok(());
        }
        self.mkdir(self.tpg.clone())?;
        write_attr(&self.tpg.join("attrib/authentication"), "0")?;
        if stage == LioStage::Tpg {
            return Ok(());
        }
        let lun = self.tpg.join(format!("lun/lun_{LUN}"));
        self.mkdir(lun.clone())?;
        self.symlink(&self.device.clone(), lun.join(LINK_NAME))?;
        if stage == LioStage::Lun {
            return Ok(());
        }
        match self.acl_iqn.clone() {
            Some(initiator) => self.make_acl(&initiator)?,
            None => {
                // Demo mode: any initiator, read-write. Attributes of the
                // TPG go with its rmdir.
                write_attr(&self.tpg.join("attrib/generate_node_acls"), "1")?;
                write_attr(&self.tpg.join("attrib/cache_dynamic_acls"), "1")?;
                write_attr(&self.tpg.join("attrib/demo_mode_write_protect"), "0")?;
            }
        }
        if stage == LioStage::Acl {
            return Ok(());
        }
        self.make_portal()?;
        if stage == LioStage::Portal {
            return Ok(());
        }
        self.enable_tpg()
    }

    fn np_path(&self) -> PathBuf {
        self.tpg.join("np").join(self.portal.addr.to_string())
    }

    /// The portal, made from a thread in the lane's namespace: LIO listens
    /// in the namespace of the process that makes it.
    fn make_portal(&mut self) -> Result<()> {
        self.make_np(self.np_path())
    }

    fn make_np(&mut self, np: PathBuf) -> Result<()> {
        self.record(&np)?;
        let made = self
            .netns
            .run_in(|| std::fs::create_dir(&np))
            .map_err(anyhow::Error::new)?;
        made.map_err(|e| io_ctx(e, "mkdir (in the lane's namespace)", &np))?;
        self.made.push(Made::Dir(np));
        Ok(())
    }

    /// One more network portal, at `addr` (a further path of the lane),
    /// made from a thread in the lane's namespace like the first.
    pub async fn add_portal(&mut self, addr: SocketAddrV4) -> Result<()> {
        if self.dir.is_none() {
            bail!("target was torn down");
        }
        let np = self.tpg.join("np").join(addr.to_string());
        blocking(|| self.make_np(np))
    }

    /// Remove or restore the network portal (a nemesis action: without it
    /// the address refuses new connections, as with a killed tgtd). Live
    /// sessions on it are NOT closed (measured on 6.1: the session went on
    /// with no error). Idempotent.
    pub async fn set_portal(&mut self, present: bool) -> Result<()> {
        if self.dir.is_none() {
            bail!("target was torn down");
        }
        let np = Made::Dir(self.np_path());
        let has = self.made.contains(&np);
        blocking(|| match (present, has) {
            (true, false) => self.make_portal(),
            (false, true) => {
                undo(&np)?;
                self.made.retain(|m| m != &np);
                Ok(())
            }
            _ => Ok(()),
        })?;
        tracing::info!(portal = %self.portal.addr, present, "LIO portal changed");
        Ok(())
    }

    /// An ACL for one more initiator (another host), with LUN 1 mapped;
    /// nothing in demo mode, which admits any.
    pub async fn admit(&mut self, initiator: &str) -> Result<()> {
        if self.acl_iqn.is_none() {
            return Ok(());
        }
        if self.dir.is_none() {
            bail!("target was torn down");
        }
        blocking(|| self.make_acl(initiator))
    }

    /// The file LIO writes this LUN's persistent-reservation state to
    /// (`<db_root>/pr/aptpl_<unit serial>`) at its first PERSISTENT RESERVE
    /// OUT; it stays after the LUN is gone.
    pub fn pr_state_file(&self) -> PathBuf {
        crate::sys::configfs::lio_pr_folder().join(format!("aptpl_{}", unit_serial(&self.device)))
    }

    fn acl_path(&self, initiator: &str) -> PathBuf {
        self.tpg.join("acls").join(initiator)
    }

    /// The ACL of `initiator` with LUN 1 mapped to it (read-write).
    fn make_acl(&mut self, initiator: &str) -> Result<()> {
        let acl = self.acl_path(initiator);
        self.mkdir(acl.clone())?;
        let mapped = acl.join(format!("lun_{LUN}"));
        self.mkdir(mapped.clone())?;
        let lun = self.tpg.join(format!("lun/lun_{LUN}"));
        self.symlink(&lun, mapped.join(LINK_NAME))
    }

    /// Admit or refuse the initiator (a nemesis action: "change the
    /// initiator's access so logins fail"). Refusing removes its ACL, which
    /// also closes its sessions; admitting makes the ACL again. Only with an
    /// ACL (not in demo mode). Idempotent.
    pub async fn set_initiator_access(&mut self, allowed: bool) -> Result<()> {
        let Some(initiator) = self.acl_iqn.clone() else {
            bail!("LIO target in demo mode (any initiator): no ACL to change");
        };
        if self.dir.is_none() {
            bail!("target was torn down");
        }
        let acl = self.acl_path(&initiator);
        let present = self.made.contains(&Made::Dir(acl.clone()));
        blocking(|| match (allowed, present) {
            (true, false) => self.make_acl(&initiator),
            (false, true) => {
                // Close the initiator's sessions first: removing the mapped
                // LUN under a live session fails the commands that arrive
                // before the ACL's rmdir with ILLEGAL REQUEST (LU not
                // supported), an EIO at once (measured). Writing the ACL's
                // queue depth shuts its sessions down (session
                // reinstatement), like the ACL's rmdir does; the initiator
                // relogs in no sooner than 2 s later, long after the rmdir.
                shut_down_sessions(&acl);
                // The ACL's objects, newest first.
                let mut first_error = None;
                let ours: Vec<Made> = self
                    .made
                    .iter()
                    .filter(|m| matches!(m, Made::Dir(p) | Made::Link(p) if p.starts_with(&acl)))
                    .cloned()
                    .collect();
                for m in ours.iter().rev() {
                    match undo(m) {
                        Ok(()) => self.made.retain(|x| x != m),
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                match first_error {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        })?;
        tracing::info!(iqn = %self.portal.iqn, %initiator, allowed, "LIO ACL changed");
        Ok(())
    }

    fn enable_tpg(&mut self) -> Result<()> {
        let enable = self.tpg.join("enable");
        write_attr(&enable, "1")?;
        if !self.made.contains(&Made::Enabled(enable.clone())) {
            self.made.push(Made::Enabled(enable));
        }
        tracing::info!(iqn = %self.portal.iqn, portal = %self.portal.addr, "LIO target enabled");
        Ok(())
    }

    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    pub fn backing_path(&self) -> Option<&Path> {
        self.dir.as_ref().map(|_| self.backing.as_path())
    }

    /// LIO runs in the kernel: there is no target process.
    pub fn pid(&self) -> Option<u32> {
        None
    }

    /// The TPG's configfs folder (`.../iscsi/<iqn>/tpgt_1`).
    pub fn tpg_path(&self) -> &Path {
        &self.tpg
    }

    /// The backstore device's configfs folder.
    pub fn device_path(&self) -> &Path {
        &self.device
    }

    /// The initiator IQN the ACL admits (None: demo mode, anyone).
    pub fn acl_initiator(&self) -> Option<&str> {
        self.acl_iqn.as_deref()
    }

    /// Whether the TPG is enabled (serving logins).
    pub fn is_enabled(&self) -> bool {
        std::fs::read_to_string(self.tpg.join("enable")).is_ok_and(|s| s.trim() == "1")
    }

    /// The kernel has no target process: disable the TPG instead (closes
    /// every session; logins are refused until [`LioTarget::start_process`]).
    /// Both modes act the same.
    pub async fn stop_process(&mut self, mode: StopMode) -> Result<()> {
        if self.dir.is_none() || !self.is_enabled() {
            return Ok(());
        }
        let enable = self.tpg.join("enable");
        blocking(|| write_attr(&enable, "0"))?;
        tracing::info!(iqn = %self.portal.iqn, ?mode, "LIO TPG disabled");
        Ok(())
    }

    /// Enable the TPG again (same portal, IQN, LUN and ACL).
    pub async fn start_process(&mut self) -> Result<()> {
        if self.dir.is_none() {
            bail!("target was torn down");
        }
        if self.is_enabled() {
            return Ok(());
        }
        blocking(|| self.enable_tpg())
    }

    /// Remove every configfs object we made, newest first, then the backing
    /// file. Steps that fail are kept for the next call. Idempotent.
    pub async fn teardown(&mut self) -> Result<()> {
        blocking(|| self.teardown_blocking())
    }

    fn teardown_blocking(&mut self) -> Result<()> {
        let mut first_error: Option<anyhow::Error> = None;
        let mut kept = Vec::new();
        while let Some(m) = self.made.pop() {
            if let Err(e) = undo(&m) {
                tracing::warn!("LIO teardown: {e:#}");
                first_error.get_or_insert(e);
                kept.push(m);
            }
        }
        kept.reverse();
        self.made = kept;
        if let Some(e) = first_error {
            return Err(e);
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            dir.close()
                .with_context(|| format!("remove {}", path.display()))?;
        }
        Ok(())
    }
}

/// A unit serial for the LIO device at `device` (32 hex digits from its
/// configfs path, which carries the run id and lane: unique on the host).
fn unit_serial(device: &Path) -> String {
    let text = device.to_string_lossy();
    let a = crate::model::names::run_hash(&text);
    let b = crate::model::names::run_hash(&format!("{text}/serial"));
    format!("{a:016x}{b:016x}")
}

/// Undo one object; one already gone counts as done.
fn undo(m: &Made) -> Result<()> {
    let gone = |r: io::Result<()>, what: &str, p: &Path| match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_ctx(e, what, p)),
    };
    match m {
        Made::Dir(p) => gone(std::fs::remove_dir(p), "rmdir", p),
        Made::Link(p) => gone(std::fs::remove_file(p), "unlink", p),
        Made::Enabled(p) => gone(std::fs::write(p, "0"), "write 0 to", p),
        Made::DeviceEnabled => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::names::run_of;

    #[test]
    fn initiator_name_is_parsed() {
        let text = "## DO NOT EDIT\n# InitiatorName=iqn.no\nInitiatorName=iqn.1993-08.org.debian:01:41e8f7b2ba1\n";
        assert_eq!(
            parse_initiator_name(text).as_deref(),
            Some("iqn.1993-08.org.debian:01:41e8f7b2ba1")
        );
        assert_eq!(parse_initiator_name("GenerateName=yes\n"), None);
        assert_eq!(parse_initiator_name("InitiatorName=\n"), None);
    }

    #[test]
    fn names_carry_the_run() {
        assert_eq!(device_name("r1-x", 3), "iscsi-chaos-r1-x-3");
        assert_eq!(
            run_of(&device_name("r1-x", 3)[DEVICE_PREFIX.len()..]),
            Some("r1-x")
        );
        assert_eq!(
            run_of(&iqn_for("abc-9", 200)[IQN_PREFIX.len()..]),
            Some("abc-9")
        );
        assert_eq!(run_of("nolane"), None);
        assert_eq!(run_of("run-x"), None);
    }

    #[test]
    fn hba_indexes_stay_in_our_range() {
        for run in ["a", "20261122-0412-abc", "zzzzzzzz"] {
            for lane in [0u8, 1, 255] {
                let n = hba_index(run, lane);
                assert!(is_our_hba(&format!("fileio_{n}")), "{n}");
                assert!(n <= u64::from(u32::MAX));
            }
        }
        assert_ne!(hba_index("a", 1), hba_index("a", 2));
        assert!(!is_our_hba("fileio_0"));
        assert!(!is_our_hba("iblock_3000000001"));
    }
}
