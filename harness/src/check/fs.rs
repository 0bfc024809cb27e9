//! An fs probe's filesystem as the history shows it: each change of state,
//! the worst state before recovery, the recovery steps and the first that
//! worked, the fsyncs that reported an error once.

use iscsi_chaos_formats::probe::{FsMount, ProbeEvent, Recovery};
use iscsi_chaos_formats::report::{FsJson, FsStateJson, FsStepJson};

use crate::history::History;

/// How bad a state is (the worst one is reported).
fn badness(m: FsMount) -> u8 {
    match m {
        FsMount::Rw | FsMount::Unmounted => 0,
        FsMount::Ro => 1,
        FsMount::ShutDown => 2,
    }
}

/// The filesystem's story, times from `origin`; `None` without fs events.
pub fn measure(history: &History, origin: f64) -> Option<FsJson> {
    let mut fs = FsJson::default();
    let mut seen = false;
    let mut recovering = false;
    for (_, _, ev) in history.probe_events() {
        match ev {
            ProbeEvent::FsState {
                t,
                mount,
                device,
                errors,
                line,
            } => {
                seen = true;
                if !recovering && badness(*mount) > fs.worst.map_or(0, badness) {
                    fs.worst = Some(*mount);
                }
                fs.worst.get_or_insert(FsMount::Rw);
                fs.states.push(FsStateJson {
                    at_s: t - origin,
                    mount: *mount,
                    device: device.clone(),
                    errors: *errors,
                    line: line.clone(),
                });
            }
            ProbeEvent::VerifyStart { .. } => recovering = true,
            ProbeEvent::FsRecovery {
                t,
                step,
                ok,
                detail,
            } => {
                seen = true;
                recovering = true;
                if fs.recovery.is_none() && (*ok || *step == Recovery::Never) {
                    fs.recovery = Some(*step);
                }
                fs.steps.push(FsStepJson {
                    at_s: t - origin,
                    step: *step,
                    ok: *ok,
                    detail: detail.clone(),
                });
            }
            ProbeEvent::FsyncErrorOnce { .. } => fs.fsync_error_once += 1,
            _ => {}
        }
    }
    seen.then_some(fs)
}

/// The filesystem's story in one line: its states with times, what brought
/// it back.
pub fn story(fs: &FsJson) -> String {
    let states: Vec<String> = fs
        .states
        .iter()
        .map(|s| {
            let dev = s
                .device
                .as_deref()
                .map_or(String::new(), |d| format!(", disk {d}"));
            format!("{} at {:+.1} s{dev}", s.mount.as_str(), s.at_s)
        })
        .collect();
    let back = fs.recovery.map_or("no recovery tried", Recovery::describe);
    format!("filesystem: {}; {back}", states.join(" → "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;

    fn state(t: f64, mount: FsMount, device: &str) -> ProbeEvent {
        ProbeEvent::FsState {
            t,
            mount,
            device: Some(device.into()),
            errors: None,
            line: None,
        }
    }

    #[test]
    fn the_worst_state_before_recovery_and_the_first_step_that_worked_are_read() {
        let mut h = History::default();
        let evs = vec![
            state(1.0, FsMount::Rw, "running"),
            state(12.0, FsMount::Ro, "running"),
            ProbeEvent::VerifyStart { t: 40.0, acked: 9 },
            ProbeEvent::FsRecovery {
                t: 41.0,
                step: Recovery::ByItself,
                ok: false,
                detail: "create: Read-only file system (os error 30)".into(),
            },
            ProbeEvent::FsRecovery {
                t: 41.5,
                step: Recovery::Remount,
                ok: false,
                detail: "mount: exit status: 32".into(),
            },
            // Unmounted during the repair: not the run's worst.
            state(42.0, FsMount::Unmounted, "running"),
            ProbeEvent::FsRecovery {
                t: 44.0,
                step: Recovery::Umount,
                ok: true,
                detail: "e2fsck: ok".into(),
            },
            state(44.1, FsMount::Rw, "running"),
            ProbeEvent::FsyncErrorOnce {
                t: 13.0,
                file: 7,
                errno: 5,
            },
        ];
        for ev in evs {
            h.push(
                ev.t(),
                Event::Probe {
                    probe: "fs".into(),
                    event: ev,
                },
            );
        }
        h.sort();
        let fs = measure(&h, 10.0).unwrap();
        assert_eq!(fs.worst, Some(FsMount::Ro));
        assert_eq!(fs.recovery, Some(Recovery::Umount));
        assert_eq!(fs.steps.len(), 3);
        assert_eq!(fs.fsync_error_once, 1);
        assert_eq!(fs.states[1].at_s, 2.0);
        let story = story(&fs);
        assert!(
            story.contains("read-only at +2.0 s") && story.ends_with("only after umount + repair"),
            "{story}"
        );
        assert!(measure(&History::default(), 0.0).is_none());
    }
}
