//! blkprobe: writes a stamped block and reads it back at a fixed cadence on
//! the iSCSI disk, reporting every operation, every stall past a threshold,
//! and finally whether every acknowledged write is still there.
//!
//! Exit status: 2 for bad arguments or a refused device, 0 otherwise (I/O
//! errors are what the probe measures, not failures of the probe).
//!
//! Its own binary (`src/bin/blkprobe.rs`), and also the `iscsi-chaos`
//! binary when started under the name `blkprobe` (argv[0]): the installed
//! harness carries its probe.

use std::io::Stdout;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;

use crate::blockdev::{AlignedBuf, BlockDev, Device, IoError};

/// Test hook: before the verify pass, damage blocks 1 and 2 through the
/// device as a misbehaving disk would (block 0's bytes written over block
/// 1, zeroes over block 2), so a lab test sees the verify pass classify
/// real bad blocks.
pub const PLANT_BAD_BLOCKS_ENV: &str = "ISCSI_CHAOS_TEST_PLANT_BAD_BLOCKS";

/// See [`PLANT_BAD_BLOCKS_ENV`]. Best effort: a failed I/O plants nothing.
fn plant_bad_blocks(dev: &Device, bs: usize) {
    let mut buf = AlignedBuf::new(bs);
    if dev.read_block(&mut buf, 0).is_ok() {
        let _ = dev.write_block(&buf, 1);
    }
    buf.fill(0);
    let _ = dev.write_block(&buf, 2);
}
use crate::emit::Emitter;
use crate::ledger::Ledger;
use crate::signals::{secs, signalled, verify_cut_short};
use crate::stamp::{Stamper, MIN_BLOCK_SIZE};
use crate::watchdog::{watch, InFlight};
use crate::{monotonic_now, OpKind, ProbeEvent};

/// Default cap on the blocks cycled through when --blocks is not given.
const MAX_DEFAULT_BLOCKS: u64 = 16384;
/// Upper bound for --blocks: the ledger keeps 16 bytes per block in memory.
const MAX_BLOCKS: u64 = 1 << 24;
/// Upper bound for --depth.
const MAX_DEPTH: u64 = 64;
/// Repeat period of Stalled reports for one operation.
const STALL_REPEAT: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(
    name = "blkprobe",
    about = "Write-then-read probe on an iSCSI disk; one JSON event per line on stdout"
)]
struct Args {
    /// Block device (or, for tests, a regular file) to probe. Its contents are overwritten.
    #[arg(long)]
    device: PathBuf,
    /// Period between write+read pairs, in milliseconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    interval_ms: u64,
    /// How long to issue I/O before the verify pass, in seconds (default: until SIGTERM/SIGINT).
    #[arg(long)]
    duration_s: Option<f64>,
    /// I/O size in bytes: a multiple of 512 (and of the device's logical sector size).
    #[arg(long, default_value_t = 4096)]
    block_size: usize,
    /// Number of blocks cycled through (default: device size / block size, at most 16384).
    #[arg(long)]
    blocks: Option<u64>,
    /// Writers at once, each on its own share of the blocks (block % N):
    /// up to N operations in flight (a queue depth of N).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_DEPTH))]
    depth: u64,
    /// Report an operation as stalled once it has been in flight this long.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    stall_threshold_ms: u64,
    /// Refuse the device unless its sysfs ancestry contains /<NAME>/ (e.g. session3).
    #[arg(long, value_name = "NAME")]
    expect_session: Option<String>,
    /// Total time the verify pass keeps retrying failed reads, in seconds,
    /// counted from the end of the I/O phase.
    #[arg(long, default_value_t = 30.0)]
    verify_deadline_s: f64,
    /// Stop retrying failed reads this many seconds after the Start event
    /// (the instant a harness counts its own deadline from), however late
    /// the I/O phase ended. Replaces --verify-deadline-s.
    #[arg(long, conflicts_with = "verify_deadline_s")]
    verify_until_s: Option<f64>,
    /// Wait this long after the Start event before the first I/O (a host
    /// taking a disk over); --duration-s counts from then.
    #[arg(long)]
    start_after_s: Option<f64>,
}

struct Probe {
    dev: Device,
    blocks: u64,
    depth: u64,
    interval: Duration,
    duration: Option<Duration>,
    stall_threshold: Duration,
    verify_deadline: VerifyDeadline,
    start_after: Duration,
}

/// Until when the verify pass retries failed reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum VerifyDeadline {
    /// This long after the I/O phase ended (standalone use).
    AfterIo(Duration),
    /// This long after the Start event: the harness's hung deadline counts
    /// from there too, however long a blocked operation held the I/O phase.
    AfterStart(Duration),
}

impl VerifyDeadline {
    fn retry_until(self, started: Instant, io_end: Instant) -> Instant {
        match self {
            VerifyDeadline::AfterIo(d) => io_end + d,
            VerifyDeadline::AfterStart(d) => started + d,
        }
    }
}

fn setup(args: &Args) -> Result<Probe> {
    let bs = args.block_size;
    if bs == 0 || bs % 512 != 0 || bs < MIN_BLOCK_SIZE {
        bail!("--block-size must be a positive multiple of 512, not {bs}");
    }
    let duration = args.duration_s.map(|d| secs("duration-s", d)).transpose()?;
    let verify_deadline = match args.verify_until_s {
        Some(s) => VerifyDeadline::AfterStart(secs("verify-until-s", s)?),
        None => VerifyDeadline::AfterIo(secs("verify-deadline-s", args.verify_deadline_s)?),
    };
    let start_after = match args.start_after_s {
        Some(s) => secs("start-after-s", s)?,
        None => Duration::ZERO,
    };
    let dev = Device::open(&args.device, bs, args.expect_session.as_deref())?;
    let fit = dev.size() / bs as u64;
    let blocks = match args.blocks {
        Some(n) if n == 0 || n > MAX_BLOCKS => {
            bail!("--blocks must be between 1 and {MAX_BLOCKS}, not {n}")
        }
        Some(n) if n > fit => bail!(
            "--blocks {n} of {bs} bytes do not fit in {} ({} bytes)",
            args.device.display(),
            dev.size()
        ),
        Some(n) => n,
        None if fit == 0 => bail!(
            "{} ({} bytes) is smaller than one block",
            args.device.display(),
            dev.size()
        ),
        None => fit.min(MAX_DEFAULT_BLOCKS),
    };
    if args.depth > blocks {
        bail!(
            "--depth {} needs at least as many blocks, not {blocks}",
            args.depth
        );
    }
    Ok(Probe {
        dev,
        blocks,
        depth: args.depth,
        interval: Duration::from_millis(args.interval_ms),
        duration,
        stall_threshold: Duration::from_millis(args.stall_threshold_ms),
        verify_deadline,
        start_after,
    })
}

/// Counts of the operations the probe loop issued.
#[derive(Default)]
struct OpCounts {
    ops: u64,
    errors: u64,
}

impl Probe {
    fn run(self, out: Arc<Emitter<Stdout>>) {
        let stamper = Stamper::random();
        let bs = self.dev.block_size();
        // Taken before the Start's stamp: the harness's t0 is not earlier.
        let started = Instant::now();
        out.emit(&ProbeEvent::Start {
            t: monotonic_now(),
            device: self.dev.path().display().to_string(),
            block_size: bs as u32,
            blocks: self.blocks,
            interval_ms: self.interval.as_millis() as u64,
        });
        // A later start: short naps, so a signal is noticed promptly.
        while started.elapsed() < self.start_after && !signalled() {
            std::thread::sleep(
                (self.start_after.saturating_sub(started.elapsed())).min(Duration::from_millis(50)),
            );
        }

        // One writer per share of the blocks, each with its watchdog.
        let ledger = std::sync::Mutex::new(Ledger::new(self.blocks));
        let next_seq = AtomicU64::new(0);
        let mut counts = OpCounts::default();
        std::thread::scope(|scope| {
            let mut writers = Vec::new();
            for w in 0..self.depth {
                let inflight = Arc::new(InFlight::new());
                let dog = {
                    let (state, out, threshold) =
                        (inflight.clone(), out.clone(), self.stall_threshold);
                    std::thread::Builder::new()
                        .name("watchdog".into())
                        .spawn(move || watch(&state, threshold, STALL_REPEAT, &out))
                        .expect("spawn watchdog")
                };
                let (stamper, ledger, next_seq, out) = (&stamper, &ledger, &next_seq, &out);
                let this = &self;
                writers.push(scope.spawn(move || {
                    let mut counts = OpCounts::default();
                    this.io_loop(w, stamper, ledger, next_seq, &inflight, out, &mut counts);
                    // The watchdog goes before the Summary, which must be
                    // the last line.
                    inflight.stop();
                    dog.thread().unpark();
                    let _ = dog.join();
                    counts
                }));
            }
            for w in writers {
                let c = w.join().expect("a writer panicked");
                counts.ops += c.ops;
                counts.errors += c.errors;
            }
        });
        let mut ledger = ledger.into_inner().expect("ledger");
        if std::env::var_os(PLANT_BAD_BLOCKS_ENV).is_some() {
            plant_bad_blocks(&self.dev, bs);
        }

        let retry_until = self.verify_deadline.retry_until(started, Instant::now());
        let verified = ledger.verify(
            &self.dev,
            &stamper,
            retry_until,
            &verify_cut_short,
            &mut |e| out.emit(e),
        );

        out.emit(&ProbeEvent::Summary {
            t: monotonic_now(),
            acked_writes: ledger.acked_writes(),
            lost_writes: ledger.lost(),
            corrupt_writes: ledger.corrupt(),
            unverified_writes: verified.unverified,
            ops: counts.ops,
            errors: counts.errors,
        });
    }

    /// Writer `w`'s loop over its blocks (`w`, `w + depth`, ...), each
    /// write with a seq from `next_seq` (so a block's seqs grow).
    #[allow(clippy::too_many_arguments)]
    fn io_loop(
        &self,
        w: u64,
        stamper: &Stamper,
        ledger: &std::sync::Mutex<Ledger>,
        next_seq: &AtomicU64,
        inflight: &InFlight,
        out: &Emitter<Stdout>,
        counts: &mut OpCounts,
    ) {
        let bs = self.dev.block_size();
        let mut wbuf = AlignedBuf::new(bs);
        let mut rbuf = AlignedBuf::new(bs);
        let t0 = Instant::now();
        let end = self.duration.map(|d| t0 + d);
        let mut next = t0;
        let mine: Vec<u64> = (w..self.blocks).step_by(self.depth as usize).collect();
        let mut turn = 0usize;
        let ledger = || ledger.lock().expect("ledger");

        // One timed operation: published to the watchdog, then reported.
        let mut op =
            |kind: OpKind, seq: u64, block: u64, io: &mut dyn FnMut() -> Result<(), IoError>| {
                let start = inflight.begin(kind, seq);
                let res = io();
                let t = monotonic_now();
                inflight.end();
                counts.ops += 1;
                counts.errors += u64::from(res.is_err());
                out.emit(&ProbeEvent::Op {
                    t,
                    start: start as f64 / 1e9,
                    op: kind,
                    seq,
                    block,
                    ok: res.is_ok(),
                    errno: res.err().and_then(|e| e.errno),
                });
                res.is_ok()
            };

        loop {
            if signalled() {
                return;
            }
            let now = Instant::now();
            if end.is_some_and(|end| now >= end) {
                return;
            }
            if now < next {
                // Short naps so a signal or the end is noticed promptly.
                let mut nap = (next - now).min(Duration::from_millis(50));
                if let Some(end) = end {
                    nap = nap.min(end - now);
                }
                std::thread::sleep(nap);
                continue;
            }

            let block = mine[turn % mine.len()];
            turn += 1;
            let seq = next_seq.fetch_add(1, SeqCst);
            // A block written before is read back before it is written
            // again: what it holds now must still be its last acknowledged
            // write (a write carried out late elsewhere, over it, shows
            // here: a lost update).
            let last = ledger().acked(block);
            if let Some(last) = last {
                let read = op(OpKind::Read, last, block, &mut || {
                    self.dev.read_block(&mut rbuf, block)
                });
                if read {
                    let bad = ledger().judge(stamper, block, &rbuf);
                    if let Some(ev) = bad {
                        out.emit(&ev);
                    }
                }
            }
            stamper.stamp(&mut wbuf, seq, block);
            let wrote = op(OpKind::Write, seq, block, &mut || {
                self.dev.write_block(&wbuf, block)
            });
            ledger().record_write(block, seq, wrote);
            let read = op(OpKind::Read, seq, block, &mut || {
                self.dev.read_block(&mut rbuf, block)
            });
            if read {
                let bad = ledger().judge(stamper, block, &rbuf);
                if let Some(ev) = bad {
                    out.emit(&ev);
                }
            }

            // Ticks that passed while an operation was blocked are skipped:
            // the next pair goes at the first tick not yet in the past.
            next += self.interval;
            let now = Instant::now();
            if now > next {
                let behind = (now - next).as_nanos() / self.interval.as_nanos();
                next += Duration::from_nanos(
                    ((behind + 1) * self.interval.as_nanos()).min(u64::MAX as u128) as u64,
                );
            }
        }
    }
}

/// The probe's whole life: parses argv (argv[0] aside), probes, exits.
pub fn main() -> ExitCode {
    // clap itself exits with status 2 on bad arguments.
    let args = Args::parse();
    crate::probe_life("blkprobe", || setup(&args), Probe::run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verify_deadline_counts_from_start_when_given_so() {
        let started = Instant::now();
        // An I/O phase of 60 s held 50 s longer by a blocked write.
        let io_end = started + Duration::from_secs(110);
        let until = VerifyDeadline::AfterStart(Duration::from_secs(90));
        assert_eq!(
            until.retry_until(started, io_end),
            started + Duration::from_secs(90)
        );
        let after_io = VerifyDeadline::AfterIo(Duration::from_secs(30));
        assert_eq!(
            after_io.retry_until(started, io_end),
            started + Duration::from_secs(140)
        );
    }

    #[test]
    fn verify_until_replaces_verify_deadline() {
        let args =
            Args::try_parse_from(["blkprobe", "--device", "x", "--verify-until-s", "90"]).unwrap();
        assert_eq!(args.verify_until_s, Some(90.0));
        assert!(Args::try_parse_from([
            "blkprobe",
            "--device",
            "x",
            "--verify-until-s",
            "90",
            "--verify-deadline-s",
            "30"
        ])
        .is_err());
    }
}
