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

    /// Creates the record (written in `ledger` first) and applies the
    /// scenario's settings to it.
    pub async fn create(
        ledger: &Ledger,
        iqn: &str,
        portal: SocketAddrV4,
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
        node.node_op(&["-o", "new"]).await?;
        let manual = [("node.startup".to_string(), "manual".to_string())];
        for (key, value) in manual.iter().chain(settings) {
            node.node_op(&["-o", "update", "-n", key, "-v", value])
                .await
                .with_context(|| {
                    format!(
                        "setting {key} = {}",
                        crate::model::settings::redacted(key, value)
                    )
                })?;
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
