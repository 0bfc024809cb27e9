//! open-iscsi from the outside: iscsiadm (every call bounded), iscsid, and
//! the sessions as sysfs shows them. Knows nothing of runs or ledgers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub const SESSIONS: &str = "/sys/class/iscsi_session";

/// iscsiadm's exit status for "iSCSI database failure".
const ISCSI_ERR_IDBM: i32 = 6;
/// iscsiadm's exit status for "No records found".
const ISCSI_ERR_NO_OBJS_FOUND: i32 = 21;
/// iscsiadm's exit status for "session exists".
const ISCSI_ERR_SESS_EXISTS: i32 = 15;

/// Runs iscsiadm; fails with its stderr.
///
/// An operation on matched node records (`-m node -T … -p …`) reads every
/// record in the database; another run creating or deleting its own record
/// meanwhile makes that read fail with "encountered iSCSI database failure"
/// (exit 6; seen with two lanes tearing down at once). Such a failure is
/// tried again, a few times.
pub async fn iscsiadm(args: &[&str]) -> Result<String> {
    let out = run_iscsiadm(args).await?;
    if !out.status.success() {
        return Err(failed(args, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The error of an iscsiadm call that exited with `out`.
fn failed(args: &[&str], out: &std::process::Output) -> anyhow::Error {
    anyhow::anyhow!(
        "iscsiadm {} failed ({}): {}",
        redacted_args(args),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// Runs iscsiadm to its end (an exit-6 race tried again); any status.
pub async fn run_iscsiadm(args: &[&str]) -> Result<std::process::Output> {
    let what = format!("iscsiadm {}", redacted_args(args));
    let mut attempt = 0;
    let out = loop {
        attempt += 1;
        let out = super::cmd::output(
            super::cmd::command("iscsiadm").args(args),
            &what,
            super::cmd::TOOL_TIMEOUT,
        )
        .await?;
        if out.status.code() != Some(ISCSI_ERR_IDBM) || attempt >= 5 {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
    };
    Ok(out)
}

/// iscsiadm's arguments for messages: the value (`-v`) of a secret setting
/// (`-n node.session.auth.password`) is not shown.
pub fn redacted_args(args: &[&str]) -> String {
    let mut shown = Vec::with_capacity(args.len());
    let mut key: Option<&str> = None;
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && args[i - 1] == "-n" {
            key = Some(arg);
        }
        let secret =
            i > 0 && args[i - 1] == "-v" && key.is_some_and(crate::model::settings::is_secret);
        shown.push(if secret {
            crate::model::settings::REDACTED
        } else {
            arg
        });
    }
    shown.join(" ")
}

pub fn iscsid_running() -> bool {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten().any(|e| {
                std::fs::read_to_string(e.path().join("comm"))
                    .is_ok_and(|comm| comm.trim() == "iscsid")
            })
        })
        .unwrap_or(false)
}

/// Starts iscsid (marked, in its own process group, not tied to our life:
/// other runs may share it) and waits until its control socket listens.
/// Returns its pid.
pub async fn start_iscsid() -> Result<u32> {
    // iscsiadm needs its lock folder (a tmpfs /run may lack it).
    let _ = std::fs::create_dir_all("/run/lock/iscsi");
    let child = super::cmd::command("iscsid")
        .arg("-f")
        // iscsid signals its whole process group when it shuts down:
        // give it its own, or its SIGTERM reaches us too.
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(false)
        .spawn()
        .context("starting iscsid (is open-iscsi installed?)")?;
    let pid = child.id().context("iscsid has no pid")?;
    // Tokio reaps it once it exits, whoever stops it.
    drop(child);
    let started = Instant::now();
    loop {
        let unix = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
        if unix.contains("@ISCSIADM_ABSTRACT_NAMESPACE") {
            return Ok(pid);
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            bail!("iscsid did not open its control socket within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops iscsid `pid`: SIGTERM, then SIGKILL once `grace` has passed while
/// `alive()` still holds.
pub async fn stop_iscsid(pid: i32, grace: Duration, alive: impl Fn() -> bool) {
    use nix::sys::signal::{kill, Signal};
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGTERM);
    let until = Instant::now() + grace;
    while alive() {
        if Instant::now() > until {
            let _ = kill(pid, Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where open-iscsi keeps iface records (Debian's, then Fedora's).
const IFACE_DIRS: [&str; 2] = ["/etc/iscsi/ifaces", "/var/lib/iscsi/ifaces"];

/// Makes iface record `name` (TCP, bound to no interface: the route
/// picks it) whose sessions log in as `initiator`.
pub async fn new_iface(name: &str, initiator: &str) -> Result<()> {
    iscsiadm(&["-m", "iface", "-I", name, "-o", "new"]).await?;
    iscsiadm(&[
        "-m",
        "iface",
        "-I",
        name,
        "-o",
        "update",
        "-n",
        "iface.initiatorname",
        "-v",
        initiator,
    ])
    .await
    .map(|_| ())
}

/// Whether iface record `name` exists.
pub fn iface_exists(name: &str) -> bool {
    IFACE_DIRS.iter().any(|d| Path::new(d).join(name).exists())
}

/// The iface records carrying our marker
/// ([`crate::model::names::is_our_iface_name`]).
pub fn our_ifaces() -> Vec<String> {
    let mut names: Vec<String> = IFACE_DIRS
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| crate::model::names::is_our_iface_name(n))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Deletes iface record `name` (gone already: done).
pub async fn delete_iface(name: &str) -> Result<()> {
    if !iface_exists(name) {
        return Ok(());
    }
    iscsiadm(&["-m", "iface", "-I", name, "-o", "delete"])
        .await
        .map(|_| ())
}

/// Whether the node record (`iqn`, `portal`) exists (for the ledger).
pub async fn node_record_exists(iqn: &str, portal: &str) -> bool {
    iscsiadm(&["-m", "node", "-T", iqn, "-p", portal])
        .await
        .is_ok()
}

/// Logs in to the node record (`iqn`, `portal`). A session already there
/// is done (exit 15): the record is the run's alone, so is its session.
/// (Seen in the lab: a login that failed with the database race, exit 6,
/// had logged in before failing; tried again, it found its own session.)
pub async fn login_node(iqn: &str, portal: &str) -> Result<()> {
    let args = ["-m", "node", "-T", iqn, "-p", portal, "--login"];
    let out = run_iscsiadm(&args).await?;
    match out.status.code() {
        Some(0) | Some(ISCSI_ERR_SESS_EXISTS) => Ok(()),
        _ => Err(failed(&args, &out)),
    }
}

/// Deletes the node record (`iqn`, `portal`); a record already gone is
/// not an error. (A delete that raced another run's record change can
/// have removed ours before failing with exit 6; tried again it finds "No
/// records found", exit 21: the record is gone, which is what was asked.)
pub async fn delete_node_record(iqn: &str, portal: &str) -> Result<()> {
    let args = ["-m", "node", "-o", "delete", "-T", iqn, "-p", portal];
    // iscsid may still list a session whose kernel side was just logged
    // out (its sysfs folder gone) for a moment: iscsiadm then refuses with
    // "session exists". Asked again until RECORD_BUSY_BOUND.
    let until = Instant::now() + RECORD_BUSY_BOUND;
    loop {
        let out = run_iscsiadm(&args).await?;
        match out.status.code() {
            Some(0) | Some(ISCSI_ERR_NO_OBJS_FOUND) => return Ok(()),
            Some(ISCSI_ERR_SESS_EXISTS) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            _ => return Err(failed(&args, &out)),
        }
    }
}

/// How long [`delete_node_record`] waits for a session being torn down.
const RECORD_BUSY_BOUND: Duration = Duration::from_secs(60);

/// The id (`N` of `sessionN`) of the session to target `iqn`, if one exists.
pub fn session_id(iqn: &str) -> Option<String> {
    session_id_of(&find_session_dir(iqn)?)
}

/// Every iSCSI session of this host, as (sysfs folder, target IQN).
pub fn sessions() -> Vec<(PathBuf, String)> {
    let Ok(dir) = std::fs::read_dir(SESSIONS) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let iqn = std::fs::read_to_string(e.path().join("targetname")).ok()?;
            Some((e.path(), iqn.trim().to_string()))
        })
        .collect()
}

/// The target address a session's connection was made to (its
/// connection's `persistent_address`), if sysfs shows one.
pub fn session_target_addr(dir: &Path) -> Option<String> {
    let n = session_id_of(dir)?;
    let conn = format!("/sys/class/iscsi_connection/connection{n}:0/persistent_address");
    std::fs::read_to_string(conn)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The session to target `iqn` through the portal at `addr` (a lane with
/// several paths has one session per portal, all to the same IQN).
pub fn find_session_dir_at(iqn: &str, addr: &str) -> Option<PathBuf> {
    sessions().into_iter().find_map(|(dir, name)| {
        (name == iqn && session_target_addr(&dir).as_deref() == Some(addr)).then_some(dir)
    })
}

pub fn find_session_dir(iqn: &str) -> Option<PathBuf> {
    sessions()
        .into_iter()
        .find_map(|(dir, name)| (name == iqn).then_some(dir))
}

/// `N` of a session's sysfs folder `…/sessionN`.
pub fn session_id_of(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    name.strip_prefix("session").map(str::to_string)
}

/// The block device below a session's sysfs node: session/target*/H:C:T:L/block/sdX.
pub fn disk_of_session(session_dir: &Path) -> Option<PathBuf> {
    let device = session_dir.join("device").canonicalize().ok()?;
    for target in std::fs::read_dir(&device).ok()?.flatten() {
        if !target.file_name().to_string_lossy().starts_with("target") {
            continue;
        }
        for lun in std::fs::read_dir(target.path()).ok()?.flatten() {
            let Ok(mut blocks) = std::fs::read_dir(lun.path().join("block")) else {
                continue;
            };
            if let Some(Ok(block)) = blocks.next() {
                return Some(PathBuf::from("/dev").join(block.file_name()));
            }
        }
    }
    None
}

/// Logs session `session` (its number) out, retrying while iscsid is busy.
pub async fn logout_session(session: &str) -> Result<(), String> {
    let dir = Path::new("/sys/class/iscsi_session").join(format!("session{session}"));
    let mut why = String::new();
    let tries = async {
        loop {
            match iscsiadm(&["-m", "session", "-r", session, "-u"]).await {
                Ok(_) => why.clear(),
                Err(e) => why = format!("{e:#}"),
            }
            if !dir.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    // Each iscsiadm is bounded by the tool timeout; all the tries together
    // by LOGOUT_BOUND (before, 40 tries could take 40 minutes).
    let ended = tokio::time::timeout(LOGOUT_BOUND, tries).await;
    match ended {
        Ok(()) => Ok(()),
        Err(_) if !dir.exists() => Ok(()),
        Err(_) => Err(format!(
            "session{session} still there after {} s of logouts{}",
            LOGOUT_BOUND.as_secs(),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        )),
    }
}

/// How long [`logout_session`] tries in all.
pub const LOGOUT_BOUND: Duration = Duration::from_secs(90);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_not_shown_in_messages() {
        let args = [
            "-m",
            "node",
            "-o",
            "update",
            "-n",
            "node.session.auth.password",
            "-v",
            "hunter2",
        ];
        let shown = redacted_args(&args);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("node.session.auth.password"), "{shown}");
        let plain = ["-o", "update", "-n", "node.session.queue_depth", "-v", "32"];
        assert_eq!(redacted_args(&plain), plain.join(" "));
    }
}
