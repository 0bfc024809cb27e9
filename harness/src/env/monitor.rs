//! Observers that feed the history besides the probes: the session's state
//! in sysfs, and the kernel's iSCSI/SCSI log lines from /dev/kmsg.
//!
//! Each runs on its own thread until stopped and hands back its entries.
//! Kernel lines carry the kernel's own timestamp (printk's clock, which is
//! CLOCK_MONOTONIC on the machines we run on, not wall time).

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
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
                let state = std::fs::read_to_string(session_sysfs.join("state"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "GONE".to_string());
                if seen.as_deref() != Some(state.as_str()) {
                    out.push((
                        monotonic_now(),
                        Event::Session {
                            state: state.clone(),
                        },
                    ));
                    seen = Some(state);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            out
        })
    }

    /// Follows /dev/kmsg from now on, keeping iSCSI and SCSI lines.
    pub fn kernel_log() -> Monitor {
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
                drain_kmsg(&mut kmsg, &mut buf, &mut out);
                std::thread::sleep(Duration::from_millis(50));
            }
            drain_kmsg(&mut kmsg, &mut buf, &mut out);
            out
        })
    }
}

fn drain_kmsg(kmsg: &mut File, buf: &mut [u8], out: &mut Vec<(f64, Event)>) {
    loop {
        // Each read returns one record; EAGAIN: none left; EPIPE: overrun.
        match kmsg.read(buf) {
            Ok(0) => return,
            Ok(n) => {
                if let Some((t, line)) = parse_kmsg_record(&String::from_utf8_lossy(&buf[..n])) {
                    if is_storage_line(&line) {
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
}
