//! The single writer of event lines: one lock, one line per event, flushed at
//! once because the harness reads the lines live.

use std::io::Write;
use std::sync::{Mutex, MutexGuard};

use crate::ProbeEvent;

pub struct Emitter<W: Write> {
    out: Mutex<W>,
}

impl<W: Write> Emitter<W> {
    pub fn new(out: W) -> Self {
        Emitter {
            out: Mutex::new(out),
        }
    }

    pub fn emit(&self, ev: &ProbeEvent) {
        self.emit_if(ev, || true);
    }

    /// Writes `ev` if `cond`, evaluated under the writer lock, holds; so a
    /// condition on state that another emitter changes before its own line
    /// cannot race with that line. Returns whether the line was written.
    pub fn emit_if(&self, ev: &ProbeEvent, cond: impl FnOnce() -> bool) -> bool {
        let mut line = serde_json::to_string(ev).expect("events always serialise");
        line.push('\n');
        let mut out = self.lock();
        if !cond() {
            return false;
        }
        // A reader that went away is no reason to stop the I/O being measured.
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
        true
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, W> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }
}
