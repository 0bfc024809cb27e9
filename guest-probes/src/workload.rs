//! The ground the user's own workloads (cmdprobe's command, fioprobe's
//! fio job) run on: the disk itself, checked by blkprobe's guard, or a
//! filesystem made and mounted on it as fsprobe makes it, its state
//! sampled while the workload runs and unmounted after.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::blockdev::Device;
use crate::emit::Emitter;
use crate::fsprobe::{Filesystem, FsArgs, Sampler};
use crate::{monotonic_now, ProbeEvent};

/// The disk, or the filesystem on it (with a mount folder in `FsArgs`).
pub struct Ground {
    fsys: Option<Filesystem>,
}

/// A ground in use: what the workload is told of it, and the sampler of
/// its filesystem.
pub struct InUse {
    /// `ISCSI_CHAOS_DEVICE` (the disk) and, with a filesystem,
    /// `ISCSI_CHAOS_MOUNT` (its folder).
    pub env: Vec<(&'static str, OsString)>,
    sampler: Option<Sampler>,
}

impl Ground {
    /// Checks the disk, or makes and mounts the filesystem.
    pub fn prepare(fs: &FsArgs) -> Result<Ground> {
        let fsys = match fs.mount_dir {
            Some(_) => {
                let f = Filesystem::setup(fs)?;
                f.make_and_mount()?;
                Some(f)
            }
            None => {
                Device::open(&fs.device, 4096, fs.expect_session.as_deref())
                    .with_context(|| format!("checking {}", fs.device.display()))?;
                None
            }
        };
        Ok(Ground { fsys })
    }

    /// Starts sampling the filesystem and emits the probe's `Start`.
    pub fn begin(
        &self,
        fs: &FsArgs,
        out: &Arc<Emitter<std::io::Stdout>>,
        interval_ms: u64,
    ) -> InUse {
        let sampler = self.fsys.as_ref().map(|f| f.sampler(out));
        let mut env = vec![("ISCSI_CHAOS_DEVICE", fs.device.clone().into_os_string())];
        if let Some(f) = &self.fsys {
            env.push(("ISCSI_CHAOS_MOUNT", f.dir().as_os_str().to_owned()));
        }
        out.emit(&ProbeEvent::Start {
            t: monotonic_now(),
            device: fs.device.display().to_string(),
            block_size: 0,
            blocks: 0,
            interval_ms,
        });
        InUse { env, sampler }
    }

    /// Unmounts the filesystem (each step bounded by `limit`), then stops
    /// its sampler.
    pub fn end(&self, in_use: InUse, limit: Duration) {
        if let Some(f) = &self.fsys {
            f.unmount(limit);
        }
        if let Some(s) = in_use.sampler {
            s.stop();
        }
    }
}
