//! The cluster manager's part of a run with `[fencing]` (fence_scsi's
//! protocol): before the I/O, every host registers its key through its own
//! disk and the victim takes a Write Exclusive, Registrants Only
//! reservation; at the fence, the survivor removes the victim's key with
//! PREEMPT AND ABORT; at the end, the state is read once more. Each action,
//! and the LUN's state read back after it, goes into the history.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use guest_probes::{monotonic_now, ProbeEvent};

use super::rig::Rig;
use crate::history::{Event, History, PrState};
use crate::model::Fencing;
use crate::wire::pr::{self, Action};

/// Tries of one action: a command may first meet a UNIT ATTENTION (the
/// reservations changed), which passthrough hands to the caller.
const TRIES: usize = 3;

/// Registers every host's key, and the victim reserves; the run cannot go
/// on without it.
pub async fn setup(rig: &mut Rig, fencing: &Fencing, history: &mut History) -> Result<()> {
    rig.record_pr_state_file()?;
    for h in 0..rig.hosts.len() as u8 {
        let key = Fencing::key(h);
        act(rig, h, Action::Register { key }, history)
            .await
            .with_context(|| format!("host {h} registering its key"))?;
    }
    let key = Fencing::key(fencing.victim);
    act(rig, fencing.victim, Action::Reserve { key }, history)
        .await
        .context("the victim reserving the LUN")?;
    Ok(())
}

/// The fence: the survivor preempts the victim's key and aborts its
/// commands. A failure is in the history (the checker reports it); the
/// run goes on.
pub async fn fence(rig: &Rig, fencing: &Fencing, history: &mut History) {
    let action = Action::PreemptAbort {
        key: Fencing::key(fencing.survivor),
        victim: Fencing::key(fencing.victim),
    };
    let _ = act(rig, fencing.survivor, action, history).await;
}

/// A fence that waits for the victim's I/O to be stuck `after_s`: its
/// probe (`probe`, its index among the scenario's) reports an operation
/// blocked since some time, about once a second while it stays blocked.
#[derive(Debug, Clone, Copy)]
pub struct StallWatch {
    pub fencing: Fencing,
    pub probe: usize,
    pub after_s: f64,
}

impl StallWatch {
    /// Whether `event` (of the victim's probe) reports its I/O stuck long
    /// enough.
    pub fn stuck(&self, event: &ProbeEvent) -> bool {
        matches!(event, ProbeEvent::Stalled { t, since, .. } if t - since >= self.after_s)
    }
}

/// The state as `host` reads it, into the history as a `read`.
pub async fn read(rig: &Rig, host: u8, history: &mut History) {
    let (state, detail) = match disk(rig, host) {
        Ok(d) => match state(&d).await {
            Ok(s) => (Some(s), String::new()),
            Err(e) => (None, format!("{e:#}")),
        },
        Err(e) => (None, format!("{e:#}")),
    };
    history.push(
        monotonic_now(),
        Event::Reservation {
            host,
            action: "read".into(),
            ok: state.is_some(),
            detail,
            state,
        },
    );
}

/// Carries out `action` through `host`'s disk, then reads the state back;
/// both into the history (stamped when the action returned).
async fn act(rig: &Rig, host: u8, action: Action, history: &mut History) -> Result<()> {
    let device = disk(rig, host)?;
    let mut result = Err(anyhow::anyhow!("not tried"));
    for k in 0..TRIES {
        result = crate::sys::pr::sg_persist(&device, &action.args()).await;
        match &result {
            Err(e) if k + 1 < TRIES && format!("{e:#}").contains("unit attention") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => break,
        }
    }
    let done = monotonic_now();
    let state = state(&device).await.ok();
    let detail = match &result {
        Ok(_) => String::new(),
        Err(e) => format!("{e:#}"),
    };
    history.push(
        done,
        Event::Reservation {
            host,
            action: action.name().into(),
            ok: result.is_ok(),
            detail,
            state,
        },
    );
    result.map(|_| ())
}

/// The LUN's keys and reservation, through `device`.
async fn state(device: &std::path::Path) -> Result<PrState> {
    let args = |a: [&str; 3]| a.map(String::from).to_vec();
    let keys = crate::sys::pr::sg_persist(device, &args(pr::READ_KEYS)).await?;
    let res = crate::sys::pr::sg_persist(device, &args(pr::READ_RESERVATION)).await?;
    match pr::parse_state(&keys, &res) {
        Some(s) => Ok(s),
        None => bail!("sg_persist's answer not understood: {keys:?} {res:?}"),
    }
}

/// Host `host`'s disk: its session's.
fn disk(rig: &Rig, host: u8) -> Result<PathBuf> {
    let h = rig
        .hosts
        .get(usize::from(host))
        .with_context(|| format!("no host {host}"))?;
    let session = h.first_session().with_context(|| format!("host {host}"))?;
    Ok(session.disk.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FenceTrigger;
    use iscsi_chaos_formats::probe::OpKind;

    #[test]
    fn the_watch_fences_on_the_first_report_of_a_stall_long_enough() {
        let w = StallWatch {
            fencing: Fencing {
                survivor: 1,
                victim: 0,
                trigger: FenceTrigger::VictimStalled(3.0),
            },
            probe: 0,
            after_s: 3.0,
        };
        let stalled = |t: f64| ProbeEvent::Stalled {
            t,
            since: 3.0,
            op: OpKind::Write,
            seq: 7,
        };
        assert!(!w.stuck(&stalled(3.2)));
        assert!(!w.stuck(&stalled(5.9)));
        assert!(w.stuck(&stalled(6.2)));
        assert!(!w.stuck(&ProbeEvent::VerifyStart { t: 9.0, acked: 1 }));
    }
}
