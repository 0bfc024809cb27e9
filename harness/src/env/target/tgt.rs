//! The tgt (STGT) backend: a private `tgtd -f` per lane, in the lane's
//! namespace, configured with `tgtadm`.
//!
//! Facts this relies on (tgt 1.0.85, checked on the build machine):
//! - tgtd's control socket is a filesystem socket `/var/run/tgtd/socket.N`
//!   guarded by `lockf` on `socket.N.lock`: it is machine-wide, so every lane
//!   needs its own control port N. A stale socket file without a lock holder
//!   is reused by the next tgtd. tgtadm is still run in the lane's namespace,
//!   so a build with an abstract (per-netns) socket would work too.
//! - tgtd ignores SIGTERM (empty handler). A graceful stop is
//!   `tgtadm --mode sys --op delete`, which tgtd refuses while any target
//!   exists: delete the target (`--force`) first; SIGKILL after a timeout.
//! - `--iscsi portal=IP:PORT` makes tgtd listen on that address only.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Child;

use super::{iqn_for, InitiatorAllow, LunSpec, Portal, StopMode};
use crate::env::lane::{run_hash, Lane, ISCSI_PORT};
use crate::ledger::host::Claim;
use crate::ledger::Ledger;
use crate::sys::cmd;
use crate::sys::netns::NetNs;

/// Where tgtd puts its control sockets.
const TGTD_RUN_DIR: &str = "/var/run/tgtd";
/// tgt target id; one target per tgtd.
const TID: &str = "1";
const LUN: u32 = 1;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const TGTADM_TIMEOUT: Duration = Duration::from_secs(10);
const TEARDOWN_GRACE: Duration = Duration::from_secs(5);

/// A tgtd serving one LUN in one lane.
#[derive(Debug)]
pub struct TgtTarget {
    netns: NetNs,
    portal: Portal,
    control_port: u16,
    /// The port's host-wide claim, held while the target lives.
    _port_claim: Claim,
    spec: LunSpec,
    /// Holds the backing file and tgtd's log; removed on teardown.
    dir: Option<crate::ledger::WorkFolder>,
    backing: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// The lane's ledger: each tgtd we start is written in it.
    ledger: Ledger,
    /// The portals of the lane's further paths, with the initiator
    /// address each one admits (set up again with every tgtd started).
    more_portals: Vec<(SocketAddrV4, Ipv4Addr)>,
}

fn lock_path(port: u16) -> PathBuf {
    Path::new(TGTD_RUN_DIR).join(format!("socket.{port}.lock"))
}

fn socket_path(port: u16) -> PathBuf {
    Path::new(TGTD_RUN_DIR).join(format!("socket.{port}"))
}

/// Whether some live tgtd holds control port `port` (tgtd takes a `lockf`
/// lock on the port's lock file for its whole life).
fn control_port_in_use(port: u16) -> bool {
    crate::ledger::host::lockf_held(&lock_path(port))
}

/// A control port (10000..32000) for lane `index` of `run_id`: derived from
/// the run id so concurrent runs spread out, never 0 (a system tgtd's
/// default), skipping ports a live tgtd holds, and claimed host-wide
/// ([`Claim`], held for the target's life): two runs never pick one port,
/// and the socket files of a port are removed only by its claim's holder.
pub fn pick_control_port(run_id: &str, index: u8) -> Result<(u16, Claim)> {
    // tgtd keeps the port in a C `short`: 1..=32767 only.
    let start = (run_hash(run_id) % 22_000) as u32;
    for k in 0..200u32 {
        let port = 10_000 + (start + u32::from(index) + k * 256) % 22_000;
        let port = port as u16;
        if control_port_in_use(port) {
            continue;
        }
        let Some(claim) = Claim::try_take("tgt-ports", u32::from(port))? else {
            continue;
        };
        // A tgtd not of ours may have taken it between the two looks.
        if !control_port_in_use(port) {
            return Ok((port, claim));
        }
    }
    bail!("no free tgtd control port for lane {index}")
}

fn tail_of(path: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

impl TgtTarget {
    /// Create the backing file, start tgtd in the lane's namespace and
    /// configure target `iqn_for(run, lane)` with LUN 1.
    pub async fn setup(lane: &Lane, spec: LunSpec) -> Result<TgtTarget> {
        Self::setup_on(lane, spec, None).await
    }

    /// Like [`TgtTarget::setup`], the LUN on `store` (a block device, e.g.
    /// a [`super::slow_store::SlowStore`]) instead of a sparse file.
    pub async fn setup_on(lane: &Lane, spec: LunSpec, store: Option<&Path>) -> Result<TgtTarget> {
        let netns = lane
            .netns()
            .ok_or_else(|| anyhow!("lane {} has no namespace", lane.index()))?
            .clone();
        let (dir, mut backing) = super::backing_store(lane, "tgt", spec.size_bytes)?;
        if let Some(store) = store {
            backing = store.to_path_buf();
        }
        let log = dir.path().join("tgtd.log");
        let (control_port, port_claim) = pick_control_port(lane.run_id(), lane.index())?;
        let mut t = TgtTarget {
            netns,
            portal: Portal {
                addr: SocketAddrV4::new(lane.target_addr(), ISCSI_PORT),
                iqn: iqn_for(lane.run_id(), lane.index()),
                lun: LUN,
            },
            control_port,
            _port_claim: port_claim,
            spec,
            dir: Some(dir),
            backing,
            log,
            child: None,
            ledger: lane.ledger().clone(),
            more_portals: Vec::new(),
        };
        if let Err(e) = t.start_process().await {
            let _ = t.teardown().await;
            return Err(e.context(format!("tgt target for lane {}", lane.index())));
        }
        Ok(t)
    }

    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    pub fn control_port(&self) -> u16 {
        self.control_port
    }

    pub fn backing_path(&self) -> Option<&Path> {
        self.dir.as_ref().map(|_| self.backing.as_path())
    }

    /// tgtd's log (stdout and stderr), kept until teardown.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Run `tgtadm -C PORT ARGS...` in the lane's namespace.
    pub async fn tgtadm(&self, args: &[&str]) -> Result<String> {
        let mut cmd = cmd::command("tgtadm");
        cmd.arg("-C").arg(self.control_port.to_string()).args(args);
        self.netns.enter_on_exec_tokio(&mut cmd);
        let what = format!("tgtadm {}", args.join(" "));
        let out = cmd::output(&mut cmd, &what, TGTADM_TIMEOUT).await?;
        if !out.status.success() {
            bail!(
                "tgtadm {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Start tgtd (if it is not running) and apply the configuration.
    pub async fn start_process(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("tgtd already runs (pid {:?})", self.pid());
        }
        if self.dir.is_none() {
            bail!("target was torn down");
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .context("tgtd log")?;
        let mut cmd = cmd::command("tgtd");
        cmd.arg("-f")
            .arg("-C")
            .arg(self.control_port.to_string())
            .arg("--iscsi")
            .arg(format!("portal={}", self.portal.addr))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Safety net only: teardown stops it properly.
            .kill_on_drop(true);
        self.netns.enter_on_exec_tokio(&mut cmd);
        let child = cmd.spawn().context("spawn tgtd")?;
        // Written right after the spawn (its pid is the kernel's pick); a
        // kill in between leaves a tgtd in the lane's namespace, which the
        // namespace's removal kills.
        let leaves = vec![socket_path(self.control_port), lock_path(self.control_port)];
        if let Err(e) = self.ledger.record_process("tgtd", child.id(), leaves) {
            self.child = Some(child);
            let _ = self.stop_process(StopMode::Kill).await;
            return Err(e);
        }
        tracing::info!(pid = child.id(), port = self.control_port, portal = %self.portal.addr, "tgtd started");
        self.child = Some(child);
        if let Err(e) = self.wait_ready().await {
            let _ = self.stop_process(StopMode::Kill).await;
            return Err(e);
        }
        self.configure().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let want = format!("Portal: {}", self.portal.addr);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "tgtd exited at start ({status}): {}",
                    tail_of(&self.log, 2000).trim()
                );
            }
            match self
                .tgtadm(&["--lld", "iscsi", "--mode", "portal", "--op", "show"])
                .await
            {
                Ok(out) if out.contains(&want) => return Ok(()),
                Ok(out) => tracing::debug!(%out, "tgtd answers, portal not yet listed"),
                Err(e) => tracing::debug!(error = %e, "tgtd not ready yet"),
            }
            if Instant::now() > deadline {
                bail!(
                    "tgtd did not come up with portal {} within {READY_TIMEOUT:?}: {}",
                    self.portal.addr,
                    tail_of(&self.log, 2000).trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `tgtadm --lld iscsi --mode <mode> --op <op> --tid <our target> <rest>`.
    async fn on_target(&self, mode: &str, op: &str, rest: &[&str]) -> Result<String> {
        let mut args = vec!["--lld", "iscsi", "--mode", mode, "--op", op, "--tid", TID];
        args.extend_from_slice(rest);
        self.tgtadm(&args).await
    }

    /// Lets the initiator negotiate `key` (HeaderDigest, DataDigest) as
    /// CRC32C: tgt's targets offer only None by default.
    pub async fn allow_crc32c(&self, key: &str) -> Result<()> {
        self.on_target(
            "target",
            "update",
            &["--name", key, "--value", "CRC32C,None"],
        )
        .await
        .map(drop)
    }

    async fn configure(&self) -> Result<()> {
        let backing = self.backing.to_string_lossy().into_owned();
        let lun = LUN.to_string();
        self.on_target("target", "new", &["--targetname", &self.portal.iqn])
            .await?;
        self.on_target(
            "logicalunit",
            "new",
            &["--lun", &lun, "--backing-store", &backing],
        )
        .await?;
        self.on_target(
            "target",
            "bind",
            &["--initiator-address", &self.allow_arg()],
        )
        .await?;
        for (addr, initiator) in self.more_portals.clone() {
            self.configure_portal(addr, initiator).await?;
        }
        Ok(())
    }

    /// One more portal, at `addr`, admitting `initiator` (a further path
    /// of the lane, from the initiator's address on that path's subnet).
    pub async fn add_portal(&mut self, addr: SocketAddrV4, initiator: Ipv4Addr) -> Result<()> {
        self.configure_portal(addr, initiator).await?;
        self.more_portals.push((addr, initiator));
        Ok(())
    }

    async fn configure_portal(&self, addr: SocketAddrV4, initiator: Ipv4Addr) -> Result<()> {
        let param = format!("portal={addr}");
        self.tgtadm(&[
            "--lld", "iscsi", "--mode", "portal", "--op", "new", "--param", &param,
        ])
        .await?;
        if let InitiatorAllow::Address(_) = self.spec.allow {
            let allow = initiator.to_string();
            self.on_target("target", "bind", &["--initiator-address", &allow])
                .await?;
        }
        Ok(())
    }

    fn allow_arg(&self) -> String {
        match self.spec.allow {
            InitiatorAllow::All => "ALL".to_string(),
            InitiatorAllow::Address(a) => a.to_string(),
        }
    }

    /// Stop tgtd (keeping the backing file). Graceful: ask tgtd to exit via
    /// `tgtadm --mode sys --op delete` (it ignores SIGTERM), SIGKILL after the
    /// timeout. Kill: SIGKILL at once, like a crash.
    pub async fn stop_process(&mut self, mode: StopMode) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        let grace = match mode {
            StopMode::Graceful(t) => {
                // tgtd refuses to exit (EINVAL) while a target exists;
                // --force also closes open sessions, as tgt-admin does.
                if let Err(e) = self.on_target("target", "delete", &["--force"]).await {
                    tracing::debug!(error = %e, "tgtadm target delete");
                }
                if let Err(e) = self.tgtadm(&["--mode", "sys", "--op", "delete"]).await {
                    tracing::debug!(error = %e, "tgtadm sys delete");
                }
                if let Some(p) = pid {
                    let _ = kill(Pid::from_raw(p as i32), Signal::SIGTERM);
                }
                t
            }
            StopMode::Kill => Duration::ZERO,
        };
        let exited = if grace.is_zero() {
            false
        } else {
            tokio::time::timeout(grace, child.wait()).await.is_ok()
        };
        if !exited {
            child.start_kill().context("SIGKILL tgtd")?;
            child.wait().await.context("wait for tgtd")?;
        }
        tracing::info!(?pid, ?mode, "tgtd stopped");
        // tgtd leaves its socket files behind; they are ours: we hold the
        // port's claim, and no tgtd holds its lock now.
        if !control_port_in_use(self.control_port) {
            let _ = std::fs::remove_file(socket_path(self.control_port));
            let _ = std::fs::remove_file(lock_path(self.control_port));
        }
        Ok(())
    }

    fn portal_param(&self) -> String {
        format!("portal={}", self.portal.addr)
    }

    /// The target's connections as (session id, connection id).
    pub async fn connections(&self) -> Result<Vec<(String, String)>> {
        let out = self
            .tgtadm(&[
                "--lld", "iscsi", "--mode", "conn", "--op", "show", "--tid", TID,
            ])
            .await?;
        Ok(parse_connections(&out))
    }

    /// Remove (false) or restore (true) tgtd's listening portal (a nemesis
    /// action). Returns what the initiator's live connections did, for the
    /// history: tgtd only closes its listening socket.
    pub async fn set_portal(&mut self, present: bool) -> Result<String> {
        let op = if present { "new" } else { "delete" };
        let param = self.portal_param();
        self.tgtadm(&[
            "--lld", "iscsi", "--mode", "portal", "--op", op, "--param", &param,
        ])
        .await?;
        let conns = self.connections().await.map(|c| c.len()).unwrap_or(0);
        Ok(format!(
            "tgtadm portal {op} {}; {conns} connection(s) open",
            self.portal.addr
        ))
    }

    /// Revoke (false) or restore (true) the initiator's access (a nemesis
    /// action). tgt checks access only at login: an unbind leaves live
    /// connections alone, so revoking also closes them (`--mode conn --op
    /// delete`), as an administrator revoking access would. Returns what
    /// happened, for the history.
    pub async fn set_initiator_access(&mut self, allowed: bool) -> Result<String> {
        let allow = self.allow_arg();
        let op = if allowed { "bind" } else { "unbind" };
        self.on_target("target", op, &["--initiator-address", &allow])
            .await?;
        if allowed {
            return Ok(format!("tgtadm bind {allow}"));
        }
        let conns = self.connections().await?;
        for (sid, cid) in &conns {
            self.on_target("conn", "delete", &["--sid", sid, "--cid", cid])
                .await?;
        }
        Ok(format!(
            "tgtadm unbind {allow}: {} connection(s) still open after it, closed",
            conns.len()
        ))
    }

    /// Unconfigure, stop tgtd, delete the backing file. Idempotent.
    pub async fn teardown(&mut self) -> Result<()> {
        if self.child.is_some() {
            let lun = LUN.to_string();
            let allow = self.allow_arg();
            let steps: [(&str, &str, &[&str]); 3] = [
                ("target", "unbind", &["--initiator-address", &allow]),
                ("logicalunit", "delete", &["--lun", &lun]),
                ("target", "delete", &["--force"]),
            ];
            for (mode, op, rest) in steps {
                // Best effort: a LUN in use or a target with sessions may
                // refuse; stopping tgtd removes them anyway.
                if let Err(e) = self.on_target(mode, op, rest).await {
                    tracing::debug!(error = %e, "tgt teardown step");
                }
            }
        }
        self.stop_process(StopMode::Graceful(TEARDOWN_GRACE))
            .await?;
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            dir.close()
                .with_context(|| format!("remove {}", path.display()))?;
        }
        Ok(())
    }
}

/// `tgtadm --mode conn --op show` output → (session id, connection id).
pub fn parse_connections(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut sid = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Session:") {
            sid = Some(v.trim().to_string());
        } else if let (Some(v), Some(s)) = (line.strip_prefix("Connection:"), &sid) {
            out.push((s.clone(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_parsed() {
        let text = "Session: 3\n    Connection: 0\n        Initiator: iqn.x\n        IP Address: 10.1.2.1\nSession: 4\n    Connection: 1\n";
        assert_eq!(
            parse_connections(text),
            vec![("3".into(), "0".into()), ("4".into(), "1".into())]
        );
        assert!(parse_connections("").is_empty());
    }
}
