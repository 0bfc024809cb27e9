//! iSCSI targets living in a lane's namespace. One enum the orchestrator
//! drives, one module per backend.

pub mod lio;
pub mod slow_store;
pub mod tgt;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use crate::ledger::WorkFolder;
use anyhow::Result;

use crate::env::lane::Lane;

/// Which target implementation serves a lane: the scenario's own word.
pub use crate::model::TargetKind;

/// A target kind this build cannot serve: the run is skipped, not failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub &'static str);

/// Which initiators may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitiatorAllow {
    All,
    Address(Ipv4Addr),
}

/// What to export: one LUN (number 1) of `size_bytes`, backed by a sparse
/// file the target owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LunSpec {
    pub size_bytes: u64,
    pub allow: InitiatorAllow,
}

/// Where the initiator finds the LUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    pub addr: SocketAddrV4,
    pub iqn: String,
    pub lun: u32,
}

impl Portal {
    /// The LUN as libiscsi's tools name it: `iscsi://ADDR/IQN/LUN`.
    pub fn url(&self) -> String {
        format!("iscsi://{}/{}/{}", self.addr, self.iqn, self.lun)
    }
}

/// How to stop the target process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// SIGTERM, then SIGKILL if it has not exited after the timeout.
    Graceful(Duration),
    /// SIGKILL at once (a crash).
    Kill,
}

/// The LUN's backing store: a sparse file in a work folder of the lane
/// (root's alone, written in the lane's ledger before it is made).
pub(crate) fn backing_store(
    lane: &Lane,
    purpose: &str,
    size_bytes: u64,
) -> Result<(WorkFolder, std::path::PathBuf)> {
    use anyhow::Context;
    let dir = lane
        .ledger()
        .work_folder(lane.run_id(), lane.index(), purpose)
        .context("a work folder for the LUN")?;
    let backing = dir.path().join("lun1.img");
    // Sparse: set_len allocates nothing.
    std::fs::File::create(&backing)
        .and_then(|f| f.set_len(size_bytes))
        .with_context(|| format!("create backing file {}", backing.display()))?;
    Ok((dir, backing))
}

/// The target's IQN for lane `index` of run `run_id`.
pub fn iqn_for(run_id: &str, index: u8) -> String {
    format!("iqn.2026-11.io.iscsi-chaos:{run_id}-{index}")
}

/// A running target. Call [`Target::teardown`] before dropping it; dropping
/// only kills the target process.
#[derive(Debug)]
pub enum Target {
    Tgt(tgt::TgtTarget),
    Lio(lio::LioTarget),
}

impl Target {
    /// Start a target of `kind` in `lane`'s namespace, exporting one LUN.
    pub async fn setup(kind: TargetKind, lane: &Lane, spec: LunSpec) -> Result<Target> {
        Self::setup_on(kind, lane, spec, None).await
    }

    /// Like [`Target::setup`], the LUN on the block device `store` when given.
    pub async fn setup_on(
        kind: TargetKind,
        lane: &Lane,
        spec: LunSpec,
        store: Option<&Path>,
    ) -> Result<Target> {
        match kind {
            TargetKind::Tgt => Ok(Target::Tgt(
                tgt::TgtTarget::setup_on(lane, spec, store).await?,
            )),
            TargetKind::Lio => Ok(Target::Lio(
                lio::LioTarget::setup_on(lane, spec, lio::LioStage::Complete, store).await?,
            )),
        }
    }

    /// One more portal, on path `path` of the lane (its own subnet): the
    /// same target, LUN and access, one more address to log in through.
    pub async fn add_portal(&mut self, path: &Lane) -> Result<SocketAddrV4> {
        let addr = SocketAddrV4::new(path.target_addr(), crate::env::lane::ISCSI_PORT);
        match self {
            Target::Tgt(t) => t.add_portal(addr, path.initiator_addr()).await?,
            Target::Lio(t) => t.add_portal(addr).await?,
        }
        Ok(addr)
    }

    /// Where the target writes the LUN's persistent-reservation state
    /// (LIO; tgt keeps it in memory).
    pub fn pr_state_file(&self) -> Option<std::path::PathBuf> {
        match self {
            Target::Tgt(_) => None,
            Target::Lio(t) => Some(t.pr_state_file()),
        }
    }

    /// Admits another host's initiator name (LIO's ACL, when the target
    /// keeps one; tgt admits by address, which `add_portal` bound).
    pub async fn admit(&mut self, initiator: &str) -> Result<()> {
        match self {
            Target::Tgt(_) => Ok(()),
            Target::Lio(t) => t.admit(initiator).await,
        }
    }

    /// Remove (false) or restore (true) the target's network portal (a
    /// nemesis action). Returns what was done, for the history.
    pub async fn set_portal(&mut self, present: bool) -> Result<String> {
        match self {
            Target::Tgt(t) => t.set_portal(present).await,
            Target::Lio(t) => {
                t.set_portal(present).await?;
                Ok(format!(
                    "LIO portal {} {}",
                    t.portal().addr,
                    if present { "made again" } else { "removed" }
                ))
            }
        }
    }

    /// Revoke (false) or restore (true) the initiator's access so that its
    /// logins fail (a nemesis action). Returns what was done.
    pub async fn set_initiator_access(&mut self, allowed: bool) -> Result<String> {
        match self {
            Target::Tgt(t) => t.set_initiator_access(allowed).await,
            Target::Lio(t) => {
                t.set_initiator_access(allowed).await?;
                Ok(format!(
                    "LIO ACL of {} {}",
                    t.acl_initiator().unwrap_or("?"),
                    if allowed { "made again" } else { "removed" }
                ))
            }
        }
    }

    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Tgt(_) => TargetKind::Tgt,
            Target::Lio(_) => TargetKind::Lio,
        }
    }

    pub fn portal(&self) -> &Portal {
        match self {
            Target::Tgt(t) => t.portal(),
            Target::Lio(t) => t.portal(),
        }
    }

    /// Path of the LUN's backing file (None after teardown).
    pub fn backing_path(&self) -> Option<&Path> {
        match self {
            Target::Tgt(t) => t.backing_path(),
            Target::Lio(t) => t.backing_path(),
        }
    }

    /// pid of the target daemon, if it runs (never for LIO: it is in-kernel).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Target::Tgt(t) => t.pid(),
            Target::Lio(t) => t.pid(),
        }
    }

    /// Stop the target process, keeping the LUN's data (a nemesis action).
    /// LIO has no process: its TPG is disabled instead.
    pub async fn stop_process(&mut self, mode: StopMode) -> Result<()> {
        match self {
            Target::Tgt(t) => t.stop_process(mode).await,
            Target::Lio(t) => t.stop_process(mode).await,
        }
    }

    /// Start the target process again with the same portal, IQN and LUN
    /// (LIO: enable the TPG).
    pub async fn start_process(&mut self) -> Result<()> {
        match self {
            Target::Tgt(t) => t.start_process().await,
            Target::Lio(t) => t.start_process().await,
        }
    }

    /// Remove the target's configuration, stop it and delete the backing
    /// file. Idempotent.
    pub async fn teardown(&mut self) -> Result<()> {
        match self {
            Target::Tgt(t) => t.teardown().await,
            Target::Lio(t) => t.teardown().await,
        }
    }
}
