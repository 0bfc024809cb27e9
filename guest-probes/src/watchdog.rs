//! The stall watchdog: a thread that reports an operation blocked in the
//! kernel past a threshold, once at the threshold and then periodically.
//!
//! The I/O thread publishes the operation in flight through atomics; the
//! watchdog never sleeps longer than the threshold, so it sees every
//! operation that lasts that long in time without being woken per operation.
//!
//! [`DiskWatch`] reports the same from the disk's own counters, for a
//! workload whose operations the probe does not issue itself (fio).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::emit::Emitter;
use crate::{monotonic_now, monotonic_ns, OpKind, ProbeEvent};

/// The operation in flight, shared between the I/O thread and the watchdog.
#[derive(Default)]
pub struct InFlight {
    /// Id of the operation in flight, 0 when idle.
    id: AtomicU64,
    next_id: AtomicU64,
    start_ns: AtomicU64,
    seq: AtomicU64,
    op: AtomicU8,
    stop: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    id: u64,
    start_ns: u64,
    seq: u64,
    op: OpKind,
}

impl InFlight {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks an operation as issued now; returns its start (CLOCK_MONOTONIC ns).
    pub fn begin(&self, op: OpKind, seq: u64) -> u64 {
        let start = monotonic_ns();
        self.start_ns.store(start, SeqCst);
        self.seq.store(seq, SeqCst);
        self.op.store(op as u8, SeqCst);
        // Published last: the fields above belong to this id.
        self.id.store(self.next_id.fetch_add(1, SeqCst) + 1, SeqCst);
        start
    }

    /// Marks the operation as returned.
    pub fn end(&self) {
        self.id.store(0, SeqCst);
    }

    pub fn stop(&self) {
        self.stop.store(true, SeqCst);
    }

    fn in_flight(&self, id: u64) -> bool {
        self.id.load(SeqCst) == id
    }

    fn snapshot(&self) -> Option<Snapshot> {
        loop {
            let id = self.id.load(SeqCst);
            if id == 0 {
                return None;
            }
            let snap = Snapshot {
                id,
                start_ns: self.start_ns.load(SeqCst),
                seq: self.seq.load(SeqCst),
                op: OpKind::ALL
                    .get(usize::from(self.op.load(SeqCst)))
                    .copied()
                    .unwrap_or(OpKind::Read),
            };
            // Fields are rewritten only after the id went back to 0.
            if self.id.load(SeqCst) == id {
                return Some(snap);
            }
        }
    }
}

/// Runs the watchdog until [`InFlight::stop`] (call `unpark` on this thread
/// afterwards to end it without waiting out its sleep).
pub fn watch<W: Write>(state: &InFlight, threshold: Duration, repeat: Duration, out: &Emitter<W>) {
    let threshold_ns = threshold.as_nanos().max(1) as u64;
    let repeat_ns = repeat.as_nanos().max(1) as u64;
    // (operation id, when to report it next)
    let mut watched: Option<(u64, u64)> = None;
    while !state.stop.load(SeqCst) {
        let now = monotonic_ns();
        // Never sleep past the threshold: an operation issued during the
        // sleep is then seen before (or just at) its own threshold.
        let mut wake = now + threshold_ns;
        if let Some(snap) = state.snapshot() {
            let due = match watched {
                Some((id, due)) if id == snap.id => due,
                _ => snap.start_ns + threshold_ns,
            };
            let mut next = due;
            if now >= due {
                let ev = ProbeEvent::Stalled {
                    t: now as f64 / 1e9,
                    since: snap.start_ns as f64 / 1e9,
                    op: snap.op,
                    seq: snap.seq,
                };
                // Checked under the writer lock: a Stalled line never follows
                // the Op line of the operation it reports.
                out.emit_if(&ev, || state.in_flight(snap.id));
                next = now + repeat_ns;
            }
            watched = Some((snap.id, next));
            wake = wake.min(next);
        } else {
            watched = None;
        }
        std::thread::park_timeout(Duration::from_nanos(wake.saturating_sub(now)));
    }
}

/// A disk's completion and in-flight counters, from its sysfs `stat`
/// (reads completed, field 1; writes completed, field 5; in flight, field 9)
/// and `inflight` (reads, writes).
#[derive(Debug, Clone, Copy, PartialEq)]
struct DiskCounters {
    completed: u64,
    in_flight: u64,
    writes_in_flight: u64,
}

impl DiskCounters {
    fn parse(stat: &str, inflight: &str) -> Option<DiskCounters> {
        let f: Vec<u64> = stat
            .split_whitespace()
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let w: Vec<u64> = inflight
            .split_whitespace()
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        Some(DiskCounters {
            completed: *f.first()? + *f.get(4)?,
            in_flight: *f.get(8)?,
            writes_in_flight: *w.get(1)?,
        })
    }
}

/// The stall watch over a disk's own counters: I/O in flight and none
/// completing past the threshold opens an episode from the last
/// completion, reported every second and once more at the next completion.
pub struct DiskWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// Seq of a stall episode's reports: counted down from the top, apart
/// from the I/Os' own (they end no episode; the episode ends itself).
const EPISODE_SEQ: u64 = u64::MAX;

impl DiskWatch {
    /// `None` when the disk has no counters to watch (not a block device).
    pub fn start(
        device: &Path,
        threshold: Duration,
        out: Arc<Emitter<std::io::Stdout>>,
    ) -> Option<DiskWatch> {
        let real = std::fs::canonicalize(device).ok()?;
        let sys = Path::new("/sys/class/block").join(real.file_name()?);
        let read = move || {
            DiskCounters::parse(
                &std::fs::read_to_string(sys.join("stat")).ok()?,
                &std::fs::read_to_string(sys.join("inflight")).ok()?,
            )
        };
        read()?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut last, mut progress) = (read(), monotonic_now());
            let (mut episode, mut reported, mut stalled) = (0u64, 0.0f64, None::<OpKind>);
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                let now = monotonic_now();
                let Some(c) = read() else { continue };
                let moved = !matches!(last, Some(l) if l.completed == c.completed);
                last = Some(c);
                // Idle (nothing in flight, no episode open): no stall. An
                // open episode ends only with a completion: after a
                // connection failure the kernel requeues its commands,
                // which are then in flight nowhere until they fail or go.
                if !moved && c.in_flight == 0 && stalled.is_none() {
                    progress = now;
                    continue;
                }
                if moved {
                    if let Some(op) = stalled.take() {
                        // The episode's end: its last report at the first completion.
                        out.emit(&ProbeEvent::Stalled {
                            t: now,
                            since: progress,
                            op,
                            seq: EPISODE_SEQ - episode,
                        });
                        episode += 1;
                    }
                    progress = now;
                    continue;
                }
                if now - progress >= threshold.as_secs_f64()
                    && (stalled.is_none() || now - reported >= 1.0)
                {
                    let op = *stalled.get_or_insert(if c.writes_in_flight > 0 {
                        OpKind::Write
                    } else {
                        OpKind::Read
                    });
                    out.emit(&ProbeEvent::Stalled {
                        t: now,
                        since: progress,
                        op,
                        seq: EPISODE_SEQ - episode,
                    });
                    reported = now;
                }
            }
        });
        Some(DiskWatch { stop, thread })
    }

    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disks_counters_are_read_from_its_sysfs_stat_and_inflight() {
        let stat = "    1200        3    9600      410      800        0    6400      900        4      600     1310        0        0        0        0        0        0";
        assert_eq!(
            DiskCounters::parse(stat, "       1        3\n"),
            Some(DiskCounters {
                completed: 2000,
                in_flight: 4,
                writes_in_flight: 3,
            })
        );
        assert_eq!(DiskCounters::parse("1 2 3", "0 0"), None);
    }

    use std::sync::Arc;

    fn lines(out: Emitter<Vec<u8>>) -> Vec<ProbeEvent> {
        String::from_utf8(out.into_inner())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn reports_a_stall_at_the_threshold_then_periodically() {
        let state = Arc::new(InFlight::new());
        let out = Arc::new(Emitter::new(Vec::new()));
        let (s, o) = (state.clone(), out.clone());
        let dog = std::thread::spawn(move || {
            watch(
                &s,
                Duration::from_millis(100),
                Duration::from_millis(150),
                &o,
            )
        });
        // Quick operations: no report.
        for seq in 0..20 {
            state.begin(OpKind::Write, seq);
            std::thread::sleep(Duration::from_millis(2));
            state.end();
            std::thread::sleep(Duration::from_millis(3));
        }
        let start = state.begin(OpKind::Read, 77);
        std::thread::sleep(Duration::from_millis(480));
        state.end();
        std::thread::sleep(Duration::from_millis(300));
        state.stop();
        dog.thread().unpark();
        dog.join().unwrap();
        let evs = lines(Arc::into_inner(out).unwrap());
        // At ~100, ~250, ~400 ms into the stall.
        assert!((2..=4).contains(&evs.len()), "{evs:?}");
        let mut prev = 0.0;
        for (i, ev) in evs.iter().enumerate() {
            let ProbeEvent::Stalled { t, since, op, seq } = *ev else {
                panic!("not a stall: {ev:?}")
            };
            assert_eq!((op, seq), (OpKind::Read, 77));
            assert_eq!(since, start as f64 / 1e9);
            let age = t - since;
            if i == 0 {
                // Loose upper bound: tests share the CPU.
                assert!((0.1..0.25).contains(&age), "first report after {age}");
            } else {
                assert!(t - prev >= 0.149, "reports {} apart", t - prev);
            }
            assert!(age < 0.48);
            prev = t;
        }
    }
}
