//! cmdprobe: the user's own command, run again and again on the iSCSI disk
//! (or on a filesystem the probe makes on it, as fsprobe does), each run
//! with a time bound: its start, end and exit status are an `Op` (ok: it
//! exited 0 within the bound) and a `CommandRun` (status, killed for
//! outliving the bound, the last of its output), so the checker reads its
//! first failure and its stalls as it reads blkprobe's.
//!
//! The command runs as `sh -c COMMAND` in its own process group, with
//! `ISCSI_CHAOS_DEVICE` (the disk) and, with a filesystem,
//! `ISCSI_CHAOS_MOUNT` (where it is mounted) in its environment; its output
//! never reaches the probe's own stdout (the event stream).

use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;

use crate::child::{own_group, wait_bounded};
use crate::emit::Emitter;
use crate::fsprobe::FsArgs;
use crate::signals::{secs, signalled};
use crate::watchdog::{watch, InFlight};
use crate::workload::Ground;
use crate::{monotonic_now, OpKind, ProbeEvent};

/// Repeat period of Stalled reports for one run.
const STALL_REPEAT: Duration = Duration::from_secs(1);
/// Characters of a run's output kept in its event.
const OUTPUT_CHARS: usize = 200;

#[derive(Parser, Debug)]
#[command(
    name = "cmdprobe",
    about = "Runs a command again and again on an iSCSI disk; one JSON event per line on stdout"
)]
struct Args {
    #[command(flatten)]
    fs: FsArgs,
    /// The command, run by `sh -c`.
    #[arg(long)]
    command: String,
    /// Bound of one run, in seconds: past it the run is killed and failed.
    #[arg(long, default_value_t = 10.0)]
    timeout_s: f64,
    /// Period between the starts of runs, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    interval_ms: u64,
    /// How long to run it, in seconds (default: until SIGTERM/SIGINT).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Report a run as stalled once it has been going this long.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    stall_threshold_ms: u64,
    /// Accepted for the harness's common arguments; the probe verifies nothing.
    #[arg(long)]
    verify_until_s: Option<f64>,
}

/// How one run ended.
#[derive(Debug, PartialEq)]
struct Ended {
    status: Option<i32>,
    timed_out: bool,
    output: String,
}

/// Runs `sh -c command` in its own process group with `env`, killing the
/// group past `limit`; waits for it to end either way (a process blocked
/// in the kernel ends only when its I/O does).
fn run_once(command: &str, env: &[(&str, OsString)], limit: Duration) -> std::io::Result<Ended> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = own_group(&mut cmd).spawn()?;
    // Read both pipes on threads: a chatty command must not block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut all);
            }
            all
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let ended = wait_bounded(&mut child, limit, false)?;
    let (status, timed_out) = (ended.status, ended.timed_out);
    let mut said = out.join().unwrap_or_default();
    said.extend(err.join().unwrap_or_default());
    let said = String::from_utf8_lossy(&said);
    let said: Vec<&str> = said.split_whitespace().collect();
    let said = said.join(" ");
    let skip = said.chars().count().saturating_sub(OUTPUT_CHARS);
    Ok(Ended {
        status: status.code(),
        timed_out,
        output: said.chars().skip(skip).collect(),
    })
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::probe_life("cmdprobe", || Probe::setup(args), Probe::run)
}

/// The arguments checked and the filesystem (if one) made and mounted.
struct Probe {
    args: Args,
    limit: Duration,
    duration: Option<Duration>,
    ground: Ground,
}

impl Probe {
    fn setup(args: Args) -> Result<Probe> {
        let limit = secs("timeout-s", args.timeout_s)?;
        if limit.is_zero() {
            bail!("--timeout-s must be more than 0");
        }
        let duration = args.duration_s.map(|d| secs("duration-s", d)).transpose()?;
        let ground = Ground::prepare(&args.fs)?;
        Ok(Probe {
            args,
            limit,
            duration,
            ground,
        })
    }

    fn run(self, out: Arc<Emitter<std::io::Stdout>>) {
        let Probe {
            args,
            limit,
            duration,
            ground,
        } = self;
        let in_use = ground.begin(&args.fs, &out, args.interval_ms);
        let env = &in_use.env;
        let inflight = Arc::new(InFlight::new());
        let dog = {
            let (state, out) = (inflight.clone(), out.clone());
            let threshold = Duration::from_millis(args.stall_threshold_ms);
            std::thread::spawn(move || watch(&state, threshold, STALL_REPEAT, &out))
        };
        let t0 = Instant::now();
        let interval = Duration::from_millis(args.interval_ms);
        let (mut ops, mut errors) = (0u64, 0u64);
        let mut next = t0;
        for seq in 0u64.. {
            loop {
                let now = Instant::now();
                if signalled() || duration.is_some_and(|d| now >= t0 + d) {
                    break;
                }
                if now >= next {
                    break;
                }
                std::thread::sleep((next - now).min(Duration::from_millis(50)));
            }
            if signalled() || duration.is_some_and(|d| Instant::now() >= t0 + d) {
                break;
            }
            next = (next + interval).max(Instant::now());
            let start = inflight.begin(OpKind::Command, seq);
            let ended = run_once(&args.command, env, limit);
            let t = monotonic_now();
            inflight.end();
            let ok = matches!(&ended, Ok(e) if e.status == Some(0) && !e.timed_out);
            ops += 1;
            errors += u64::from(!ok);
            out.emit(&ProbeEvent::Op {
                t,
                start: start as f64 / 1e9,
                op: OpKind::Command,
                seq,
                block: 0,
                ok,
                errno: ended.as_ref().err().and_then(|e| e.raw_os_error()),
            });
            out.emit(&match ended {
                Ok(e) => ProbeEvent::CommandRun {
                    t,
                    seq,
                    status: e.status,
                    timed_out: e.timed_out,
                    output: e.output,
                },
                Err(e) => ProbeEvent::CommandRun {
                    t,
                    seq,
                    status: None,
                    timed_out: false,
                    output: format!("sh could not start: {e}"),
                },
            });
        }
        inflight.stop();
        dog.thread().unpark();
        let _ = dog.join();
        out.emit(&ProbeEvent::VerifyStart {
            t: monotonic_now(),
            acked: 0,
        });
        ground.end(in_use, limit);
        out.emit(&ProbeEvent::Summary {
            t: monotonic_now(),
            acked_writes: 0,
            lost_writes: 0,
            corrupt_writes: 0,
            unverified_writes: 0,
            ops,
            errors,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reports_its_status_and_output_and_is_killed_past_its_bound() {
        let env = [("ISCSI_CHAOS_DEVICE", OsString::from("/dev/null"))];
        let e = run_once(
            "echo \"$ISCSI_CHAOS_DEVICE\"; exit 3",
            &env,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            e,
            Ended {
                status: Some(3),
                timed_out: false,
                output: "/dev/null".into()
            }
        );
        // A child of the command is killed with it (the process group).
        let began = Instant::now();
        let e = run_once(
            "sleep 5 & sleep 5; echo never",
            &env,
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(e.timed_out && e.status.is_none(), "{e:?}");
        assert!(began.elapsed() < Duration::from_secs(4));
        assert!(!e.output.contains("never"));
    }

    #[test]
    fn the_command_is_required_and_its_bound_positive() {
        let parse = |extra: &[&str]| {
            let mut v = vec!["cmdprobe", "--device", "/dev/null"];
            v.extend(extra);
            Args::try_parse_from(v)
        };
        assert!(parse(&[]).is_err());
        let a = parse(&["--command", "true", "--timeout-s", "0"]).unwrap();
        let e = Probe::setup(a).err().unwrap();
        assert!(format!("{e:#}").contains("more than 0"));
    }
}
