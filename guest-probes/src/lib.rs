//! Probes that do I/O on the iSCSI disk beside the initiator, and the one
//! format they speak: a JSON line per [`ProbeEvent`] on stdout.
//!
//! The harness depends on this crate for the event types, so the wire format
//! has a single definition. Every timestamp is CLOCK_MONOTONIC in seconds, the
//! same clock the harness stamps fault steps and kernel log lines with.

pub mod blkprobe;
pub mod blockdev;
pub mod child;
pub mod cmdprobe;
pub mod emit;
pub mod fioprobe;
pub mod fsprobe;
pub mod ledger;
pub mod signals;
pub mod stamp;
pub mod watchdog;
pub mod workload;

pub use iscsi_chaos_formats::probe::{BlockProblem, FsMount, OpKind, ProbeEvent, Recovery};

/// The probes' program names: a binary started under one of them (argv[0])
/// is that probe.
pub const PROBES: [&str; 4] = ["blkprobe", "fsprobe", "cmdprobe", "fioprobe"];

/// Runs the probe `arg0` names (its file name), if it names one.
pub fn main_as(arg0: &std::ffi::OsStr) -> Option<std::process::ExitCode> {
    match std::path::Path::new(arg0).file_name()?.to_str()? {
        "blkprobe" => Some(blkprobe::main()),
        "fsprobe" => Some(fsprobe::main()),
        "cmdprobe" => Some(cmdprobe::main()),
        "fioprobe" => Some(fioprobe::main()),
        _ => None,
    }
}

/// A probe's life after its arguments are parsed: the signal handlers and
/// `setup` (a failure is exit status 2, its reason on stderr: a refused
/// device, a filesystem that could not be made), then `run` with the one
/// event writer on stdout, and exit status 0 (I/O errors are what a probe
/// measures, not its failures).
pub fn probe_life<P>(
    name: &str,
    setup: impl FnOnce() -> anyhow::Result<P>,
    run: impl FnOnce(P, std::sync::Arc<emit::Emitter<std::io::Stdout>>),
) -> std::process::ExitCode {
    match signals::install_signal_handlers().and_then(|()| setup()) {
        Ok(p) => {
            run(
                p,
                std::sync::Arc::new(emit::Emitter::new(std::io::stdout())),
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// CLOCK_MONOTONIC now, in seconds: the clock of every history.
pub fn monotonic_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in seconds: what turns a
/// wall-clock stamp (a packet's, fio's log's) into this clock. Read as the
/// tightest of several monotonic-realtime-monotonic samples, so a
/// preemption between two reads (a loaded host, a TCG guest) cannot skew
/// it by more than the tightest sample's width.
pub fn realtime_offset() -> f64 {
    let realtime = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let mut best = (f64::INFINITY, 0.0);
    for _ in 0..16 {
        let before = monotonic_now();
        let real = realtime();
        let after = monotonic_now();
        if after - before < best.0 {
            best = (after - before, real - (before + after) / 2.0);
        }
    }
    best.1
}

/// CLOCK_MONOTONIC now, in nanoseconds (for atomics shared between threads).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_realtime_offset_maps_the_wall_clock_onto_the_monotonic_one() {
        let offset = realtime_offset();
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((real - offset - monotonic_now()).abs() < 0.01);
    }

    #[test]
    fn event_lines_round_trip_with_tag() {
        let ev = ProbeEvent::Op {
            t: 2.5,
            start: 2.0,
            op: OpKind::Write,
            seq: 7,
            block: 7,
            ok: false,
            errno: Some(5),
        };
        let line = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            line,
            r#"{"ev":"op","t":2.5,"start":2.0,"op":"write","seq":7,"block":7,"ok":false,"errno":5}"#
        );
        assert_eq!(serde_json::from_str::<ProbeEvent>(&line).unwrap(), ev);
    }
}
