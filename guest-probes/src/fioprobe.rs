//! fioprobe: the user's fio job on the iSCSI disk (or on a filesystem the
//! probe makes on it, as fsprobe does), its I/O imported into the history
//! as `Op`s the checker reads as it reads blkprobe's.
//!
//! - **Successes** come from fio's per-I/O latency log (`write_lat_log`,
//!   `log_avg_msec=0`, Unix-epoch times): each I/O's completion time and
//!   latency, so its issue time, its direction, size and offset.
//! - **Errors** come from fio's stderr, one line per failed I/O
//!   (`error_dump=1`, `continue_on_error=all`), each stamped when the line
//!   arrives: a failed I/O has no latency, its issue time is its report's.
//! - fio's own run (exit status, killed past its bound, the last of what it
//!   said) is a `CommandRun`; its verify failures are corrupt writes.
//! - **Stalls** come from the disk's own counters (`/sys/class/block/<disk>/stat`),
//!   watched live: I/O in flight and none completing for longer than the
//!   stall threshold opens a `Stalled` episode from the last completion,
//!   reported every second and once more when an I/O completes again (ok
//!   or failed: requeued commands are in flight nowhere meanwhile) (a failed I/O has
//!   no latency in fio's log, so the log alone would miss the stall before
//!   an error).
//!
//! The probe writes fio a job file: its own `[global]` section first
//! (`filename=${ISCSI_CHAOS_DEVICE}` or `directory=${ISCSI_CHAOS_MOUNT}`,
//! the logs, error handling, `time_based` for the run's duration), then the
//! scenario's job text, whose own `[global]` overrides those defaults.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::child::{own_group, wait_bounded};
use crate::emit::Emitter;
use crate::fsprobe::FsArgs;
use crate::signals::secs;
use crate::watchdog::DiskWatch;
use crate::workload::Ground;
use crate::{monotonic_now, OpKind, ProbeEvent};

/// Lines of fio's stderr (other than I/O errors) kept for its run's event.
const OUTPUT_CHARS: usize = 300;

#[derive(Parser, Debug)]
#[command(
    name = "fioprobe",
    about = "Runs a fio job on an iSCSI disk and imports its I/O; one JSON event per line on stdout"
)]
struct Args {
    #[command(flatten)]
    fs: FsArgs,
    /// The fio job file's text.
    #[arg(long)]
    job_text: String,
    /// How long fio may run past its duration before it is killed, in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout_s: f64,
    /// How long fio runs, in seconds (`time_based`; default: the job's own
    /// length, or until SIGTERM/SIGINT).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Accepted for the harness's common arguments (fio keeps its own pace).
    #[arg(long)]
    interval_ms: Option<u64>,
    /// Accepted for the harness's common arguments; fio verifies as its job says.
    #[arg(long)]
    verify_until_s: Option<f64>,
    /// Report the disk as stalled once I/O has been in flight this long
    /// without one completing.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    stall_threshold_ms: u64,
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::probe_life("fioprobe", || Probe::setup(args), Probe::run)
}

struct Probe {
    args: Args,
    duration: Option<Duration>,
    limit: Duration,
    ground: Ground,
    /// fio's job file and logs, removed at the end.
    logs: LogDir,
}

/// A folder of the probe's own, removed when dropped.
struct LogDir(PathBuf);

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Probe {
    fn setup(args: Args) -> Result<Probe> {
        let duration = args.duration_s.map(|d| secs("duration-s", d)).transpose()?;
        let limit = secs("timeout-s", args.timeout_s)?;
        if args.job_text.trim().is_empty() {
            bail!("--job-text is empty");
        }
        let version = Command::new("fio")
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .context("running fio (apt-get install fio)")?;
        if !version.status.success() {
            bail!("fio --version: {}", version.status);
        }
        let logs = LogDir(
            std::env::temp_dir().join(format!("iscsi-chaos-fioprobe-{}", std::process::id())),
        );
        std::fs::create_dir(&logs.0).with_context(|| format!("creating {}", logs.0.display()))?;
        let job = logs.0.join("job.fio");
        let fs = args.fs.mount_dir.is_some();
        std::fs::write(&job, job_file(&args.job_text, &logs.0, duration, fs))?;
        // fio's own check of the job before anything is made on the disk.
        let parsed = Command::new("fio")
            .arg("--parse-only")
            .arg(&job)
            .env("ISCSI_CHAOS_DEVICE", &args.fs.device)
            .env("ISCSI_CHAOS_MOUNT", "/nonexistent")
            .stdin(Stdio::null())
            .output()?;
        if !parsed.status.success() {
            bail!(
                "fio refuses the job: {}",
                String::from_utf8_lossy(&parsed.stderr).trim()
            );
        }
        let ground = Ground::prepare(&args.fs)?;
        Ok(Probe {
            args,
            duration,
            limit,
            ground,
            logs,
        })
    }

    fn run(self, out: Arc<Emitter<std::io::Stdout>>) {
        let Probe {
            args,
            duration,
            limit,
            ground,
            logs,
        } = self;
        let in_use = ground.begin(&args.fs, &out, args.interval_ms.unwrap_or(0));
        // Unix-epoch times in fio's logs, to this clock.
        let epoch_to_mono = -crate::realtime_offset();
        let started = monotonic_now();
        let watch = DiskWatch::start(
            &args.fs.device,
            Duration::from_millis(args.stall_threshold_ms),
            out.clone(),
        );
        let ran = run_fio(&logs.0, &in_use.env, duration.map_or(limit, |d| d + limit));
        let (mut ops, run_event) = match ran {
            Ok(r) => {
                let mut ops = r.errors;
                ops.extend(read_lat_logs(&logs.0, epoch_to_mono));
                let event = ProbeEvent::CommandRun {
                    t: monotonic_now(),
                    seq: 0,
                    status: r.status,
                    timed_out: r.timed_out,
                    output: r.said,
                };
                (ops, (event, r.verify_failures))
            }
            Err(e) => (
                Vec::new(),
                (
                    ProbeEvent::CommandRun {
                        t: monotonic_now(),
                        seq: 0,
                        status: None,
                        timed_out: false,
                        output: format!("fio could not start: {e:#}"),
                    },
                    0,
                ),
            ),
        };
        if let Some(w) = watch {
            w.stop();
        }
        ops.retain(|o| o.t >= started - 1.0);
        ops.sort_by(|a, b| a.t.total_cmp(&b.t));
        let (mut errors, mut acked) = (0u64, 0u64);
        for (seq, o) in ops.iter().enumerate() {
            errors += u64::from(!o.ok);
            acked += u64::from(o.ok && o.op == OpKind::Write);
            out.emit(&ProbeEvent::Op {
                t: o.t,
                start: o.start,
                op: o.op,
                seq: seq as u64,
                block: o.block,
                ok: o.ok,
                errno: o.errno,
            });
        }
        let (event, corrupt) = run_event;
        out.emit(&event);
        out.emit(&ProbeEvent::VerifyStart {
            t: monotonic_now(),
            acked,
        });
        ground.end(in_use, limit);
        out.emit(&ProbeEvent::Summary {
            t: monotonic_now(),
            acked_writes: acked,
            lost_writes: 0,
            corrupt_writes: corrupt,
            unverified_writes: 0,
            ops: ops.len() as u64,
            errors,
        });
    }
}

/// The job file fio runs: the probe's defaults, then the scenario's job.
fn job_file(user: &str, logs: &Path, duration: Option<Duration>, fs: bool) -> String {
    let target = if fs {
        "directory=${ISCSI_CHAOS_MOUNT}"
    } else {
        "filename=${ISCSI_CHAOS_DEVICE}"
    };
    let mut g = format!(
        "; fioprobe's defaults; the scenario's job follows and may override them\n\
         [global]\n\
         {target}\n\
         write_lat_log={}/io\n\
         log_avg_msec=0\n\
         log_offset=1\n\
         log_unix_epoch=1\n\
         continue_on_error=all\n\
         error_dump=1\n",
        logs.display()
    );
    if let Some(d) = duration {
        g.push_str(&format!("time_based=1\nruntime={}ms\n", d.as_millis()));
    }
    format!("{g}\n; the scenario's job\n{user}\n")
}

/// One I/O, as the probe reports it.
#[derive(Debug, Clone, PartialEq)]
struct Io {
    t: f64,
    start: f64,
    op: OpKind,
    block: u64,
    ok: bool,
    errno: Option<i32>,
}

/// What fio's run left besides its logs.
struct Ran {
    status: Option<i32>,
    timed_out: bool,
    /// Its failed I/Os, stamped as their lines came.
    errors: Vec<Io>,
    verify_failures: u64,
    /// The last of what it said otherwise.
    said: String,
}

fn run_fio(logs: &Path, env: &[(&str, OsString)], limit: Duration) -> Result<Ran> {
    let mut cmd = Command::new("fio");
    cmd.arg("--output-format=json")
        .arg(format!("--output={}", logs.join("out.json").display()))
        .arg("--eta=never")
        .arg(logs.join("job.fio"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = own_group(&mut cmd).spawn()?;
    let stderr = child.stderr.take().context("fio's stderr")?;
    let reader = std::thread::spawn(move || {
        let (mut errors, mut verify, mut said) = (Vec::new(), 0u64, String::new());
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let t = monotonic_now();
            if let Some(io) = io_error_line(&line, t) {
                errors.push(io);
            } else {
                if line.starts_with("verify: ") {
                    verify += 1;
                }
                said.push_str(line.trim());
                said.push(' ');
            }
        }
        (errors, verify, said)
    });
    let ended = wait_bounded(&mut child, limit, true)?;
    let (errors, verify_failures, said) = reader.join().unwrap_or_default();
    let skip = said.chars().count().saturating_sub(OUTPUT_CHARS);
    Ok(Ran {
        status: ended.status.code(),
        timed_out: ended.timed_out,
        errors,
        verify_failures,
        said: said
            .chars()
            .skip(skip)
            .collect::<String>()
            .trim()
            .to_string(),
    })
}

/// fio's report of a failed I/O (with `error_dump`):
/// `fio: io_u error on file /dev/sdb: Input/output error: write offset=4096, buflen=4096`.
fn io_error_line(line: &str, t: f64) -> Option<Io> {
    let rest = line.trim().strip_prefix("fio: io_u error on file ")?;
    let (head, what) = rest.rsplit_once(": ")?;
    let (_, error) = head.split_once(": ")?;
    let (dir, fields) = what.split_once(' ')?;
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.trim().strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let (offset, len) = (field("offset")?, field("buflen")?);
    Some(Io {
        t,
        start: t,
        op: op_named(dir)?,
        block: offset / len.max(1),
        ok: false,
        errno: errno_of(error),
    })
}

fn op_named(dir: &str) -> Option<OpKind> {
    match dir {
        "read" => Some(OpKind::Read),
        "write" => Some(OpKind::Write),
        "sync" => Some(OpKind::Fsync),
        "datasync" => Some(OpKind::Fdatasync),
        _ => None,
    }
}

/// The errno whose strerror text `text` is.
fn errno_of(text: &str) -> Option<i32> {
    (1..134).find(|&n| {
        std::io::Error::from_raw_os_error(n)
            .to_string()
            .starts_with(text)
    })
}

/// Every I/O in fio's total-latency logs (`io_lat.N.log`): completion time
/// (ms since the epoch), latency (ns), direction (0 read, 1 write, 2 trim),
/// size, offset.
fn read_lat_logs(dir: &Path, epoch_to_mono: f64) -> Vec<Io> {
    let mut ios = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return ios;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !(name.starts_with("io_lat.") && name.ends_with(".log")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        ios.extend(text.lines().filter_map(|l| lat_line(l, epoch_to_mono)));
    }
    ios
}

fn lat_line(line: &str, epoch_to_mono: f64) -> Option<Io> {
    let cols: Vec<u64> = line
        .split(',')
        .map(|c| c.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let [ms, lat_ns, dir, len, offset, ..] = cols[..] else {
        return None;
    };
    let op = match dir {
        0 => OpKind::Read,
        1 => OpKind::Write,
        _ => return None,
    };
    let t = ms as f64 / 1000.0 + epoch_to_mono;
    Some(Io {
        t,
        start: t - lat_ns as f64 / 1e9,
        op,
        block: offset / len.max(1),
        ok: true,
        errno: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_line_is_a_failed_op_with_its_errno_and_block() {
        let io = io_error_line(
            "fio: io_u error on file /dev/sdb: Input/output error: write offset=1052672, buflen=4096",
            12.5,
        )
        .unwrap();
        assert_eq!(
            io,
            Io {
                t: 12.5,
                start: 12.5,
                op: OpKind::Write,
                block: 257,
                ok: false,
                errno: Some(5),
            }
        );
        let io = io_error_line(
            "fio: io_u error on file /mnt/x/job.0.0: No space left on device: read offset=0, buflen=512",
            1.0,
        )
        .unwrap();
        assert_eq!((io.op, io.errno, io.block), (OpKind::Read, Some(28), 0));
        assert_eq!(
            io_error_line("fio: pid=12, err=5/file:io_u.c:1889", 1.0),
            None
        );
        assert_eq!(io_error_line("verify: bad magic header 0", 1.0), None);
    }

    #[test]
    fn a_latency_log_line_is_an_op_from_issue_to_completion() {
        // fio 3.33: time (ms since the epoch), latency (ns), direction,
        // size, offset[, priority].
        let io = lat_line(
            "1765000000123, 2500000000, 1, 4096, 8192, 0",
            -1_764_999_000.0,
        )
        .unwrap();
        assert!((io.t - 1000.123).abs() < 1e-6, "{io:?}");
        assert!((io.start - 997.623).abs() < 1e-6, "{io:?}");
        assert_eq!((io.op, io.block, io.ok), (OpKind::Write, 2, true));
        assert_eq!(lat_line("1765000000123, 10, 2, 4096, 0", 0.0), None, "trim");
        assert_eq!(lat_line("garbage", 0.0), None);
    }

    /// Real fio (ci/host-deps.sh installs it) on a file: every I/O of the
    /// job comes back from its latency log, in this clock, inside the run.
    #[test]
    fn fios_own_latency_log_comes_back_as_ops_in_the_probes_clock() {
        let logs = tempfile::tempdir().unwrap();
        let data = tempfile::NamedTempFile::new().unwrap();
        let job = "[w]\nrw=write\nbs=4k\nsize=64k\nrate_iops=50\nioengine=psync\n";
        std::fs::write(
            logs.path().join("job.fio"),
            job_file(job, logs.path(), Some(Duration::from_millis(1500)), false),
        )
        .unwrap();
        let env = [("ISCSI_CHAOS_DEVICE", data.path().as_os_str().to_owned())];
        let epoch_to_mono = -crate::realtime_offset();
        let began = monotonic_now();
        let ran = run_fio(logs.path(), &env, Duration::from_secs(20)).unwrap();
        let ended = monotonic_now();
        assert_eq!(
            (ran.status, ran.timed_out),
            (Some(0), false),
            "{}",
            ran.said
        );
        assert!(ran.errors.is_empty());
        let ios = read_lat_logs(logs.path(), epoch_to_mono);
        // 50 IOPS for 1.5 s, 16 blocks rewritten in turn.
        assert!((60..=90).contains(&ios.len()), "{} I/Os", ios.len());
        for io in &ios {
            assert!(io.ok && io.op == OpKind::Write && io.block < 16, "{io:?}");
            assert!(began - 0.01 <= io.start && io.start <= io.t && io.t <= ended + 0.01);
        }
    }

    #[test]
    fn the_job_file_puts_the_scenarios_job_after_the_probes_defaults() {
        let j = job_file(
            "[w]\nrw=randwrite\n",
            Path::new("/tmp/l"),
            Some(Duration::from_secs(30)),
            false,
        );
        let defaults = j.find("filename=${ISCSI_CHAOS_DEVICE}").unwrap();
        assert!(j.contains("write_lat_log=/tmp/l/io\n"));
        assert!(j.contains("runtime=30000ms\n") && j.contains("error_dump=1\n"));
        assert!(defaults < j.find("[w]").unwrap());
        let j = job_file("[w]\n", Path::new("/tmp/l"), None, true);
        assert!(j.contains("directory=${ISCSI_CHAOS_MOUNT}") && !j.contains("runtime"));
    }
}
