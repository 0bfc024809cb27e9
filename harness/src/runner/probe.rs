//! The probe as the runner drives it: started on a host's device, its
//! records read into the history, and, when it does not end by its
//! deadline, the facts of how it hung.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use guest_probes::ProbeEvent;
use tokio::process::Child;

use super::rig::ProbeDevice;
use super::RunContext;
use crate::history::{Event, History};
use crate::model::Run;

pub(super) fn probe_event(name: &str, event: ProbeEvent) -> Event {
    Event::Probe {
        probe: name.to_string(),
        event,
    }
}

pub(super) async fn spawn_probe(
    ctx: &RunContext,
    run: &Run,
    device: ProbeDevice,
    probe: &crate::model::Probe,
    mount_dir: Option<&Path>,
) -> Result<Child> {
    let mut cmd = tokio::process::Command::new(&ctx.probe_binary);
    // The probe's own binary, or the harness's, which is each probe under
    // its program's name.
    cmd.arg0(probe.kind.program());
    cmd.env(crate::sys::cmd::MARKER_VAR, &ctx.run_id);
    match device {
        ProbeDevice::Session { disk, session } => cmd
            .arg("--device")
            .arg(disk)
            .args(["--expect-session", &session]),
        ProbeDevice::Map(map) => cmd.arg("--device").arg(map),
    };
    if let Some(c) = &probe.command {
        cmd.args(["--command", &c.command])
            .args(["--timeout-s", &c.timeout_s.to_string()]);
    }
    if let Some(f) = &probe.fio {
        cmd.args(["--job-text", &f.job])
            .args(["--timeout-s", &f.timeout_s.to_string()]);
    }
    if let (Some(fs), Some(dir)) = (&probe.fs, mount_dir) {
        cmd.args(["--fs", fs.fs.as_str()])
            .arg("--mount-dir")
            .arg(dir);
        if let Some(o) = &fs.mount_options {
            cmd.args(["--mount-options", o]);
        }
        if let Some(n) = fs.xfs_eio_max_retries {
            cmd.arg(format!("--xfs-eio-max-retries={n}"));
        }
    }
    if let Some(blocks) = probe.blocks {
        cmd.args(["--blocks", &blocks.to_string()]);
    }
    if probe.depth > 1 {
        cmd.args(["--depth", &probe.depth.to_string()]);
    }
    // A probe that begins later (a host taking over) waits after its
    // Start, and its I/O ends with everyone else's.
    if probe.start_s > 0.0 {
        cmd.args(["--start-after-s", &probe.start_s.to_string()]);
    }
    cmd.args(["--interval-ms", &probe.interval_ms.to_string()])
        .args([
            "--duration-s",
            &(run.scenario.duration_s - probe.start_s).to_string(),
        ])
        // Counted from its Start, as the harness's hung deadline is.
        .args([
            "--verify-until-s",
            &run.scenario.probe_verify_until_s().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // If the harness is killed, the probe must not go on writing.
    crate::sys::cmd::spawn_dying_with_harness(cmd)
        .await
        .with_context(|| format!("starting {}", ctx.probe_binary.display()))
}

/// Characters of an unparsable probe line kept in its note.
const UNPARSED_CHARS: usize = 200;
/// Unparsable probe lines noted one by one; past these, only counted.
const UNPARSED_NOTES: u64 = 100;

/// The probe's stdout lines that are not probe events: each becomes a
/// history note (numbered, its first [`UNPARSED_CHARS`] characters), up to
/// [`UNPARSED_NOTES`]; then [`Unparsed::finish`] says how many in all.
#[derive(Debug, Default)]
pub(super) struct Unparsed {
    count: u64,
}

impl Unparsed {
    pub(super) fn note(&mut self, line: &[u8], mut emit: impl FnMut(String)) {
        self.count += 1;
        if self.count <= UNPARSED_NOTES {
            let text: String = String::from_utf8_lossy(line)
                .chars()
                .take(UNPARSED_CHARS)
                .collect();
            emit(format!("probe line {} not understood: {text}", self.count));
        }
    }

    pub(super) fn finish(self, mut emit: impl FnMut(String)) {
        if self.count > UNPARSED_NOTES {
            emit(format!(
                "{} probe lines not understood in all (the first {UNPARSED_NOTES} noted)",
                self.count
            ));
        }
    }
}

/// The probe had not ended by its deadline.
#[derive(Debug)]
pub(super) struct ProbeHung {
    /// The probe's Start (CLOCK_MONOTONIC).
    pub(super) t0: f64,
    /// The end of its I/O phase.
    pub(super) io_end: f64,
    /// When the harness gave up waiting.
    pub(super) declared: f64,
}

impl std::fmt::Display for ProbeHung {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "probe hung: still running {:.0} s after its I/O phase ended",
            self.declared - self.io_end
        )
    }
}

impl std::error::Error for ProbeHung {}

/// How the probe ended after the timeline.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ending {
    /// It exited by itself (the timeline waited for it).
    ByItself,
    /// SIGKILL ended it.
    OnKill,
    /// SIGKILL did not (blocked in the kernel); logging the session out,
    /// which fails its queued I/O, did after this many seconds.
    AfterLogout { after_s: f64 },
    /// Still alive after SIGKILL and the logout (the logout's own problem, if any).
    Never { logout: Option<String> },
}

/// "probe hung" with the facts: how long, the operation it was blocked in,
/// what released it, how many records were kept.
pub(super) fn hung_report(
    hung: &ProbeHung,
    ending: &Ending,
    history: &History,
    probe: &str,
) -> String {
    let rel = |t: f64| t - hung.t0;
    let mut records = 0;
    let mut last: Option<&ProbeEvent> = None;
    for entry in &history.entries {
        if let Event::Probe { probe: p, event } = &entry.event {
            if p != probe {
                continue;
            }
            records += 1;
            if entry.t <= hung.declared
                && matches!(event, ProbeEvent::Op { .. } | ProbeEvent::Stalled { .. })
            {
                last = Some(event);
            }
        }
    }
    let op_name = |op: &guest_probes::OpKind| op.as_str();
    let last_op = match last {
        Some(ProbeEvent::Stalled { since, op, seq, .. }) => format!(
            "last op: {} seq {seq} issued at +{:.1} s, blocked for {:.1} s",
            op_name(op),
            rel(*since),
            hung.declared - since
        ),
        Some(ProbeEvent::Op {
            t,
            op,
            seq,
            ok,
            errno,
            ..
        }) => format!(
            "last op: {} seq {seq} ended at +{:.1} s ({}), nothing since for {:.1} s",
            op_name(op),
            rel(*t),
            if *ok {
                "ok".to_string()
            } else {
                format!("errno {}", errno.unwrap_or(0))
            },
            hung.declared - t
        ),
        _ => "no operation recorded".to_string(),
    };
    let released = match ending {
        Ending::ByItself => "it then ended by itself".to_string(),
        Ending::OnKill => "SIGKILL ended it".to_string(),
        Ending::AfterLogout { after_s } => format!(
            "SIGKILL did not end it (blocked in the kernel); logging the session out released it after {after_s:.1} s"
        ),
        Ending::Never { logout } => format!(
            "neither SIGKILL nor logging the session out ended it{}",
            logout
                .as_deref()
                .map_or(String::new(), |p| format!(" (logout: {p})"))
        ),
    };
    format!("{hung}; {last_op}; {released}; {records} probe records kept")
}

/// The probe's name, and the argv[0] the harness's binary acts as the
/// probe under.
pub const PROBE_NAME: &str = "blkprobe";

/// blkprobe built beside the running executable (a cargo build), else the
/// executable itself (an installed `iscsi-chaos`, which carries the probe).
pub fn probe_binary_beside(exe: &Path) -> PathBuf {
    match exe.parent().map(|dir| dir.join(PROBE_NAME)) {
        Some(probe) if probe.is_file() => probe,
        _ => exe.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_probes::OpKind;

    fn history_of(events: Vec<ProbeEvent>) -> History {
        let mut h = History::default();
        for ev in events {
            h.push(ev.t(), probe_event("blk", ev));
        }
        h
    }

    fn op(t: f64, seq: u64) -> ProbeEvent {
        ProbeEvent::Op {
            t,
            start: t - 0.001,
            op: OpKind::Write,
            seq,
            block: seq,
            ok: true,
            errno: None,
        }
    }

    const HUNG: ProbeHung = ProbeHung {
        t0: 100.0,
        io_end: 110.0,
        declared: 130.0,
    };

    #[test]
    fn unparsable_probe_lines_become_numbered_clipped_notes() {
        let mut notes = Vec::new();
        let mut unparsed = Unparsed::default();
        let long = format!("{{\"event\":\"op\",{}", "x".repeat(500));
        unparsed.note(b"thread 'main' panicked at src/x.rs", |t| notes.push(t));
        unparsed.note(long.as_bytes(), |t| notes.push(t));
        unparsed.note(b"\xff\xfe not utf-8", |t| notes.push(t));
        unparsed.finish(|t| notes.push(t));
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert_eq!(
            notes[0],
            "probe line 1 not understood: thread 'main' panicked at src/x.rs"
        );
        let clipped = notes[1]
            .strip_prefix("probe line 2 not understood: ")
            .unwrap();
        assert_eq!(clipped.chars().count(), UNPARSED_CHARS);
        assert!(notes[2].starts_with("probe line 3 not understood: \u{fffd}"));

        // A flood: the first ones noted, then the count.
        let (mut notes, mut unparsed) = (Vec::new(), Unparsed::default());
        for _ in 0..UNPARSED_NOTES + 5 {
            unparsed.note(b"garbage", |t| notes.push(t));
        }
        unparsed.finish(|t| notes.push(t));
        assert_eq!(notes.len() as u64, UNPARSED_NOTES + 1);
        assert_eq!(
            notes.last().unwrap(),
            "105 probe lines not understood in all (the first 100 noted)"
        );
    }

    #[test]
    fn a_hung_probe_is_reported_with_its_blocked_operation() {
        let h = history_of(vec![
            op(101.0, 1),
            op(102.0, 2),
            ProbeEvent::Stalled {
                t: 129.0,
                since: 102.5,
                op: OpKind::Write,
                seq: 3,
            },
        ]);
        let text = hung_report(&HUNG, &Ending::AfterLogout { after_s: 1.25 }, &h, "blk");
        assert_eq!(
            text,
            "probe hung: still running 20 s after its I/O phase ended; \
             last op: write seq 3 issued at +2.5 s, blocked for 27.5 s; \
             SIGKILL did not end it (blocked in the kernel); logging the session out released it after 1.2 s; \
             3 probe records kept"
        );
    }

    #[test]
    fn a_silent_probe_and_one_never_released() {
        let mut h = history_of(vec![op(101.0, 1)]);
        // Records after the deadline are counted but are not "the last op".
        h.push(131.0, probe_event("blk", op(131.0, 2)));
        let text = hung_report(
            &HUNG,
            &Ending::Never {
                logout: Some("the logout took over 30 s".into()),
            },
            &h,
            "blk",
        );
        assert!(
            text.contains("last op: write seq 1 ended at +1.0 s (ok), nothing since for 29.0 s"),
            "{text}"
        );
        assert!(
            text.contains("(logout: the logout took over 30 s)"),
            "{text}"
        );
        assert!(text.ends_with("2 probe records kept"), "{text}");
        let text = hung_report(&HUNG, &Ending::OnKill, &History::default(), "blk");
        assert!(
            text.contains("no operation recorded; SIGKILL ended it"),
            "{text}"
        );
    }
}
