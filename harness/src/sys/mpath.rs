//! multipathd and dm-multipath maps from the outside: the daemon started
//! with a private /etc (its config path is compiled in), its command
//! socket, `dmsetup status` of a map. Knows nothing of runs or ledgers.
//!
//! multipathd reads only /etc/multipath.conf (and /etc/multipath/). We
//! never write there: the daemon runs in a mount namespace of its own in
//! which /etc is an overlay whose upper layer (in our work folder) holds
//! our multipath.conf; what it writes (wwids) lands there too. The
//! overlay dies with the daemon's namespace.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::cmd;

/// multipathd's command socket: an abstract unix socket, one per host (its
/// name is compiled in, so two daemons cannot share a host).
pub const SOCKET: &str = "@/org/kernel/linux/storage/multipathd";

/// Whether some multipathd listens on its socket now (`/proc/net/unix`).
pub fn daemon_listening() -> bool {
    std::fs::read_to_string("/proc/net/unix")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().last() == Some(SOCKET))
        })
        .unwrap_or(false)
}

/// A `multipathd -d -s` (foreground, log to stderr) with `upper` (holding
/// `multipath.conf`) laid over /etc in a mount namespace of its own, and
/// `run` (an empty folder of ours) over /run, so its pid file and state
/// stay ours too; `DM_DISABLE_UDEV=1` so that libdevmapper makes
/// /dev/mapper nodes itself when no udev runs. `work` is overlayfs's work
/// folder (empty, on the same file system as `upper`).
pub fn daemon_command(
    upper: &Path,
    work: &Path,
    run: &Path,
    log: std::fs::File,
) -> Result<tokio::process::Command> {
    let run = CString::new(run.as_os_str().as_encoded_bytes()).context("the run folder")?;
    let options = CString::new(format!(
        "lowerdir=/etc,upperdir={},workdir={}",
        upper.display(),
        work.display()
    ))
    .context("overlay options")?;
    let mut cmd = cmd::command("multipathd");
    cmd.args(["-d", "-s"])
        .env("DM_DISABLE_UDEV", "1")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: unshare and mount are plain system calls (async-signal-safe);
    // the strings were made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            use nix::mount::{mount, MsFlags};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            mount(
                Some("overlay"),
                "/etc",
                Some("overlay"),
                MsFlags::empty(),
                Some(options.as_c_str()),
            )?;
            mount(
                Some(run.as_c_str()),
                "/run",
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        });
    }
    Ok(cmd)
}

/// Waits until a multipathd listens on its socket.
pub async fn wait_listening(bound: Duration) -> Result<()> {
    let started = Instant::now();
    while !daemon_listening() {
        if started.elapsed() > bound {
            bail!(
                "multipathd did not open its socket within {} s",
                bound.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Sends one command to multipathd (`multipathd add path sdb`); its answer.
/// multipathd answers "fail" (exit 0 or 1, by version) when it refused.
pub async fn command(args: &[&str]) -> Result<String> {
    let what = format!("multipathd {}", args.join(" "));
    let out = cmd::output(
        cmd::command("multipathd").args(args),
        &what,
        cmd::TOOL_TIMEOUT,
    )
    .await?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || text.starts_with("fail") {
        bail!(
            "{what} failed ({}): {} {}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

/// `dmsetup status MAP`, the first line.
pub async fn map_status(name: &str) -> Result<String> {
    super::dm::tool("dmsetup", &["status", name]).await
}

/// The dm device (`dm-N`) of map `name`, from sysfs.
pub fn dm_node(name: &str) -> Option<String> {
    std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .find_map(|e| {
            let n = std::fs::read_to_string(e.path().join("dm/name")).ok()?;
            (n.trim() == name).then(|| e.file_name().to_string_lossy().into_owned())
        })
}

/// The disks below dm device `node` (`/sys/block/dm-N/slaves`), sorted.
pub fn slaves(node: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(Path::new("/sys/block").join(node).join("slaves"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A SCSI disk's identifier as sysfs shows it (`/sys/block/sdX/device/wwid`).
pub fn sysfs_wwid(disk: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/sys/block").join(disk).join("device/wwid"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// A SCSI disk's VPD page 0x83 as the kernel cached it (raw bytes).
pub fn vpd_pg83(disk: &str) -> Option<Vec<u8>> {
    std::fs::read(Path::new("/sys/block").join(disk).join("device/vpd_pg83")).ok()
}
