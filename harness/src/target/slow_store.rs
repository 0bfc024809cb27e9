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
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::Command;

use crate::ledger::{Ledger, Object};
use crate::topology::Lane;

/// Prefix of every dm device we create.
pub const DM_PREFIX: &str = "iscsi-chaos-";
/// Suffix of our dm delay devices.
pub const DM_SUFFIX: &str = "-slow";
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// The dm device name of lane `index` of `run_id`.
pub fn dm_name(run_id: &str, index: u8) -> String {
    format!("{DM_PREFIX}{run_id}-{index}{DM_SUFFIX}")
}

/// The run id in one of our dm names (`iscsi-chaos-<run>-<lane>-slow`).
pub fn run_of_dm(name: &str) -> Option<&str> {
    let tail = name.strip_prefix(DM_PREFIX)?.strip_suffix(DM_SUFFIX)?;
    tail.rsplit_once('-')
        .filter(|(run, lane)| !run.is_empty() && lane.parse::<u8>().is_ok())
        .map(|(run, _)| run)
}

/// The dm table: `<loop>` with `ms` added to every I/O.
pub fn delay_table(sectors: u64, loop_dev: &str, ms: u64) -> String {
    format!("0 {sectors} delay {loop_dev} 0 {ms}")
}

async fn tool(program: &str, args: &[&str]) -> Result<String> {
    let out = tokio::time::timeout(
        TOOL_TIMEOUT,
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| anyhow!("{program} {} timed out", args.join(" ")))?
    .with_context(|| format!("run {program} (is it installed?)"))?;
    checked_stdout(program, args, out)
}

/// The trimmed stdout of a finished tool, or an error with its stderr.
fn checked_stdout(program: &str, args: &[&str], out: std::process::Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn tool_blocking(program: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {program}"))?;
    checked_stdout(program, args, out)
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// A delayable backing store for one lane.
#[derive(Debug)]
pub struct SlowStore {
    name: String,
    sectors: u64,
    /// Holds the backing file; removed on teardown.
    dir: Option<tempfile::TempDir>,
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

/// Removes dm device `name` (nothing may hold it open).
pub async fn remove_dm(name: &str) -> Result<()> {
    tool("dmsetup", &["remove", "--retry", "--noudevsync", name])
        .await
        .map(drop)
}

/// Detaches loop device `dev` (`/dev/loopN`).
pub async fn detach_loop(dev: &str) -> Result<()> {
    tool("losetup", &["-d", dev]).await.map(drop)
}

/// dm device names present, from `/sys/block/dm-*/dm/name`.
fn dm_names() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("dm/name")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// Whether dm device `name` exists.
pub fn dm_exists(name: &str) -> bool {
    dm_names().iter().any(|n| n == name)
}

/// Loop devices present, as (`/dev/loopN`, backing file).
fn loop_devices() -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let backing = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            let dev = format!("/dev/{}", e.file_name().to_string_lossy());
            Some((dev, backing.trim().to_string()))
        })
        .collect()
}

/// The loop devices over `backing_file`.
pub fn loops_over(backing_file: &Path) -> Vec<String> {
    loop_devices()
        .into_iter()
        .filter(|(_, b)| Path::new(b) == backing_file)
        .map(|(dev, _)| dev)
        .collect()
}

/// Our dm devices present (names).
pub fn dm_leftovers() -> Vec<String> {
    let mut found: Vec<String> = dm_names()
        .into_iter()
        .filter(|n| run_of_dm(n).is_some())
        .collect();
    found.sort();
    found
}

/// The run id in a loop device's backing file path, if it lies in one of
/// our temporary folders (`<tmp>/iscsi-chaos-<run>-<lane>-<random>/...`).
pub fn run_of_backing_file(path: &str, tmp: &Path) -> Option<String> {
    let rest = Path::new(path.trim()).strip_prefix(tmp).ok()?;
    let folder = rest.components().next()?.as_os_str().to_str()?;
    let tail = folder.strip_prefix("iscsi-chaos-")?;
    tail.rsplitn(3, '-').nth(2).map(str::to_string)
}

/// Our loop devices present, as (device, run id).
pub fn loop_leftovers() -> Vec<(String, String)> {
    let tmp = std::env::temp_dir();
    let mut found: Vec<(String, String)> = loop_devices()
        .into_iter()
        .filter_map(|(dev, backing)| Some((dev, run_of_backing_file(&backing, &tmp)?)))
        .collect();
    found.sort();
    found
}

/// Remove our dm devices, then our loop devices, of runs `is_stale` says
/// are dead (after their targets are gone). Blocking. Returns a description
/// of each removal or failure.
pub fn remove_leftovers(is_stale: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut done = Vec::new();
    for name in dm_leftovers() {
        if !run_of_dm(&name).is_some_and(is_stale) {
            continue;
        }
        done.push(
            match tool_blocking("dmsetup", &["remove", "--retry", "--noudevsync", &name]) {
                Ok(_) => format!("dm device {name}"),
                Err(e) => format!("(could not remove dm device {name}: {e:#})"),
            },
        );
    }
    for (dev, run) in loop_leftovers() {
        if !is_stale(&run) {
            continue;
        }
        done.push(match tool_blocking("losetup", &["-d", &dev]) {
            Ok(_) => format!("loop device {dev}"),
            Err(e) => format!("(could not detach loop device {dev}: {e:#})"),
        });
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_names_carry_the_run() {
        let n = dm_name("20261122-0412-abc", 3);
        assert_eq!(n, "iscsi-chaos-20261122-0412-abc-3-slow");
        assert_eq!(run_of_dm(&n), Some("20261122-0412-abc"));
        assert_eq!(run_of_dm("iscsi-chaos-x-slow"), None);
        assert_eq!(run_of_dm("vg0-root"), None);
        assert_eq!(run_of_dm("iscsi-chaos-r-1"), None);
    }

    #[test]
    fn loop_devices_are_ours_by_their_backing_folder() {
        let tmp = Path::new("/tmp");
        assert_eq!(
            run_of_backing_file("/tmp/iscsi-chaos-r1-x-0-AbC12/lun1.img\n", tmp).as_deref(),
            Some("r1-x")
        );
        assert_eq!(
            run_of_backing_file("/tmp/iscsi-chaos-r1-0-AbC12/lun1.img (deleted)", tmp).as_deref(),
            Some("r1")
        );
        assert_eq!(run_of_backing_file("/var/lib/disk.img", tmp), None);
        assert_eq!(run_of_backing_file("/tmp/other/lun1.img", tmp), None);
    }

    #[test]
    fn the_table_delays_every_io() {
        assert_eq!(
            delay_table(131072, "/dev/loop3", 2500),
            "0 131072 delay /dev/loop3 0 2500"
        );
    }
}
