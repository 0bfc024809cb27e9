//! What a run of scenarios holds on this host while it runs (`run` and
//! `budget` alike): its entry in the live-run registry, the shared iscsid,
//! the signal handler, and the [`RunContext`] its runs get. [`Host::open`]
//! takes them in order (the output folder, the host check, the leftovers of
//! crashed runs, the registry, iscsid); [`Host::close`] gives them back and
//! sweeps the run's ledger.

use std::path::{Path, PathBuf};

use iscsi_chaos_formats::exit;

use super::{cleanup, doctor, RunContext};
use crate::ledger::host::IscsidUse;
use crate::ledger::registry::LiveRun;
use crate::report::out::OutDir;

const INPUT_ERROR: u8 = exit::INPUT_ERROR as u8;
const INTERRUPTED: u8 = exit::INTERRUPTED as u8;
const TERMINATED: u8 = exit::TERMINATED as u8;

/// What a run of scenarios holds on this host while it runs: its registry
/// entry, the shared iscsid, the signal handler, and the context runs get.
pub struct Host {
    pub ctx: RunContext,
    iscsid: IscsidUse,
    live: LiveRun,
    signal: tokio::task::JoinHandle<u8>,
}

impl Host {
    /// Prepares the output folder `out`, checks the host, removes what
    /// crashed runs left, registers the run and takes iscsid; `Err(status)`
    /// when it cannot (said on stderr).
    pub async fn open(out: &Path) -> Result<Host, u8> {
        let out_dir = match OutDir::prepare(out) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("iscsi-chaos: {e}");
                return Err(INPUT_ERROR);
            }
        };
        if let Some(problem) = doctor::first_problem() {
            eprintln!("iscsi-chaos: this host cannot run scenarios: {problem}");
            eprintln!("iscsi-chaos: run `iscsi-chaos doctor` for the whole list, or `iscsi-chaos run --lab ...` to use the lab VM");
            return Err(1);
        }
        let removed = cleanup::stale().await;
        if !removed.is_empty() {
            eprintln!(
                "iscsi-chaos: removed leftovers of earlier runs: {}",
                removed.join(", ")
            );
        }

        let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
        let signal = tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let code = tokio::select! {
                _ = int.recv() => INTERRUPTED,
                _ = term.recv() => TERMINATED,
            };
            eprintln!("iscsi-chaos: interrupted: tearing down (interrupt again to exit at once)");
            let _ = cancel_tx.send(true);
            // A second signal ends the process at once; what the teardown had
            // not removed yet stays in the ledger for `iscsi-chaos cleanup`.
            tokio::spawn(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                eprintln!(
                    "iscsi-chaos: interrupted again: exiting now; run `iscsi-chaos cleanup` to remove what is left"
                );
                std::process::exit(code.into());
            });
            code
        });

        let run_id = new_run_id();
        crate::sys::cmd::set_marker(&run_id);
        // Registered before anything is created: a later run can tell our
        // objects from a crashed run's.
        let live = match LiveRun::register(&run_id) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("iscsi-chaos: cannot register the run: {e}");
                return Err(1);
            }
        };
        doctor::load_modules();
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("iscsi-chaos"));
        let ctx = RunContext {
            run_id,
            out: out_dir,
            probe_binary: super::probe_binary_beside(&exe),
            cancel,
            phases: None,
        };
        // Shared with every other run on the host; the last user stops an
        // iscsid a run started.
        let iscsid = match IscsidUse::take().await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("iscsi-chaos: {e:#}");
                return Err(1);
            }
        };
        Ok(Host {
            ctx,
            iscsid,
            live,
            signal,
        })
    }

    /// Gives iscsid back and unwinds the run's ledger; the exit status of a
    /// signal that interrupted the run, if one did.
    pub async fn close(self) -> Option<u8> {
        self.iscsid.release().await;
        // The whole run's ledger: anything of any run still there goes now.
        let removal = self.live.ledger().unwind().await;
        for r in &removal.removed {
            eprintln!("iscsi-chaos: {r} was still there at the end; removed");
        }
        for f in &removal.failed {
            eprintln!("iscsi-chaos: could not remove {f}");
        }
        drop(self.live);
        if self.signal.is_finished() {
            return Some(self.signal.await.unwrap_or(INTERRUPTED));
        }
        self.signal.abort();
        None
    }
}

/// A new run id: the time, and 32 random bits beside it.
fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // 32 random bits beside the time: two runs started in the same second
    // (a CI matrix, a sweep) do not share an id.
    let mut random = [0u8; 4];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random));
    let random = match got {
        Ok(()) => u32::from_le_bytes(random),
        Err(_) => std::process::id().rotate_left(16) ^ (secs as u32),
    };
    format!("r{:x}{random:08x}", secs & 0xffffff)
}
