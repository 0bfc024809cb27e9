//! device-mapper and loop devices: dmsetup and losetup with a timeout,
//! the devices present (from sysfs), and removal of ours by name or by
//! backing file.

use std::path::Path;

use anyhow::{bail, Result};

use crate::model::names::run_of_dm;

use super::cmd;
pub use super::cmd::TOOL_TIMEOUT;

pub async fn tool(program: &str, args: &[&str]) -> Result<String> {
    let what = format!("{program} {}", args.join(" "));
    let out = cmd::output(cmd::command(program).args(args), &what, TOOL_TIMEOUT).await?;
    checked_stdout(program, args, out)
}

/// The trimmed stdout of a finished tool, or an error with its stderr.
pub fn checked_stdout(program: &str, args: &[&str], out: std::process::Output) -> Result<String> {
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

pub fn tool_blocking(program: &str, args: &[&str]) -> Result<String> {
    let what = format!("{program} {}", args.join(" "));
    let mut command = cmd::blocking_command(program);
    command.args(args);
    let out = cmd::output_blocking(&mut command, &what, None, TOOL_TIMEOUT)?;
    checked_stdout(program, args, out)
}

pub fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Removes dm device `name` (nothing may hold it open). A multipath map
/// is told to fail its queued I/O first (else a probe blocked on it holds
/// it open for ever).
pub async fn remove_dm(name: &str) -> Result<()> {
    if name.ends_with(crate::model::names::MP_SUFFIX) {
        let _ = tool("dmsetup", &["message", name, "0", "fail_if_no_path"]).await;
    }
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
/// our work folders (`<work>/iscsi-chaos-<run>-<lane>-<purpose>/...`).
pub fn run_of_backing_file(path: &str, work: &Path) -> Option<String> {
    let rest = Path::new(path.trim()).strip_prefix(work).ok()?;
    let folder = rest.components().next()?.as_os_str().to_str()?;
    let tail = folder.strip_prefix("iscsi-chaos-")?;
    tail.rsplitn(3, '-').nth(2).map(str::to_string)
}

/// Our loop devices present (backing files in work folders under `work`),
/// as (device, run id).
pub fn loop_leftovers(work: &Path) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = loop_devices()
        .into_iter()
        .filter_map(|(dev, backing)| Some((dev, run_of_backing_file(&backing, work)?)))
        .collect();
    found.sort();
    found
}

/// Remove our dm devices, then our loop devices, of runs `is_stale` says
/// are dead (after their targets are gone). Blocking. Returns a description
/// of each removal or failure.
pub fn remove_leftovers(work: &Path, is_stale: &dyn Fn(&str) -> bool) -> Vec<String> {
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
    for (dev, run) in loop_leftovers(work) {
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
    fn loop_devices_are_ours_by_their_backing_folder() {
        let work = Path::new("/run/iscsi-chaos/work");
        assert_eq!(
            run_of_backing_file(
                "/run/iscsi-chaos/work/iscsi-chaos-r1x-0-slow0a1b2c/lun1.img\n",
                work
            )
            .as_deref(),
            Some("r1x")
        );
        assert_eq!(
            run_of_backing_file(
                "/run/iscsi-chaos/work/iscsi-chaos-r1-0-slowAbC12/lun1.img (deleted)",
                work
            )
            .as_deref(),
            Some("r1")
        );
        assert_eq!(run_of_backing_file("/var/lib/disk.img", work), None);
        assert_eq!(
            run_of_backing_file("/tmp/iscsi-chaos-r1-0-slow/lun1.img", work),
            None
        );
        assert_eq!(
            run_of_backing_file("/run/iscsi-chaos/work/other/lun1.img", work),
            None
        );
    }
}
