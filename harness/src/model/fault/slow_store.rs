//! `slow_store`: the LUN's backing store (dm-delay over a loop device) adds
//! `io_delay_ms` to every read and write for the fault's duration: "the
//! array is slow, not the network".

use super::{evidence, Kind, LinkEffect, Notes, Reach, Registration};
use crate::history::Effect;
use crate::model::action::Action;
use crate::model::keys::{Bound, KeySpec, REQUIRED};
use crate::model::needs::SLOW_STORE;
use crate::model::timing::{Timeouts, LOGIN_S, RACE_MARGIN_S, TIME2WAIT_S};
use crate::model::{Direction, TargetKind, MAX_IO_DELAY_MS};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStore {
    pub io_delay_ms: f64,
}

pub const REGISTRATION: Registration = Registration {
    name: "slow_store",
    doc: "The LUN's backing store (dm-delay over a loop device) adds `io_delay_ms` to every read and write for the fault's duration: the array is slow, not the network.",
    options: &[KeySpec {
        unit: "ms",
        default: REQUIRED,
        bound: Bound::Num {
            min: 0.0,
            min_open: true,
            max: MAX_IO_DELAY_MS,
        },
        ..KeySpec::new("io_delay_ms", "number", "added to every read and write of the backing store")
    }],
    whole_link: Some("it acts on the target, not on the link: both directions"),
    parse: |o, _| {
        let hint = "milliseconds added to every read and write, e.g. 3000";
        let Some(x) = o.number("io_delay_ms", hint).ok()? else {
            o.missing("io_delay_ms", hint);
            return None;
        };
        if !(x.is_finite() && x > 0.0 && x <= MAX_IO_DELAY_MS) {
            o.err(
                o.span("io_delay_ms"),
                "io_delay_ms",
                format!("must be > 0 and <= {MAX_IO_DELAY_MS}, got {x}"),
                Some(hint.into()),
            );
            return None;
        }
        Some(SlowStore { io_delay_ms: x }.into())
    },
    needs: SLOW_STORE,
    reach: Reach::Target,
    took_effect: |events| evidence::effect(events, |e| matches!(e, Effect::StoreDelay { .. })),
};

impl Kind for SlowStore {
    fn direction(&self) -> Option<Direction> {
        None
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::SetStoreDelay {
                ms: self.io_delay_ms,
            },
            Action::SetStoreDelay { ms: 0.0 },
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Unnoticed
    }
    /// Measured in the lab (kernel 6.1, tgt 1.0.85): tgtd answers NOP-Outs
    /// from its main loop; LIO blocks the connection behind the command.
    fn notes(&self, t: &Timeouts, i: usize, duration_s: f64, target: TargetKind) -> Notes {
        let io_delay_ms = self.io_delay_ms;
        let mut notes = Vec::new();
        let mut borderline = false;
        match target {
            TargetKind::Tgt => notes.push(format!(
                "fault {i}: slow_store on tgt: {io_delay_ms} ms per backing-store I/O; tgtd answers NOP-Outs from its main loop: stalls only, the session stays up"
            )),
            TargetKind::Lio => {
                // A write costs the write and the flush that O_SYNC sends.
                let blocked = 2.0 * io_delay_ms / 1000.0;
                let inn = t.noop_out_interval + t.noop_out_timeout;
                if t.nops() && blocked >= inn {
                    notes.push(format!(
                        "fault {i}: slow_store on LIO: a command blocks the connection up to {blocked:.1} s, NOP-Outs time out (I + N = {inn} s): the session drops and relogs in once the blocked commands are done (at the latest when the store is fast again)"
                    ));
                    // Detection at I + N into the slow period at the earliest;
                    // relogin once it ends (measured: 0.6 s after).
                    let r = t.replacement_timeout;
                    let worst = duration_s - inn + TIME2WAIT_S + LOGIN_S;
                    if r >= 0.0 && worst > r - RACE_MARGIN_S {
                        borderline = true;
                        notes.push(format!(
                            "fault {i}: relogin up to {worst:.1} s after the drop nears replacement_timeout {r} s: EIO possible, not modelled"
                        ));
                    }
                } else {
                    notes.push(format!(
                        "fault {i}: slow_store on LIO: {io_delay_ms} ms per I/O: stalls only"
                    ));
                }
            }
        }
        Notes { borderline, notes }
    }
    fn parameters(&self) -> String {
        format!("{} ms per I/O", self.io_delay_ms)
    }
}
