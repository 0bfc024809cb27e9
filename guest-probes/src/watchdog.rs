//! The stall watchdog: a thread that reports an operation blocked in the
//! kernel past a threshold, once at the threshold and then periodically.
//!
//! The I/O thread publishes the operation in flight through atomics; the
//! watchdog never sleeps longer than the threshold, so it sees every
//! operation that lasts that long in time without being woken per operation.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::SeqCst};
use std::time::Duration;

use crate::emit::Emitter;
use crate::{monotonic_ns, OpKind, ProbeEvent};

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

#[cfg(test)]
mod tests {
    use super::*;
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
