//! Leftovers of crashed or killed runs, and the registry of live runs that
//! tells them apart from runs still going.
//!
//! A run registers `/run/iscsi-chaos/runs/<run id>/pid` (its pid and start
//! time) before it creates anything, and writes every object down in the
//! ledger beside it (`ledger.jsonl`, see [`crate::ledger`]) before making
//! it. A run is stale when its process is gone: `cleanup` (and every `run`,
//! at its start) walks a stale run's ledger newest first and removes what is
//! left. A scan by marker (the `iscsi-chaos-` namespace prefix, our veth
//! names, our IQN prefix, our temporary-folder prefix) follows as a fallback
//! for objects of runs whose ledger is lost (a reboot empties /run, but not
//! /etc/iscsi/nodes or /tmp). Nothing without our marker is ever touched.

use crate::ledger::registry;
use crate::ledger::{Ledger, Removal};
use crate::model::names::{run_of_iqn, run_of_netns, IQN_PREFIX};
use crate::sys::iscsi::logout_session;
use crate::sys::link as topology;
use crate::sys::netns::NetNs;

/// Walks the ledger of run `run_id` newest first, removing what is left;
/// its registry folder goes once nothing is pending. The caller answers for
/// the run being dead: it claimed it ([`registry::claim_dead`]), or it is
/// a test's own run that never registered.
pub async fn remove_run(run_id: &str) -> Removal {
    let dir = registry::run_dir(run_id);
    if !dir.is_dir() {
        // An older version's pid file: the scan by marker does the work.
        let _ = std::fs::remove_file(&dir);
        return Removal::default();
    }
    let ledger = Ledger::of_run(run_id);
    let removal = ledger.unwind().await;
    if ledger.pending().is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    removal
}

/// Whether the objects of run `run` may be removed now: it is not live
/// (asked again right before each removal; a run that registers later has
/// made nothing yet that an earlier listing could hold).
fn is_stale(run: &str) -> bool {
    !registry::is_live(run)
}

/// Walks dead run `run`'s ledger; what it removed and could not, described
/// into `removed` (`pass` names a second walk).
async fn unwind_claimed(run: &str, pass: &str, removed: &mut Vec<String>) {
    let removal = remove_run(run).await;
    removed.extend(
        removal
            .removed
            .into_iter()
            .map(|r| format!("{r} (ledger of run {run}{pass})")),
    );
    removed.extend(
        removal
            .failed
            .into_iter()
            .map(|f| format!("(could not remove {f})")),
    );
}

/// Removes every stale object; returns a description of each.
pub async fn stale() -> Vec<String> {
    let claims = registry::claim_dead();
    let mut removed = Vec::new();
    for claim in &claims {
        unwind_claimed(&claim.run_id, "", &mut removed).await;
    }
    drop(claims);

    // The scan by marker, for objects no ledger knows.

    // Faults first: a session can only log out cleanly once its target is
    // reachable again (iscsid refuses to log out a session that is not
    // connected).
    let ours: Vec<(String, String)> = sessions()
        .into_iter()
        .filter(|(_, iqn)| run_of_iqn(iqn).is_some_and(is_stale))
        .collect();
    removed.extend(clear_stale_qdiscs());
    // Logging out needs iscsid; a killed run's iscsid may be gone.
    let mut iscsid = None;
    if !ours.is_empty() {
        iscsid = crate::ledger::host::IscsidUse::take().await.ok();
    }
    for (session, iqn) in ours {
        if !run_of_iqn(&iqn).is_some_and(is_stale) {
            continue;
        }
        removed.push(match logout_session(&session).await {
            Ok(()) => format!("session {session} ({iqn})"),
            Err(why) => format!("(could not log out session {session}: {why})"),
        });
        crate::sys::blocking::blocking(|| kill_orphan_probes(&format!("session{session}")));
    }
    for (portal, iqn) in node_records().await {
        if run_of_iqn(&iqn).is_some_and(is_stale) {
            let _ = crate::sys::iscsi::delete_node_record(&iqn, &portal).await;
            removed.push(format!("node record {iqn}"));
        }
    }
    if let Some(iscsid) = iscsid {
        iscsid.release().await;
    }
    // A dead run whose ledger still held something (a node record iscsid
    // kept busy while it let a session in recovery go) stays registered:
    // its ledger is walked once more now that the scan above has logged
    // its sessions out and removed their records, and unregistered if
    // nothing is left.
    for claim in registry::claim_dead() {
        unwind_claimed(&claim.run_id, ", second pass", &mut removed).await;
    }
    // LIO configfs objects: before the namespaces, as a portal's listening
    // socket may keep a deleted lane namespace alive.
    removed.extend(crate::env::target::lio::remove_leftovers(&is_stale));
    // Namespaces (with their veths and target processes), run by run.
    let mut runs: Vec<String> = NetNs::list_ours()
        .iter()
        .filter_map(|ns| run_of_netns(ns))
        .map(str::to_string)
        .collect();
    runs.sort();
    runs.dedup();
    for run in runs {
        if !is_stale(&run) {
            continue;
        }
        match topology::cleanup_run(&run).await {
            Ok(r) => {
                removed.extend(r.netns.into_iter().map(|n| format!("namespace {n}")));
                removed.extend(r.veths.into_iter().map(|v| format!("veth {v}")));
            }
            Err(e) => removed.push(format!("(cleanup of run {run}'s lanes failed: {e:#})")),
        }
    }
    // Veths whose namespace is already gone: their names carry the run's
    // hash only, so they go when no run at all is live (under the host lock,
    // so none registers meanwhile).
    if let Ok(_host) = crate::ledger::host::HostLock::take() {
        if registry::no_run_is_live() {
            match topology::cleanup_all_runs().await {
                Ok(r) => {
                    removed.extend(r.netns.into_iter().map(|n| format!("namespace {n}")));
                    removed.extend(r.veths.into_iter().map(|v| format!("veth {v}")));
                }
                Err(e) => removed.push(format!("(cleanup of lanes failed: {e:#})")),
            }
            // Iface records of further hosts: their names carry the run's
            // hash only, as veths do; none may be in use by now (their
            // node records went above).
            for name in crate::sys::iscsi::our_ifaces() {
                match crate::sys::iscsi::delete_iface(&name).await {
                    Ok(()) => removed.push(format!("iface record {name}")),
                    Err(e) => {
                        removed.push(format!("(could not delete iface record {name}: {e:#})"))
                    }
                }
            }
        }
    }
    // Slow stores (dm-delay, then its loop device): after the targets that
    // held them (LIO above, tgtd with its namespace), before their folders.
    removed.extend(crate::env::target::slow_store::remove_leftovers(
        std::path::Path::new(crate::ledger::host::WORK),
        &is_stale,
    ));
    // Work folders need no scan: they live in /run beside the ledgers that
    // list them (a reboot empties both), so a folder there that no ledger
    // lists was not made by us and is left alone.
    crate::ledger::host::stop_unused_iscsid().await;
    removed
}

/// Removes the root qdiscs of stale runs: on our veth ends in the root
/// namespace, and on every link of our stale namespaces.
fn clear_stale_qdiscs() -> Vec<String> {
    use crate::sys::tc::RouteSocket;
    let mut removed = Vec::new();
    let ours =
        |q: &crate::wire::tc::QdiscStats| crate::sys::tc::OUR_KINDS.contains(&q.kind.as_str());
    if let Ok(mut socket) = RouteSocket::open() {
        // Listed before the live runs: a qdisc in this list belongs to a
        // run registered before the listing below.
        let qdiscs = socket.dump_qdiscs().unwrap_or_default();
        let live_veths: Vec<String> = registry::live_runs()
            .iter()
            .map(|r| crate::model::names::veth_prefix_for_run(r))
            .collect();
        for q in qdiscs.iter().filter(|q| ours(q)) {
            let name = ifname(q.ifindex);
            let stale = crate::model::names::is_our_veth_name(&name)
                && !live_veths.iter().any(|p| name.starts_with(p));
            if stale && socket.delete_root_qdisc(q.ifindex).is_ok() {
                removed.push(format!("qdisc on {name}"));
            }
        }
    }
    for ns in NetNs::list_ours() {
        let Some(run) = run_of_netns(&ns) else {
            continue;
        };
        if !is_stale(run) {
            continue;
        }
        let Ok(handle) = NetNs::open(&ns) else {
            continue;
        };
        let cleared = handle.run_in(|| -> Vec<i32> {
            let Ok(mut socket) = RouteSocket::open() else {
                return Vec::new();
            };
            let qdiscs = socket.dump_qdiscs().unwrap_or_default();
            qdiscs
                .iter()
                .filter(|q| ours(q))
                .filter(|q| socket.delete_root_qdisc(q.ifindex).is_ok())
                .map(|q| q.ifindex)
                .collect()
        });
        for ifindex in cleared.unwrap_or_default() {
            removed.push(format!("qdisc on ifindex {ifindex} in {ns}"));
        }
    }
    removed
}

/// The name of a link of the root namespace.
fn ifname(ifindex: i32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex as u32, buf.as_mut_ptr()) };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Logs a session out, retrying while a freshly started iscsid adopts the
/// kernel's sessions (asynchronously at its start) and while the session
/// reconnects after its fault was cleared (iscsid refuses to log out a
/// session that is not connected).
/// A killed harness's probe is SIGKILLed with it (PR_SET_PDEATHSIG) but
/// lingers while its I/O is blocked; once the session is gone it exits. Wait
/// for it (and make sure) so cleanup ends with no process of ours.
fn kill_orphan_probes(session_name: &str) {
    let probes = || -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let arg0 = args.first()?;
                let is_probe = guest_probes::PROBES
                    .iter()
                    .any(|p| arg0.ends_with(p.as_bytes()));
                let ours = args
                    .windows(2)
                    .any(|w| w[0] == b"--expect-session" && w[1] == session_name.as_bytes());
                let marked = crate::sys::cmd::carries_marker(pid);
                (is_probe && ours && marked).then_some(pid)
            })
            .collect()
    };
    for pid in probes() {
        // SAFETY: kill(2) on a process carrying our marker.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for _ in 0..100 {
        if probes().is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// (session id, target IQN) of our sessions, from sysfs.
fn sessions() -> Vec<(String, String)> {
    crate::env::initiator::sessions()
        .into_iter()
        .filter(|(_, iqn)| iqn.starts_with(IQN_PREFIX))
        .filter_map(|(dir, iqn)| Some((crate::env::initiator::session_id_of(&dir)?, iqn)))
        .collect()
}

/// (portal, IQN) of our node records, from `iscsiadm -m node`.
async fn node_records() -> Vec<(String, String)> {
    let Ok(out) = crate::sys::iscsi::run_iscsiadm(&["-m", "node"]).await else {
        return Vec::new();
    };
    parse_node_list(&String::from_utf8_lossy(&out.stdout))
}

/// Lines of `iscsiadm -m node`: `10.213.0.2:3260,1 iqn...`.
pub fn parse_node_list(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (portal, iqn) = line.trim().split_once(' ')?;
            let portal = portal.split(',').next()?.to_string();
            iqn.starts_with(IQN_PREFIX)
                .then(|| (portal, iqn.trim().to_string()))
        })
        .collect()
}

pub async fn command() -> u8 {
    let removed = stale().await;
    if removed.is_empty() {
        println!("nothing to clean up");
    } else {
        for r in &removed {
            println!("removed {r}");
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_node_records_are_listed() {
        let text = "10.213.0.2:3260,1 iqn.2026-11.io.iscsi-chaos:r1a2b-0\n\
                    192.168.1.5:3260,1 iqn.2001-04.com.example:storage\n";
        assert_eq!(
            parse_node_list(text),
            vec![(
                "10.213.0.2:3260".to_string(),
                "iqn.2026-11.io.iscsi-chaos:r1a2b-0".to_string()
            )]
        );
    }
}
