//! The open-iscsi initiator, in the root network namespace (its kernel
//! netlink socket exists only there): iscsid, this run's node record, the
//! login, and the session's disk as sysfs shows it.
//!
//! Invariants: the node record is ours alone (its target IQN carries the run
//! id) and is deleted at the end; the disk is found from the session's sysfs
//! tree, never by guessing /dev names; an iscsid we started is stopped by us.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::ledger::{Ledger, Object};

/// Another host's initiator: an iface record of ours carrying its
/// initiator name (written in `ledger` first).
pub async fn host_iface(ledger: &Ledger, name: &str, initiator: &str) -> Result<()> {
    ledger.record(Object::Iface {
        name: name.to_string(),
    })?;
    new_iface(name, initiator)
        .await
        .with_context(|| format!("the iface record {name} ({initiator})"))
}
pub use crate::sys::iscsi::*;

/// This run's node record.
#[derive(Debug, Clone)]
pub struct Node {
    pub iqn: String,
    pub portal: SocketAddrV4,
    /// The lane's ledger: the record and the session are written in it.
    ledger: Ledger,
}

impl Node {
    fn portal_arg(&self) -> String {
        self.portal.to_string()
    }

    async fn node_op(&self, extra: &[&str]) -> Result<String> {
        let portal = self.portal_arg();
        let mut args = vec!["-m", "node", "-T", &self.iqn, "-p", &portal];
        args.extend_from_slice(extra);
        iscsiadm(&args).await
    }

    /// Creates the record (written in `ledger` first), through iface
    /// record `iface` when given (another host's initiator name), and
    /// applies the scenario's settings to it.
    pub async fn create(
        ledger: &Ledger,
        iqn: &str,
        portal: SocketAddrV4,
        iface: Option<&str>,
        settings: &[(String, String)],
    ) -> Result<Node> {
        let node = Node {
            iqn: iqn.to_string(),
            portal,
            ledger: ledger.clone(),
        };
        ledger.record(Object::NodeRecord {
            iqn: node.iqn.clone(),
            portal: node.portal_arg(),
        })?;
        match iface {
            Some(iface) => node.node_op(&["-I", iface, "-o", "new"]).await?,
            None => node.node_op(&["-o", "new"]).await?,
        };
        let manual = [("node.startup".to_string(), "manual".to_string())];
        let (plain, secrets) = split_secrets(settings);
        for (key, value) in manual.iter().chain(plain) {
            node.node_op(&["-o", "update", "-n", key, "-v", value])
                .await
                .with_context(|| format!("setting {key} = {value}"))?;
        }
        if !secrets.is_empty() {
            // iscsiadm takes a value only on its command line, where any
            // user reads it (/proc/PID/cmdline): a secret is written into
            // the root-only record file instead, which iscsiadm reads at
            // login like any value it wrote itself.
            let keys: Vec<&str> = secrets.iter().map(|(k, _)| k.as_str()).collect();
            crate::sys::blocking::blocking(|| {
                write_record_values(&node.iqn, &node.portal_arg(), &secrets)
            })
            .with_context(|| format!("writing {} into the node record", keys.join(", ")))?;
        }
        Ok(node)
    }

    /// Logs in; gives up (killing iscsiadm) after `bound`, which should
    /// cover the record's login_timeout x (initial_login_retry_max + 1).
    pub async fn login(&self, bound: Duration) -> Result<Session> {
        self.ledger.record(Object::Session {
            iqn: self.iqn.clone(),
        })?;
        tokio::time::timeout(bound, login_node(&self.iqn, &self.portal_arg()))
            .await
            .map_err(|_| anyhow::anyhow!("the login did not end within {} s", bound.as_secs()))??;
        Session::find(&self.iqn, &self.portal.ip().to_string()).await
    }

    /// Logs out if a session exists; no session is not an error.
    pub async fn logout(&self) -> Result<()> {
        if find_session_dir_at(&self.iqn, &self.portal.ip().to_string()).is_none() {
            return Ok(());
        }
        self.node_op(&["--logout"]).await.map(|_| ())
    }

    pub async fn delete(&self) -> Result<()> {
        delete_node_record(&self.iqn, &self.portal_arg()).await
    }
}

/// The settings iscsiadm may be given on its command line, and the
/// secrets, which it may not.
type Setting = (String, String);

fn split_secrets(settings: &[Setting]) -> (Vec<&Setting>, Vec<Setting>) {
    let (secrets, plain): (Vec<_>, Vec<_>) = settings
        .iter()
        .partition(|(k, _)| crate::model::settings::is_secret(k));
    (plain, secrets.into_iter().cloned().collect())
}

/// Where open-iscsi keeps node records (Debian's, then Fedora's).
const NODE_DIRS: [&str; 2] = ["/etc/iscsi/nodes", "/var/lib/iscsi/nodes"];

/// The record file of `iqn` at `portal` (`IP:PORT`):
/// `<dir>/<iqn>/<ip>,<port>[,<tpgt>]/<iface>` (or the older single file
/// `<dir>/<iqn>/<ip>,<port>[,<tpgt>]`).
fn record_file(iqn: &str, portal: &str) -> Result<PathBuf> {
    // `IP,PORT` (no portal group known: `-o new`), or `IP,PORT,TPGT`.
    let bare = portal.replace(':', ",");
    let prefix = format!("{bare},");
    for dir in NODE_DIRS {
        let Ok(entries) = std::fs::read_dir(Path::new(dir).join(iqn)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != bare && !name.starts_with(&prefix) {
                continue;
            }
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.is_file() {
                return Ok(p);
            }
            if meta.is_dir() {
                // One file per iface: `default`, or ours.
                let file = std::fs::read_dir(&p)?
                    .flatten()
                    .map(|f| f.path())
                    .find(|f| f.is_file());
                if let Some(file) = file {
                    return Ok(file);
                }
            }
        }
    }
    bail!(
        "no node record file of {iqn} at {portal} under {}",
        NODE_DIRS.join(" or ")
    )
}

/// `text` (a record file) with `values` set: their old lines dropped, a
/// `key = value` line each appended.
fn with_values(text: &str, values: &[(String, String)]) -> String {
    let mut out: String = text
        .lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            !values.iter().any(|(k, _)| k == key)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for (k, v) in values {
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
}

/// Sets `values` in the record file of `iqn` at `portal`: written whole
/// (0600, root's) under a new name and renamed over it.
fn write_record_values(iqn: &str, portal: &str, values: &[(String, String)]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = record_file(iqn, portal)?;
    let text = std::fs::read_to_string(&path)?;
    let tmp = path.with_extension("iscsi-chaos-new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = f
        .write_all(with_values(&text, values).as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// A logged-in session and its disk.
#[derive(Debug, Clone)]
pub struct Session {
    /// `sessionN`
    pub name: String,
    /// /sys/class/iscsi_session/sessionN
    pub sysfs: PathBuf,
    /// /dev/sdX of LUN 1
    pub disk: PathBuf,
}

impl Session {
    /// What names this session in kernel lines (for [`crate::env::monitor::Ours`]).
    pub fn kernel_names(&self, node: &Node) -> crate::env::monitor::Ours {
        let session = self
            .name
            .strip_prefix("session")
            .and_then(|n| n.parse().ok());
        // /sys/class/iscsi_session/sessionN/device -> .../hostH/sessionN
        let host = std::fs::canonicalize(self.sysfs.join("device"))
            .ok()
            .and_then(|p| {
                p.components().find_map(|c| {
                    c.as_os_str()
                        .to_str()?
                        .strip_prefix("host")?
                        .parse::<u32>()
                        .ok()
                })
            });
        crate::env::monitor::Ours {
            session,
            host,
            disk: self
                .disk
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
            target_addr: Some(node.portal.ip().to_string()),
            iqn: Some(node.iqn.clone()),
            maps: Vec::new(),
        }
    }

    /// The timers the kernel uses for this session, read from sysfs: the
    /// session's recovery and error-handling timeouts, the connection's
    /// NOP-Out settings (iscsid sets `recv_tmo` from noop_out_interval and
    /// `ping_tmo` from noop_out_timeout), and the disk's SCSI timeouts.
    /// What a kernel does not expose is left out.
    pub fn effective_settings(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut read = |key: &str, path: PathBuf| {
            if let Ok(v) = std::fs::read_to_string(&path) {
                out.insert(key.to_string(), v.trim().to_string());
            }
        };
        for attr in ["recovery_tmo", "abort_tmo", "lu_reset_tmo", "tgt_reset_tmo"] {
            read(&format!("session.{attr}"), self.sysfs.join(attr));
        }
        if let Some(n) = self.name.strip_prefix("session") {
            let conn = PathBuf::from(format!("/sys/class/iscsi_connection/connection{n}:0"));
            for attr in ["ping_tmo", "recv_tmo"] {
                read(&format!("connection.{attr}"), conn.join(attr));
            }
        }
        if let Some(disk) = self.disk.file_name() {
            let dev = Path::new("/sys/block").join(disk).join("device");
            for attr in ["timeout", "eh_timeout"] {
                read(&format!("disk.{attr}"), dev.join(attr));
            }
        }
        out
    }

    /// Waits for the session of `iqn` through the portal at `addr`, and
    /// its disk, to appear.
    pub async fn find(iqn: &str, addr: &str) -> Result<Session> {
        let started = Instant::now();
        loop {
            if let Some(dir) = find_session_dir_at(iqn, addr) {
                if let Some(disk) = disk_of_session(&dir) {
                    if disk.exists() {
                        let name = dir
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        return Ok(Session {
                            name,
                            sysfs: dir,
                            disk,
                        });
                    }
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("no disk appeared for the session of {iqn} within 30 s (is sd_mod loaded?)");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// LOGGED_IN, FAILED or FREE, as sysfs says now.
    pub fn state(&self) -> Option<String> {
        std::fs::read_to_string(self.sysfs.join("state"))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_go_to_iscsiadm_s_command_line() {
        let settings = vec![
            (
                "node.session.auth.authmethod".to_string(),
                "CHAP".to_string(),
            ),
            ("node.session.auth.username".to_string(), "me".to_string()),
            (
                "node.session.auth.password".to_string(),
                "98765432101234".to_string(),
            ),
            ("node.session.queue_depth".to_string(), "32".to_string()),
        ];
        let (plain, secrets) = split_secrets(&settings);
        let argv: Vec<&str> = plain.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(argv, ["CHAP", "32"]);
        assert_eq!(secrets.len(), 2);
        let record =
            "node.name = iqn.x\nnode.session.auth.password = old\nnode.conn[0].port = 3260\n";
        let new = with_values(record, &secrets);
        assert_eq!(
            new,
            "node.name = iqn.x\nnode.conn[0].port = 3260\n\
             node.session.auth.username = me\nnode.session.auth.password = 98765432101234\n"
        );
    }
}
