//! Observers that feed the history besides the probes: the session's state
//! in sysfs, and the kernel's iSCSI/SCSI log lines from /dev/kmsg.
//!
//! Each runs on its own thread until stopped and hands back its entries.
//! Kernel lines carry the kernel's own timestamp: printk's clock
//! (`local_clock()`, the scheduler clock since boot), not CLOCK_MONOTONIC.
//! The two run at the same rate from near the same origin but are not the
//! same clock: they drift apart by the time spent suspended and by the
//! scheduler clock's own error, so a kernel tick and a probe operation
//! closer than a few milliseconds are not ordered reliably.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use guest_probes::monotonic_now;

use crate::history::Event;

pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<(f64, Event)>>>,
}

impl Monitor {
    /// Stops the observer and returns what it saw.
    pub fn finish(mut self) -> Vec<(f64, Event)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }

    fn spawn(body: impl FnOnce(Arc<AtomicBool>) -> Vec<(f64, Event)> + Send + 'static) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Monitor {
            stop,
            thread: Some(std::thread::spawn(move || body(flag))),
        }
    }

    /// Polls `<session>/state` every 20 ms and records each change.
    pub fn session_state(session_sysfs: PathBuf) -> Monitor {
        Monitor::spawn(move |stop| {
            let mut seen: Option<String> = None;
            let mut out = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Some(state) = state_change(&session_sysfs, &mut seen) {
                    out.push((monotonic_now(), Event::Session { state }));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            out
        })
    }

    /// The paths of a multipath lane: each path's session state (every
    /// 20 ms) and, every 200 ms, its state in map `map` (`dmsetup status`;
    /// paths are matched by their disk's `major:minor`). Records each
    /// change as [`Event::Path`].
    pub fn paths(sessions: Vec<(u8, PathBuf, String)>, map: String) -> Monitor {
        Monitor::spawn(move |stop| {
            let mut out = Vec::new();
            let mut seen_session: Vec<Option<String>> = vec![None; sessions.len()];
            let mut seen_dm: Vec<Option<String>> = vec![None; sessions.len()];
            let mut tick = 0u32;
            while !stop.load(Ordering::SeqCst) {
                for (k, (path, sysfs, _)) in sessions.iter().enumerate() {
                    if let Some(state) = state_change(sysfs, &mut seen_session[k]) {
                        out.push((
                            monotonic_now(),
                            Event::Path {
                                path: *path,
                                session: Some(state),
                                dm: None,
                            },
                        ));
                    }
                }
                if tick.is_multiple_of(10) {
                    let status = crate::sys::dm::tool_blocking("dmsetup", &["status", &map])
                        .ok()
                        .and_then(|t| crate::model::multipath::parse_map_status(t.lines().next()?));
                    for p in status.map(|s| s.paths).unwrap_or_default() {
                        let Some(k) = sessions.iter().position(|(_, _, dev)| *dev == p.device)
                        else {
                            continue;
                        };
                        let state = if p.active { "active" } else { "failed" };
                        if seen_dm[k].as_deref() != Some(state) {
                            out.push((
                                monotonic_now(),
                                Event::Path {
                                    path: sessions[k].0,
                                    session: None,
                                    dm: Some(state.to_string()),
                                },
                            ));
                            seen_dm[k] = Some(state.to_string());
                        }
                    }
                }
                tick = tick.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(20));
            }
            out
        })
    }

    /// Follows /dev/kmsg from now on, keeping iSCSI and SCSI lines that are
    /// not another lane's (see [`Ours::claims`]; a lane of several paths
    /// has one `Ours` per session, and a line any of them claims is kept).
    pub fn kernel_log(ours: Vec<Ours>) -> Monitor {
        Monitor::spawn(move |stop| {
            let mut out = Vec::new();
            let Ok(mut kmsg) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open("/dev/kmsg")
            else {
                return out;
            };
            let _ = kmsg.seek(SeekFrom::End(0));
            let mut buf = vec![0u8; 8192];
            while !stop.load(Ordering::SeqCst) {
                drain_kmsg(&mut kmsg, &mut buf, &ours, &mut out);
                std::thread::sleep(Duration::from_millis(50));
            }
            drain_kmsg(&mut kmsg, &mut buf, &ours, &mut out);
            out
        })
    }
}

/// A session's state in sysfs (`<session>/state`, `GONE` once the folder
/// is), if it is not the one `seen` last; `seen` becomes it.
fn state_change(session_sysfs: &Path, seen: &mut Option<String>) -> Option<String> {
    let state = std::fs::read_to_string(session_sysfs.join("state"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "GONE".to_string());
    if seen.as_deref() == Some(state.as_str()) {
        return None;
    }
    *seen = Some(state.clone());
    Some(state)
}

fn drain_kmsg(kmsg: &mut File, buf: &mut [u8], ours: &[Ours], out: &mut Vec<(f64, Event)>) {
    loop {
        // Each read returns one record; EAGAIN: none left; EPIPE: overrun.
        match kmsg.read(buf) {
            Ok(0) => return,
            Ok(n) => {
                if let Some((t, line)) = parse_kmsg_record(&String::from_utf8_lossy(&buf[..n])) {
                    if is_storage_line(&line) && ours.iter().any(|o| o.claims(&line)) {
                        out.push((t, Event::Kernel { line }));
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => return,
        }
    }
}

/// What names one run's session in kernel lines: the session and SCSI
/// host numbers, the disk, the target's address and IQN. With lanes side
/// by side every run reads every line; it keeps those that name it, and
/// those that name no session at all (module messages), and drops the ones
/// that name another's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ours {
    /// `N` of `sessionN` and of `connectionN:0`.
    pub session: Option<u32>,
    /// `H` of `scsi hostH` and of `sd H:0:0:L`.
    pub host: Option<u32>,
    /// `sdb` of `[sdb]` and `dev sdb`.
    pub disk: Option<String>,
    pub target_addr: Option<String>,
    pub iqn: Option<String>,
    /// The run's device-mapper devices (`dm-3`: its multipath map): once
    /// `disk` is known, a line naming any other block device (`dev dm-0`
    /// of another run's map, `dev vda`, a loop device) is not ours.
    pub maps: Vec<String>,
}

/// The numbers right after each `prefix` in `line` (`connection12:0` → 12).
fn numbers_after<'a>(line: &'a str, prefix: &'a str) -> impl Iterator<Item = u32> + 'a {
    line.match_indices(prefix).filter_map(move |(i, _)| {
        let rest = &line[i + prefix.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// Block device names after `dev ` in `line` (`dev dm-0,` → `dm-0`).
fn devices(line: &str) -> impl Iterator<Item = &str> {
    line.match_indices("dev ").filter_map(move |(i, _)| {
        let rest = &line[i + 4..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        name.starts_with(|c: char| c.is_ascii_lowercase())
            .then_some(name)
    })
}

/// Disk names in `line`: `[sdX]`, `dev sdX`.
fn disks(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in ["[sd", "dev sd"] {
        for (i, _) in line.match_indices(prefix) {
            let rest = &line[i + prefix.len()..];
            let letters: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            if !letters.is_empty() {
                found.push(format!("sd{letters}"));
            }
        }
    }
    found
}

impl Ours {
    /// Whether `line` is this run's to keep: it names nothing of any
    /// session, or everything it names is ours.
    pub fn claims(&self, line: &str) -> bool {
        let sessions = numbers_after(line, "session").chain(numbers_after(line, "connection"));
        let hosts = numbers_after(line, "scsi host")
            .chain(numbers_after(line, "sd "))
            .chain(numbers_after(line, "scsi "));
        let mismatch = |mine: Option<u32>, theirs: Vec<u32>| {
            theirs.into_iter().any(|n| mine.is_some_and(|m| m != n))
        };
        if mismatch(self.session, sessions.collect()) || mismatch(self.host, hosts.collect()) {
            return false;
        }
        if let Some(disk) = &self.disk {
            if disks(line).iter().any(|d| d != disk) {
                return false;
            }
            if devices(line).any(|d| d != disk && !self.maps.iter().any(|m| m == d)) {
                return false;
            }
        }
        if let Some(addr) = &self.target_addr {
            // Both ends of a lane are in its /24: compare the subnets.
            let subnet = |a: &str| a.rsplit_once('.').map(|(net, _)| net.to_string());
            let ours = subnet(addr);
            let lane_net = format!("10.{}.", crate::model::names::SUBNET_OCTET);
            let other_addr = line.match_indices(&lane_net).any(|(i, _)| {
                let tail: String = line[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                subnet(tail.trim_end_matches('.')) != ours
            });
            if other_addr {
                return false;
            }
        }
        if let Some(iqn) = &self.iqn {
            let prefix = crate::model::names::IQN_PREFIX;
            let other_iqn = line.match_indices(prefix).any(|(i, _)| {
                let name: String = line[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                iqn.strip_prefix(prefix) != Some(name.as_str())
            });
            if other_iqn {
                return false;
            }
        }
        true
    }
}

/// `prio,seq,usec,flags[,...];message\n[continuation lines]`
pub fn parse_kmsg_record(record: &str) -> Option<(f64, String)> {
    let (header, rest) = record.split_once(';')?;
    let usec: u64 = header.split(',').nth(2)?.parse().ok()?;
    let message = rest.lines().next().unwrap_or("").to_string();
    Some((usec as f64 / 1e6, message))
}

/// Lines that explain what happened to the session or its disk.
pub fn is_storage_line(line: &str) -> bool {
    const WORDS: &[&str] = &[
        "iscsi",
        "connection",
        "session",
        "scsi",
        "sd ",
        "I/O error",
        "rejecting I/O",
        "blk_update_request",
        "TARGET_CORE",
        "iSCSI",
    ];
    WORDS.iter().any(|w| line.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_state_is_reported_once_per_change_and_gone_with_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let session = dir.path().join("session1");
        std::fs::create_dir(&session).unwrap();
        std::fs::write(session.join("state"), "LOGGED_IN\n").unwrap();
        let mut seen = None;
        assert_eq!(
            state_change(&session, &mut seen).as_deref(),
            Some("LOGGED_IN")
        );
        assert_eq!(state_change(&session, &mut seen), None);
        std::fs::write(session.join("state"), "FAILED\n").unwrap();
        assert_eq!(state_change(&session, &mut seen).as_deref(), Some("FAILED"));
        std::fs::remove_dir_all(&session).unwrap();
        assert_eq!(state_change(&session, &mut seen).as_deref(), Some("GONE"));
        assert_eq!(state_change(&session, &mut seen), None);
    }

    #[test]
    fn kmsg_records_give_time_and_message() {
        let (t, line) = parse_kmsg_record(
            "3,1234,8981234,-;  connection1:0: detected conn error (1022)\n SUBSYSTEM=iscsi\n",
        )
        .unwrap();
        assert_eq!(t, 8.981234);
        assert_eq!(line, "  connection1:0: detected conn error (1022)");
        assert!(is_storage_line(&line));
        assert!(!is_storage_line("usb 1-1: new high-speed USB device"));
        assert_eq!(parse_kmsg_record("garbage"), None);
    }

    #[test]
    fn each_lane_keeps_its_own_kernel_lines_and_drops_the_others() {
        let ours = Ours {
            session: Some(3),
            host: Some(4),
            disk: Some("sdc".into()),
            target_addr: Some("10.213.1.2".into()),
            iqn: Some("iqn.2026-11.io.iscsi-chaos:r1a-1".into()),
            maps: vec!["dm-3".into()],
        };
        for mine in [
            "I/O error, dev dm-3, sector 2048 op 0x1:(WRITE) flags 0x8800",
            " connection3:0: detected conn error (1022)",
            " session3: session recovery timed out after 5 secs",
            "sd 4:0:0:1: [sdc] tag#12 FAILED Result: hostbyte=DID_TRANSPORT_FAILFAST",
            "I/O error, dev sdc, sector 2048 op 0x1:(WRITE) flags 0x8800",
            "scsi host4: iSCSI Initiator over TCP/IP",
            "iSCSI Login timeout on Network Portal 10.213.1.2:3260",
            "Received iSCSI login request from 10.213.1.1 on iSCSI/TCP Network Portal 10.213.1.2:3260",
            "Unable to locate Target IQN: iqn.2026-11.io.iscsi-chaos:r1a-1 in Storage Node",
            "Loading iSCSI transport class v2.0-870.",
        ] {
            assert!(ours.claims(mine), "{mine}");
        }
        for theirs in [
            " connection13:0: detected conn error (1022)",
            " session30: session recovery timed out after 5 secs",
            "sd 5:0:0:1: [sdd] tag#12 FAILED Result: hostbyte=DID_TRANSPORT_FAILFAST",
            "I/O error, dev sdd, sector 2048 op 0x1:(WRITE) flags 0x8800",
            "scsi host40: iSCSI Initiator over TCP/IP",
            "iSCSI Login timeout on Network Portal 10.213.12.2:3260",
            "Received iSCSI login request from 10.213.12.1 on iSCSI/TCP Network Portal 10.213.12.2:3260",
            "Unable to locate Target IQN: iqn.2026-11.io.iscsi-chaos:r1a-10 in Storage Node",
            "Unable to locate Target IQN: iqn.2026-11.io.iscsi-chaos:r2b-1 in Storage Node",
            // Another run's multipath map, the lab's root disk, a loop device.
            "I/O error, dev dm-0, sector 2048 op 0x1:(WRITE) flags 0x8800",
            "blk_update_request: I/O error, dev vda, sector 8",
            "I/O error, dev loop4, sector 0 op 0x0:(READ) flags 0x80700",
        ] {
            assert!(!ours.claims(theirs), "{theirs}");
        }
        // Nothing known yet (before login): every line is kept.
        assert!(Ours::default().claims(" connection13:0: detected conn error (1022)"));
    }
}
