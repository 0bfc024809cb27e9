//! A LUN backing store that can be made slow: "the array is slow, not the
//! network". A sparse file in the lane's marked temporary folder, a loop
//! device over it, and a device-mapper `delay` device over the loop device
//! named `iscsi-chaos-<run>-<lane>-slow`; the target serves the dm device.
//! The delay is switched by reloading the table (`delay <loop> 0 <ms>`:
//! reads, writes and flushes) and resuming, which swaps tables atomically
//! and releases bios already held back.
//!
//! Markers for cleanup: the dm device by its name, the loop device by its
//! backing file's path (in `iscsi-chaos-<run>-<lane>-*`). Teardown and
//! cleanup remove the dm device, then the loop device, then the folder; the
//! target must have let go of the dm device first.
//!
//! Uses `dmsetup` and `losetup` (the lab image has both). `--noudevsync`:
//! the lab runs no udev, and we address the device by its kernel name.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::env::lane::Lane;
use crate::ledger::{Ledger, Object};
pub use crate::model::names::{dm_name, run_of_dm, DM_PREFIX, DM_SUFFIX};
pub use crate::sys::dm::*;

/// The dm table: `<loop>` with `ms` added to every I/O.
pub fn delay_table(sectors: u64, loop_dev: &str, ms: u64) -> String {
    format!("0 {sectors} delay {loop_dev} 0 {ms}")
}

/// A delayable backing store for one lane.
#[derive(Debug)]
pub struct SlowStore {
    name: String,
    sectors: u64,
    /// Holds the backing file; removed on teardown.
    dir: Option<crate::ledger::WorkFolder>,
    file: PathBuf,
    loop_dev: Option<String>,
    dm_made: bool,
    /// The device the target opens.
    device: PathBuf,
    delay_ms: u64,
    /// The lane's ledger: the loop and dm devices are written in it first.
    ledger: Ledger,
}

impl SlowStore {
    /// File, loop device, dm device (no delay yet). On an error, what was
    /// made is removed.
    pub async fn create(lane: &Lane, size_bytes: u64) -> Result<SlowStore> {
        // A host without the tools skips slow_store runs; it does not fail them.
        for t in ["dmsetup", "losetup"] {
            if !on_path(t) {
                return Err(anyhow::Error::new(super::Unsupported(
                    "slow_store needs dmsetup and losetup (apt-get install dmsetup mount) \
                     and the dm_delay module; see `iscsi-chaos doctor`",
                )));
            }
        }
        let (dir, file) = super::backing_store(lane, "slow", size_bytes)?;
        let mut s = SlowStore {
            name: dm_name(lane.run_id(), lane.index()),
            sectors: size_bytes / 512,
            dir: Some(dir),
            file,
            loop_dev: None,
            dm_made: false,
            device: PathBuf::new(),
            delay_ms: 0,
            ledger: lane.ledger().clone(),
        };
        if let Err(e) = s.build().await {
            if let Err(te) = s.teardown().await {
                tracing::warn!("slow store teardown after failed setup: {te:#}");
            }
            return Err(e.context("slow backing store (dm-delay over a loop device)"));
        }
        Ok(s)
    }

    async fn build(&mut self) -> Result<()> {
        let file = self.file.to_string_lossy().into_owned();
        self.ledger.record(Object::LoopDevice {
            backing_file: self.file.clone(),
        })?;
        let dev = tool("losetup", &["--find", "--show", &file]).await?;
        self.loop_dev = Some(dev.clone());
        let table = delay_table(self.sectors, &dev, 0);
        self.ledger.record(Object::DmDevice {
            name: self.name.clone(),
        })?;
        tool(
            "dmsetup",
            &["create", &self.name, "--noudevsync", "--table", &table],
        )
        .await?;
        self.dm_made = true;
        let kname = tool(
            "dmsetup",
            &["info", "-c", "--noheadings", "-o", "blkdevname", &self.name],
        )
        .await?;
        let mapper = Path::new("/dev/mapper").join(&self.name);
        self.device = if mapper.exists() {
            mapper
        } else {
            Path::new("/dev").join(kname.trim())
        };
        if !self.device.exists() {
            bail!("no device node for dm device {} ({kname})", self.name);
        }
        tracing::info!(name = %self.name, loop_dev = %dev, device = %self.device.display(), "slow store made");
        Ok(())
    }

    /// The block device the target should serve.
    pub fn device(&self) -> &Path {
        &self.device
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn loop_device(&self) -> Option<&str> {
        self.loop_dev.as_deref()
    }

    pub fn delay_ms(&self) -> u64 {
        self.delay_ms
    }

    /// Switch the delay added to every I/O (0: none).
    pub async fn set_delay(&mut self, ms: u64) -> Result<()> {
        let dev = self.loop_dev.clone().context("no loop device")?;
        let table = delay_table(self.sectors, &dev, ms);
        tool(
            "dmsetup",
            &["reload", &self.name, "--noudevsync", "--table", &table],
        )
        .await?;
        tool("dmsetup", &["resume", &self.name, "--noudevsync"]).await?;
        self.delay_ms = ms;
        tracing::info!(name = %self.name, ms, "slow store delay set");
        Ok(())
    }

    /// The live table, as dmsetup prints it (proof of the delay in place).
    pub async fn table(&self) -> Result<String> {
        tool("dmsetup", &["table", &self.name]).await
    }

    /// dm device, loop device, folder; the target must be gone. Idempotent.
    pub async fn teardown(&mut self) -> Result<()> {
        if self.dm_made {
            remove_dm(&self.name).await?;
            self.dm_made = false;
        }
        if let Some(dev) = self.loop_dev.clone() {
            detach_loop(&dev).await?;
            self.loop_dev = None;
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            dir.close()
                .with_context(|| format!("remove {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_delays_every_io() {
        assert_eq!(
            delay_table(131072, "/dev/loop3", 2500),
            "0 131072 delay /dev/loop3 0 2500"
        );
    }
}
