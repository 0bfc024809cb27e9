//! A lane's dm-multipath map: our own multipathd (with the config the
//! scenario's `[multipath]` asks for), the map over this run's sessions'
//! disks, its path states, and its removal.
//!
//! Invariants: a multipathd we did not start is never used or touched (a
//! run finding one skips, saying so: its config would not be the
//! scenario's, and two daemons cannot share a host); the map's slaves are
//! exactly this run's sessions' disks before any I/O goes to it; the
//! daemon, its work folder and the map are in the ledger before they exist.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::Child;

use crate::env::target::Unsupported;
use crate::ledger::{Ledger, Object, WorkFolder};
use crate::model::multipath::{
    parse_map_status, wwid_of_sysfs, wwid_of_vpd83, MapStatus, Multipath,
};
use crate::model::names::mp_name;
use crate::sys::mpath;

/// How long multipathd may take to open its socket, and the map to appear.
const START_BOUND: Duration = Duration::from_secs(15);
const MAP_BOUND: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// multipath's WWID of `disk`: sysfs `wwid`, else VPD page 0x83 (the
/// kernel may fill them in a moment after the disk appears). Both targets
/// give one (LIO once its unit serial is set), so udev's `scsi_id` is not
/// needed.
async fn wwid_of(disk: &str) -> Result<String> {
    let started = Instant::now();
    loop {
        let raw = mpath::sysfs_wwid(disk);
        let found = raw
            .as_deref()
            .and_then(wwid_of_sysfs)
            .or_else(|| mpath::vpd_pg83(disk).as_deref().and_then(wwid_of_vpd83));
        if let Some(w) = found {
            return Ok(w);
        }
        if started.elapsed() > Duration::from_secs(5) {
            bail!(
                "{disk}: no WWID multipath can take (sysfs wwid {raw:?}, no usable VPD page 0x83)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub struct MultipathMap {
    /// The map's name (our marker: `iscsi-chaos-<run>-<lane>-mp`).
    pub name: String,
    /// `/dev/mapper/<name>`.
    pub device: PathBuf,
    /// multipath's WWID of the LUN.
    pub wwid: String,
    /// The multipath.conf multipathd runs with.
    pub config: String,
    daemon: Option<Child>,
    dir: Option<WorkFolder>,
}

impl MultipathMap {
    /// Starts multipathd for `disks` (one per path, all of one LUN) and
    /// waits for the map over them.
    pub async fn create(
        ledger: &Ledger,
        run_id: &str,
        lane: u8,
        settings: &Multipath,
        disks: &[PathBuf],
    ) -> Result<MultipathMap> {
        if mpath::daemon_listening() {
            return Err(Unsupported(
                "a multipathd that is not ours runs on this host: multipath scenarios \
                 start their own (with the scenario's config), and two cannot share a host",
            )
            .into());
        }
        let names: Vec<String> = disks
            .iter()
            .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        // multipathd needs the kernel's multipath target.
        crate::sys::dm::tool("modprobe", &["dm_multipath"])
            .await
            .context("loading dm_multipath")?;
        let mut wwids = Vec::new();
        for disk in &names {
            wwids.push(wwid_of(disk).await?);
        }
        wwids.dedup();
        let [wwid] = wwids.as_slice() else {
            bail!("the paths' disks {names:?} are not one LUN: WWIDs {wwids:?}");
        };
        let name = mp_name(run_id, lane);
        let config = settings.config(wwid, &name);
        let dir = ledger
            .work_folder(run_id, lane, "mpath")
            .context("a work folder for multipathd")?;
        let mut map = MultipathMap {
            device: Path::new("/dev/mapper").join(&name),
            name,
            wwid: wwid.clone(),
            config,
            daemon: None,
            dir: None,
        };
        let upper = dir.path().join("etc");
        let work = dir.path().join("ovl");
        let run = dir.path().join("run");
        for d in [&upper, &work, &run, &upper.join("multipath")] {
            std::fs::create_dir(d).with_context(|| format!("mkdir {}", d.display()))?;
        }
        std::fs::write(upper.join("multipath.conf"), &map.config)
            .context("writing multipath.conf")?;
        let log =
            std::fs::File::create(dir.path().join("multipathd.log")).context("multipathd's log")?;
        map.dir = Some(dir);
        ledger.record(Object::DmDevice {
            name: map.name.clone(),
        })?;
        let cmd = mpath::daemon_command(&upper, &work, &run, log)?;
        let child = crate::sys::cmd::spawn_dying_with_harness(cmd)
            .await
            .context("starting multipathd")?;
        let recorded = ledger.record_process("multipathd", child.id(), Vec::new());
        map.daemon = Some(child);
        if let Err(e) = recorded {
            let _ = map.teardown().await;
            return Err(e);
        }
        match map.bring_up(&names).await {
            Ok(()) => Ok(map),
            Err(e) => {
                let log = map.log_tail();
                let _ = map.teardown().await;
                Err(e.context(format!("multipathd's log ends: {log}")))
            }
        }
    }

    async fn bring_up(&mut self, disks: &[String]) -> Result<()> {
        mpath::wait_listening(START_BOUND).await?;
        for disk in disks {
            // With udev running it may have the path already: then "fail".
            if let Err(e) = mpath::command(&["add", "path", disk]).await {
                tracing::debug!(error = %e, "multipathd add path");
            }
        }
        let started = Instant::now();
        let node = loop {
            if let Some(node) = mpath::dm_node(&self.name) {
                if self.device.exists() && mpath::slaves(&node).len() == disks.len() {
                    break node;
                }
            }
            if started.elapsed() > MAP_BOUND {
                bail!(
                    "map {} over {disks:?} did not appear within {} s",
                    self.name,
                    MAP_BOUND.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Safety: I/O goes to this map only if it is over our disks alone.
        let mut ours = disks.to_vec();
        ours.sort();
        let slaves = mpath::slaves(&node);
        if slaves != ours {
            bail!(
                "map {} ({node}) is over {slaves:?}, not exactly this run's disks {ours:?}",
                self.name
            );
        }
        Ok(())
    }

    /// The map's paths as the dm table shows them now.
    pub async fn status(&self) -> Option<MapStatus> {
        let text = mpath::map_status(&self.name).await.ok()?;
        parse_map_status(text.lines().next()?)
    }

    /// multipathd's merged config for our map (`multipathd show config`,
    /// cut to what our map uses), for the history.
    pub async fn shown_config(&self) -> String {
        match mpath::command(&["show", "config", "local"]).await {
            Ok(text) => text,
            Err(_) => mpath::command(&["show", "config"])
                .await
                .unwrap_or_else(|e| format!("(multipathd show config: {e:#})")),
        }
    }

    fn log_tail(&self) -> String {
        let Some(dir) = &self.dir else {
            return String::new();
        };
        let text = std::fs::read_to_string(dir.path().join("multipathd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join(" | ")
    }

    /// Releases queued I/O, removes the map, stops multipathd, removes its
    /// folder. Idempotent; tries every step.
    pub async fn teardown(&mut self) -> Result<()> {
        let mut first: Option<anyhow::Error> = None;
        if self.daemon.is_some() {
            // Queued I/O fails now rather than holding the map open.
            let _ = mpath::command(&["disablequeueing", "map", &self.name]).await;
            let _ = mpath::command(&["del", "map", &self.name]).await;
            let _ = mpath::command(&["shutdown"]).await;
        }
        if let Some(mut child) = self.daemon.take() {
            if tokio::time::timeout(STOP_GRACE, child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
        if mpath::dm_node(&self.name).is_some() {
            if let Err(e) = crate::sys::dm::remove_dm(&self.name).await {
                first.get_or_insert(e);
            }
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                first.get_or_insert(anyhow::anyhow!("remove {}: {e}", path.display()));
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
