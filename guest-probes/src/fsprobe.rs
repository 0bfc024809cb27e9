//! fsprobe: a filesystem on the iSCSI disk and a file workload on it, as an
//! application sees the outage: every call's time, return and errno, the
//! filesystem's state over time, what it took to make it work again after
//! the fault, and which fsynced files survived.
//!
//! It makes the filesystem (ext4 or XFS) on the device it is given (the
//! device must belong to `--expect-session` when that is given), mounts it
//! on `--mount-dir` (a folder the harness made and wrote down, so a killed
//! run's mount is undone by the harness), and then, every `--interval-ms`:
//! creates a file, writes one stamped 4 KiB block into it, fsyncs it
//! (fdatasync every other file), renames it to its final name, fsyncs the
//! directory and reads the file back. A file is durable once its sync, its
//! rename and the directory's fsync returned 0. An fsync that fails is
//! called again on the same open file: a 0 then is the kernel reporting the
//! error once (`FsyncErrorOnce`).
//!
//! After the I/O phase it tries, in order, until the workload runs again:
//! nothing, `mount -o remount,rw`, umount + repair + mount (`FsRecovery`);
//! then reads back every durable file (`BadBlock` for each that is not
//! there whole) and unmounts. Exit status as blkprobe's.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use crate::blockdev::Device;
use crate::emit::Emitter;
use crate::signals::{secs, signalled, verify_cut_short};
use crate::stamp::{Stamper, Verdict};
use crate::watchdog::{watch, InFlight};
use crate::{monotonic_now, BlockProblem, FsMount, OpKind, ProbeEvent, Recovery};

/// Bytes of each file: one stamp.
const FILE_SIZE: usize = 4096;
/// Period of the state sampler.
const SAMPLE: Duration = Duration::from_millis(200);
/// Repeat period of Stalled reports for one operation.
const STALL_REPEAT: Duration = Duration::from_secs(1);
/// Bound of mkfs and the first mount (before the I/O phase).
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsType {
    Ext4,
    Xfs,
}

impl FsType {
    fn name(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Xfs => "xfs",
        }
    }

    /// mkfs without discard (a discard of the whole LUN over iSCSI is slow)
    /// and, for ext4, with its tables written now rather than by a
    /// background thread during the run.
    fn mkfs(self, dev: &Path) -> Command {
        let mut cmd = match self {
            FsType::Ext4 => {
                let mut c = Command::new("mkfs.ext4");
                c.args([
                    "-F",
                    "-q",
                    "-E",
                    "nodiscard,lazy_itable_init=0,lazy_journal_init=0",
                ]);
                c
            }
            FsType::Xfs => {
                let mut c = Command::new("mkfs.xfs");
                c.args(["-f", "-q", "-K"]);
                c
            }
        };
        cmd.arg(dev);
        cmd
    }

    /// The kernel's words for this filesystem giving up (shut down, or
    /// turned read-only), in its lines about the device.
    fn is_failure_line(self, line: &str) -> Option<FsMount> {
        let l = line.to_ascii_lowercase();
        match self {
            FsType::Xfs if l.contains("shut down") || l.contains("shutting down") => {
                Some(FsMount::ShutDown)
            }
            FsType::Ext4 if l.contains("shut down") || l.contains("shutdown") => {
                Some(FsMount::ShutDown)
            }
            FsType::Ext4 if l.contains("read-only") || l.contains("aborting journal") => {
                Some(FsMount::Ro)
            }
            _ => None,
        }
    }
}

/// The filesystem a probe makes: the options the fs probe and the command
/// probe share.
#[derive(clap::Args, Debug)]
pub struct FsArgs {
    /// Block device to make the filesystem on. Its contents are destroyed.
    #[arg(long)]
    pub device: PathBuf,
    /// The filesystem to make.
    #[arg(long, value_enum, default_value_t = FsType::Ext4)]
    pub fs: FsType,
    /// An empty folder to mount it on.
    #[arg(long)]
    pub mount_dir: Option<PathBuf>,
    /// mount -o options (e.g. errors=remount-ro).
    #[arg(long)]
    pub mount_options: Option<String>,
    /// XFS: /sys/fs/xfs/<dev>/error/metadata/EIO/max_retries (-1: forever,
    /// the kernel's default).
    #[arg(long, allow_hyphen_values = true)]
    pub xfs_eio_max_retries: Option<i64>,
    /// Refuse the device unless its sysfs ancestry contains /<NAME>/ (e.g. session3).
    #[arg(long, value_name = "NAME")]
    pub expect_session: Option<String>,
}

#[derive(Parser, Debug)]
#[command(
    name = "fsprobe",
    about = "File workload on a filesystem made on an iSCSI disk; one JSON event per line on stdout"
)]
struct Args {
    #[command(flatten)]
    fs: FsArgs,
    /// Period between files, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    interval_ms: u64,
    /// How long to run the workload, in seconds (default: until SIGTERM/SIGINT).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Report a call as stalled once it has been in flight this long.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    stall_threshold_ms: u64,
    /// Stop recovering and checking this many seconds after the Start event.
    #[arg(long, default_value_t = 90.0)]
    verify_until_s: f64,
    /// Bound of each recovery step's workload try and command, in seconds.
    #[arg(long, default_value_t = 15.0)]
    step_timeout_s: f64,
}

/// A command run with a time bound: its status and what it said, or why
/// it did not finish.
fn run_bounded(mut cmd: Command, limit: Duration) -> Result<String, String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut said = String::new();
                if let Some(mut o) = child.stdout.take() {
                    let _ = o.read_to_string(&mut said);
                }
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut said);
                }
                let said: String = said.split_whitespace().collect::<Vec<_>>().join(" ");
                let said: String = said.chars().take(300).collect();
                return if status.success() {
                    Ok(format!("{shown}: ok {said}").trim_end().to_string())
                } else {
                    Err(format!("{shown}: {status} {said}").trim_end().to_string())
                };
            }
            Ok(None) if Instant::now() >= until => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown}: still running after {limit:?}, killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    }
}

/// Runs `f` on its own thread and waits at most `limit` for it: a call
/// blocked in the kernel must not hold the probe. A thread that does not
/// come back is left behind (it ends with the process).
fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || drop(tx.send(f())));
    rx.recv_timeout(limit).ok()
}

/// The mount at `dir` as /proc/self/mountinfo says: Some(read-only?) or
/// None. Read-only is the mount's flag or the filesystem's own: ext4 turns
/// its superblock read-only after an aborted journal and leaves the
/// mount's flag (all /proc/self/mounts shows) at rw.
fn mount_state(dir: &Path) -> Option<bool> {
    mount_state_in(&std::fs::read_to_string("/proc/self/mountinfo").ok()?, dir)
}

fn mount_state_in(mountinfo: &str, dir: &Path) -> Option<bool> {
    let want = dir.to_str()?;
    let ro = |opts: &str| opts.split(',').any(|o| o == "ro");
    mountinfo.lines().rev().find_map(|l| {
        let (mine, sb) = l.split_once(" - ")?;
        let mut f = mine.split(' ');
        let at = f.nth(4)?;
        let opts = f.next()?;
        let sb_opts = sb.split(' ').nth(2).unwrap_or("");
        (at == want).then(|| ro(opts) || ro(sb_opts))
    })
}

/// The kernel's log, read from its end on: the lines about our device.
struct Kmsg {
    file: Option<File>,
}

impl Kmsg {
    fn open() -> Kmsg {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()
            .and_then(|mut f| f.seek(std::io::SeekFrom::End(0)).ok().map(|_| f));
        Kmsg { file }
    }

    /// The messages logged since the last call.
    fn lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(f) = self.file.as_mut() else {
            return out;
        };
        let mut buf = [0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    // "prio,seq,usec,flags;message\n continuation..."
                    if let Some((_, msg)) = rec.split_once(';') {
                        out.push(msg.lines().next().unwrap_or("").to_string());
                    }
                }
                // EPIPE: records were overwritten; go on from the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }
}

/// What the sampler knows of the filesystem and the disk under it.
struct Watched {
    fs: FsType,
    dir: PathBuf,
    /// The kernel's name of the disk (sdb, dm-3).
    disk: String,
}

impl Watched {
    fn device_state(&self) -> Option<String> {
        std::fs::read_to_string(format!("/sys/block/{}/device/state", self.disk))
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn errors(&self) -> Option<u64> {
        match self.fs {
            FsType::Ext4 => {
                std::fs::read_to_string(format!("/sys/fs/ext4/{}/errors_count", self.disk))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            }
            FsType::Xfs => None,
        }
    }

    /// Samples until `stop`, emitting each change of state.
    fn sample(&self, stop: &AtomicBool, out: &Emitter<std::io::Stdout>) {
        let mut kmsg = Kmsg::open();
        let mut judge = Judge::new(self.fs, &self.disk);
        // Changes of the filesystem's or the disk's state are events; the
        // error count rides along (it grows with every failed call).
        let mut last: Option<(FsMount, Option<String>)> = None;
        loop {
            let (mount, line) = judge.see(kmsg.lines(), mount_state(&self.dir));
            let now = (mount, self.device_state());
            if last.as_ref() != Some(&now) {
                out.emit(&ProbeEvent::FsState {
                    t: monotonic_now(),
                    mount: now.0,
                    device: now.1.clone(),
                    errors: self.errors(),
                    line: line.map(|l| l.chars().take(200).collect()),
                });
                last = Some(now);
            }
            if stop.load(SeqCst) {
                return;
            }
            std::thread::park_timeout(SAMPLE);
        }
    }
}

/// The filesystem's state from the kernel's lines about its disk and its
/// mount's flags. The kernel's word outlasts a remount: since 6.6 an ext4
/// that gave up stays rw in mountinfo (a shutdown flag makes it read-only)
/// and a remount,rw does not clear it; only an unmount ends it.
struct Judge {
    fs: FsType,
    disk: String,
    /// What the kernel said the filesystem became, and the line.
    failed: Option<FsMount>,
}

impl Judge {
    fn new(fs: FsType, disk: &str) -> Judge {
        Judge {
            fs,
            disk: disk.to_string(),
            failed: None,
        }
    }

    /// The state after `lines` with the mount's read-only flag (`None`: not
    /// mounted), and the line that changed it, if one did.
    fn see(&mut self, lines: Vec<String>, mounted_ro: Option<bool>) -> (FsMount, Option<String>) {
        let mut told = None;
        for l in lines.into_iter().filter(|l| l.contains(&self.disk)) {
            if let Some(state) = self.fs.is_failure_line(&l) {
                // A shutdown outranks read-only.
                if self.failed != Some(FsMount::ShutDown) {
                    self.failed = Some(state);
                    told = Some(l);
                }
            }
        }
        let mount = match mounted_ro {
            None => {
                self.failed = None;
                FsMount::Unmounted
            }
            Some(ro) => match self.failed {
                Some(state) => state,
                None if ro => FsMount::Ro,
                None => FsMount::Rw,
            },
        };
        (mount, told)
    }
}

/// The counts the workload keeps.
#[derive(Default)]
struct Counts {
    ops: u64,
    errors: u64,
}

/// A filesystem made on a checked disk and mounted on a folder: its making,
/// its state sampler, its repair and its unmount.
pub struct Filesystem {
    fs: FsType,
    /// The device checked, by the name mkfs and mount are given.
    dev: PathBuf,
    disk_rdev: u64,
    mount_options: Option<String>,
    xfs_eio_max_retries: Option<i64>,
    watched: Arc<Watched>,
}

/// The state sampler's thread, until [`Sampler::stop`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    /// Stops it after one more sample (which sees an unmount just made).
    pub fn stop(self) {
        std::thread::sleep(SAMPLE * 2);
        self.stop.store(true, SeqCst);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

fn errno_of(e: &std::io::Error) -> Option<i32> {
    e.raw_os_error()
}

impl Filesystem {
    /// Checks the device (the guard on a descriptor: session, block device,
    /// not claimed) and the mount folder (empty); makes nothing yet.
    pub fn setup(args: &FsArgs) -> Result<Filesystem> {
        let mount_dir = args.mount_dir.as_ref().context("--mount-dir is needed")?;
        let checked = Device::open(&args.device, FILE_SIZE, args.expect_session.as_deref())?;
        let rdev = checked.stat()?.rdev;
        drop(checked);
        let disk = std::fs::canonicalize(&args.device)?
            .file_name()
            .and_then(|n| n.to_str())
            .context("device name")?
            .to_string();
        let dir = std::fs::canonicalize(mount_dir)
            .with_context(|| format!("mount dir {}", mount_dir.display()))?;
        if std::fs::read_dir(&dir)?.next().is_some() {
            bail!("mount dir {} is not empty", dir.display());
        }
        Ok(Filesystem {
            fs: args.fs,
            dev: args.device.clone(),
            disk_rdev: rdev,
            mount_options: args.mount_options.clone(),
            xfs_eio_max_retries: args.xfs_eio_max_retries,
            watched: Arc::new(Watched {
                fs: args.fs,
                dir,
                disk,
            }),
        })
    }

    /// The device's name still stands for the disk checked.
    fn same_disk(&self) -> Result<()> {
        let now = std::fs::metadata(&self.dev)?.rdev();
        if now != self.disk_rdev {
            bail!("{} is another disk now", self.dev.display());
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.watched.dir
    }

    pub fn device(&self) -> &Path {
        &self.dev
    }

    fn mount_cmd(&self) -> Command {
        let mut cmd = Command::new("mount");
        cmd.args(["-t", self.fs.name()]);
        if let Some(o) = &self.mount_options {
            cmd.args(["-o", o]);
        }
        cmd.arg(&self.dev).arg(self.dir());
        cmd
    }

    /// Makes the filesystem and mounts it in a mount namespace of the
    /// probe's own (see [`private_mounts`]). Call before any thread starts.
    pub fn make_and_mount(&self) -> Result<()> {
        private_mounts()?;
        self.same_disk()?;
        run_bounded(self.fs.mkfs(&self.dev), SETUP_TIMEOUT).map_err(anyhow::Error::msg)?;
        self.same_disk()?;
        run_bounded(self.mount_cmd(), SETUP_TIMEOUT).map_err(anyhow::Error::msg)?;
        if std::fs::metadata(self.dir())?.dev() != self.disk_rdev {
            let _ = run_bounded(umount(self.dir(), false), SETUP_TIMEOUT);
            bail!("what was mounted is not the disk checked");
        }
        if let (FsType::Xfs, Some(n)) = (self.fs, self.xfs_eio_max_retries) {
            let knob = format!(
                "/sys/fs/xfs/{}/error/metadata/EIO/max_retries",
                self.watched.disk
            );
            std::fs::write(&knob, n.to_string()).with_context(|| format!("writing {knob}"))?;
        }
        Ok(())
    }

    pub fn umount_repair_mount(
        &self,
        detail: &mut Vec<String>,
        left: impl Fn() -> Duration,
    ) -> Result<(), String> {
        detail.push(run_bounded(umount(self.dir(), false), left())?);
        self.same_disk().map_err(|e| e.to_string())?;
        match self.fs {
            FsType::Ext4 => {
                let mut fsck = Command::new("e2fsck");
                fsck.arg("-fy").arg(&self.dev);
                // Exit 1 and 2: errors corrected.
                match run_bounded(fsck, left()) {
                    Ok(said) => detail.push(said),
                    Err(said)
                        if said.contains("exit status: 1") || said.contains("exit status: 2") =>
                    {
                        detail.push(said)
                    }
                    Err(said) => return Err(said),
                }
            }
            FsType::Xfs => {
                // A dirty log is replayed by mounting; xfs_repair then
                // checks what is left.
                detail.push(run_bounded(self.mount_cmd(), left())?);
                detail.push(run_bounded(umount(self.dir(), false), left())?);
                let mut repair = Command::new("xfs_repair");
                repair.arg(&self.dev);
                detail.push(run_bounded(repair, left())?);
            }
        }
        detail.push(run_bounded(self.mount_cmd(), left())?);
        Ok(())
    }

    /// Starts sampling its state into `out`.
    pub fn sampler(&self, out: &Arc<Emitter<std::io::Stdout>>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (w, st, out) = (self.watched.clone(), stop.clone(), out.clone());
        Sampler {
            stop,
            thread: std::thread::spawn(move || w.sample(&st, &out)),
        }
    }

    /// Unmounts it (lazily if a plain umount fails).
    pub fn unmount(&self, limit: Duration) {
        let _ = run_bounded(umount(self.dir(), false), limit)
            .or_else(|_| run_bounded(umount(self.dir(), true), limit));
    }
}

struct Probe {
    args: Args,
    fsys: Filesystem,
    stamper: Stamper,
}

impl Probe {
    fn setup(args: Args) -> Result<Probe> {
        Ok(Probe {
            fsys: Filesystem::setup(&args.fs)?,
            stamper: Stamper::random(),
            args,
        })
    }

    fn dir(&self) -> &Path {
        self.fsys.dir()
    }

    fn run(self, out: Arc<Emitter<std::io::Stdout>>) {
        let sampler = self.fsys.sampler(&out);
        let started = Instant::now();
        out.emit(&ProbeEvent::Start {
            t: monotonic_now(),
            device: self.fsys.device().display().to_string(),
            block_size: FILE_SIZE as u32,
            blocks: 0,
            interval_ms: self.args.interval_ms,
        });
        let inflight = Arc::new(InFlight::new());
        let dog = {
            let (state, out) = (inflight.clone(), out.clone());
            let threshold = Duration::from_millis(self.args.stall_threshold_ms);
            std::thread::spawn(move || watch(&state, threshold, STALL_REPEAT, &out))
        };
        let mut counts = Counts::default();
        let durable = self.workload(&inflight, &out, &mut counts);
        inflight.stop();
        dog.thread().unpark();
        let _ = dog.join();

        out.emit(&ProbeEvent::VerifyStart {
            t: monotonic_now(),
            acked: durable.len() as u64,
        });
        let until = started + secs("verify-until-s", self.args.verify_until_s).unwrap_or_default();
        let recovered = self.recover(until, &out);
        let (mut lost, mut corrupt, mut unverified) = (0, 0, 0);
        for &k in &durable {
            let problem = if recovered {
                self.check_file(k, until)
            } else {
                Some((BlockProblem::Unreadable, None))
            };
            match problem {
                None => {}
                Some((p, found)) => {
                    match p {
                        BlockProblem::Lost => lost += 1,
                        BlockProblem::Corrupt => corrupt += 1,
                        BlockProblem::Unreadable => unverified += 1,
                    }
                    out.emit(&ProbeEvent::BadBlock {
                        t: monotonic_now(),
                        seq: k,
                        block: k,
                        problem: p,
                        found,
                    });
                }
            }
        }
        self.fsys.unmount(self.step_timeout());
        // The sampler's last line: unmounted.
        sampler.stop();
        out.emit(&ProbeEvent::Summary {
            t: monotonic_now(),
            acked_writes: durable.len() as u64,
            lost_writes: lost,
            corrupt_writes: corrupt,
            unverified_writes: unverified,
            ops: counts.ops,
            errors: counts.errors,
        });
    }

    fn step_timeout(&self) -> Duration {
        secs("step-timeout-s", self.args.step_timeout_s).unwrap_or(Duration::from_secs(15))
    }

    /// The workload until the end of the I/O phase; returns the durable files.
    fn workload(
        &self,
        inflight: &InFlight,
        out: &Emitter<std::io::Stdout>,
        counts: &mut Counts,
    ) -> Vec<u64> {
        let t0 = Instant::now();
        let end = self
            .args
            .duration_s
            .and_then(|d| secs("duration-s", d).ok())
            .map(|d| t0 + d);
        let interval = Duration::from_millis(self.args.interval_ms);
        let mut durable = Vec::new();
        let dir = match File::open(self.dir()) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("fsprobe: opening {}: {e}", self.dir().display());
                return durable;
            }
        };
        let mut op = |kind: OpKind, k: u64, io: &mut dyn FnMut() -> std::io::Result<()>| {
            let start = inflight.begin(kind, k);
            let res = io();
            let t = monotonic_now();
            inflight.end();
            counts.ops += 1;
            counts.errors += u64::from(res.is_err());
            out.emit(&ProbeEvent::Op {
                t,
                start: start as f64 / 1e9,
                op: kind,
                seq: k,
                block: k,
                ok: res.is_ok(),
                errno: res.as_ref().err().and_then(errno_of),
            });
            res
        };
        let mut buf = vec![0u8; FILE_SIZE];
        let mut next = t0;
        for k in 0u64.. {
            loop {
                if signalled() || end.is_some_and(|e| Instant::now() >= e) {
                    return durable;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                std::thread::sleep((next - now).min(Duration::from_millis(50)));
            }
            next += interval;
            // Behind (a stall): start again from now, do not catch up.
            next = next.max(Instant::now());
            let (tmp, fin) = (
                self.dir().join(format!("w{k}.tmp")),
                self.dir().join(format!("f{k}")),
            );
            let mut file = None;
            let created = op(OpKind::Create, k, &mut || {
                file = Some(OpenOptions::new().write(true).create_new(true).open(&tmp)?);
                Ok(())
            });
            let Some(mut file) = file.filter(|_| created.is_ok()) else {
                continue;
            };
            self.stamper.stamp(&mut buf, k, k);
            if op(OpKind::Write, k, &mut || file.write_all(&buf)).is_err() {
                continue;
            }
            let sync = if k % 2 == 0 {
                OpKind::Fsync
            } else {
                OpKind::Fdatasync
            };
            let do_sync = |f: &File| match sync {
                OpKind::Fsync => f.sync_all(),
                _ => f.sync_data(),
            };
            let synced = op(sync, k, &mut || do_sync(&file));
            if let Err(e) = &synced {
                let errno = errno_of(e).unwrap_or(0);
                if op(sync, k, &mut || do_sync(&file)).is_ok() {
                    out.emit(&ProbeEvent::FsyncErrorOnce {
                        t: monotonic_now(),
                        file: k,
                        errno,
                    });
                }
            }
            drop(file);
            let renamed = op(OpKind::Rename, k, &mut || std::fs::rename(&tmp, &fin));
            if renamed.is_err() {
                continue;
            }
            let dir_synced = op(OpKind::Fsync, k, &mut || dir.sync_all());
            if synced.is_ok() && dir_synced.is_ok() {
                durable.push(k);
            }
            let mut back = Vec::with_capacity(FILE_SIZE);
            let _ = op(OpKind::Read, k, &mut || {
                back.clear();
                File::open(&fin)?.read_to_end(&mut back).map(drop)
            });
        }
        durable
    }

    /// One round of the workload on a fresh file (bounded): whether the
    /// filesystem works, and what failed if not.
    fn works(&self, n: u64, limit: Duration) -> Result<(), String> {
        let dir = self.dir().to_path_buf();
        let stamper = self.stamper;
        bounded(limit, move || -> Result<(), String> {
            let tmp = dir.join(format!("check{n}.tmp"));
            let fin = dir.join(format!("check{n}"));
            let step = |what: &str, r: std::io::Result<()>| r.map_err(|e| format!("{what}: {e}"));
            let mut buf = vec![0u8; FILE_SIZE];
            stamper.stamp(&mut buf, u64::MAX - n, u64::MAX - n);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| format!("create: {e}"))?;
            step("write", f.write_all(&buf))?;
            step("fsync", f.sync_all())?;
            step("rename", std::fs::rename(&tmp, &fin))?;
            step("fsync dir", File::open(&dir).and_then(|d| d.sync_all()))?;
            Ok(())
        })
        .unwrap_or_else(|| Err(format!("the workload blocked for {limit:?}")))
    }

    /// Tries each recovery step until the workload runs; returns whether it
    /// does. Each step is one event.
    fn recover(&self, until: Instant, out: &Emitter<std::io::Stdout>) -> bool {
        let left = || {
            until
                .saturating_duration_since(Instant::now())
                .min(self.step_timeout())
        };
        for (n, step) in [Recovery::ByItself, Recovery::Remount, Recovery::Umount]
            .into_iter()
            .enumerate()
        {
            if verify_cut_short() || left().is_zero() {
                break;
            }
            let mut detail = Vec::new();
            let prepared = match step {
                Recovery::ByItself => Ok(()),
                Recovery::Remount => {
                    let mut cmd = Command::new("mount");
                    cmd.args(["-o", "remount,rw"]).arg(self.dir());
                    run_bounded(cmd, left()).map(|said| detail.push(said))
                }
                _ => self.fsys.umount_repair_mount(&mut detail, left),
            };
            let ok = match prepared {
                Ok(()) => match self.works(n as u64, left()) {
                    Ok(()) => true,
                    Err(e) => {
                        detail.push(e);
                        false
                    }
                },
                Err(e) => {
                    detail.push(e);
                    false
                }
            };
            out.emit(&ProbeEvent::FsRecovery {
                t: monotonic_now(),
                step,
                ok,
                detail: detail.join("; "),
            });
            if ok {
                return true;
            }
        }
        out.emit(&ProbeEvent::FsRecovery {
            t: monotonic_now(),
            step: Recovery::Never,
            ok: false,
            detail: "no step made the workload run again".into(),
        });
        false
    }

    /// Reads durable file `k` back (bounded): None when it holds its stamp.
    fn check_file(
        &self,
        k: u64,
        until: Instant,
    ) -> Option<(BlockProblem, Option<iscsi_chaos_formats::probe::Found>)> {
        let path = self.dir().join(format!("f{k}"));
        let limit = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let read = bounded(limit, move || -> std::io::Result<Vec<u8>> {
            let mut buf = Vec::with_capacity(FILE_SIZE);
            File::open(&path)?.read_to_end(&mut buf)?;
            Ok(buf)
        });
        match read {
            None => Some((BlockProblem::Unreadable, None)),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Some((BlockProblem::Lost, None))
            }
            Some(Err(_)) => Some((BlockProblem::Unreadable, None)),
            Some(Ok(buf)) if buf.len() != FILE_SIZE => Some((
                BlockProblem::Lost,
                (!buf.is_empty()).then(|| iscsi_chaos_formats::probe::Found::Torn {
                    sectors: Vec::new(),
                    header_seq: None,
                }),
            )),
            Some(Ok(buf)) => match self.stamper.check(&buf, k, k) {
                Verdict::Ok => None,
                Verdict::Lost => Some((BlockProblem::Lost, Some(self.stamper.inspect(&buf, k, k)))),
                Verdict::Corrupt => Some((
                    BlockProblem::Corrupt,
                    Some(self.stamper.inspect(&buf, k, k)),
                )),
            },
        }
    }
}

/// Moves the probe into a mount namespace of its own, every mount private:
/// the filesystem it mounts is seen by it and its children only (the
/// command probe's command), never copied into a namespace another
/// process makes meanwhile (multipathd's, which would keep the disk busy
/// after the probe's umount: e2fsck "in use"), never propagated to the
/// host's, and gone with the probe whatever ends it. It must be called
/// while the process has one thread (unshare refuses otherwise).
fn private_mounts() -> Result<()> {
    // SAFETY: plain system calls with constant, NUL-terminated arguments.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            bail!("unshare(CLONE_NEWNS): {}", std::io::Error::last_os_error());
        }
        let flags = libc::MS_REC | libc::MS_PRIVATE;
        let root = c"/".as_ptr();
        if libc::mount(
            std::ptr::null(),
            root,
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ) != 0
        {
            bail!(
                "making the probe's mounts private: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

fn umount(dir: &Path, lazy: bool) -> Command {
    let mut cmd = Command::new("umount");
    if lazy {
        cmd.arg("-l");
    }
    cmd.arg(dir);
    cmd
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::probe_life(
        "fsprobe",
        || {
            let p = Probe::setup(args)?;
            p.fsys.make_and_mount()?;
            Ok(p)
        },
        Probe::run,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_kernel_s_words_for_a_failed_filesystem_are_read_per_filesystem() {
        let xfs = "XFS (sdb): Log I/O Error (0x2) detected at xlog_ioend_work+0x7e/0x80 (fs/xfs/xfs_log.c:1378).  Shutting down filesystem.";
        assert_eq!(FsType::Xfs.is_failure_line(xfs), Some(FsMount::ShutDown));
        assert_eq!(
            FsType::Xfs.is_failure_line(
                "XFS (sdb): Please unmount the filesystem and rectify the problem(s)"
            ),
            None
        );
        let ext4 = "EXT4-fs (sdb): Remounting filesystem read-only";
        assert_eq!(FsType::Ext4.is_failure_line(ext4), Some(FsMount::Ro));
        assert_eq!(
            FsType::Ext4.is_failure_line("Aborting journal on device sdb-8."),
            Some(FsMount::Ro)
        );
        assert_eq!(
            FsType::Ext4.is_failure_line("EXT4-fs (sdb): shut down requested (2)"),
            Some(FsMount::ShutDown)
        );
        assert_eq!(
            FsType::Ext4.is_failure_line("EXT4-fs (sdb): mounted filesystem"),
            None
        );
    }

    #[test]
    fn the_kernel_s_word_holds_until_unmount_and_the_mount_s_flag_counts_too() {
        let mut j = Judge::new(FsType::Ext4, "sdb");
        let l = |s: &str| vec![s.to_string()];
        assert_eq!(j.see(vec![], Some(false)), (FsMount::Rw, None));
        // Another disk's line is not ours.
        let other = "EXT4-fs (sdc): Remounting filesystem read-only";
        assert_eq!(j.see(l(other), Some(false)).0, FsMount::Rw);
        let ours = "EXT4-fs (sdb): Remounting filesystem read-only";
        assert_eq!(
            j.see(l(ours), Some(false)),
            (FsMount::Ro, Some(ours.into()))
        );
        // A remount,rw that "worked": the kernel's word still holds.
        assert_eq!(j.see(vec![], Some(false)).0, FsMount::Ro);
        assert_eq!(j.see(vec![], None).0, FsMount::Unmounted);
        assert_eq!(j.see(vec![], Some(false)).0, FsMount::Rw);
        // Read-only by the mount's flag alone (errors=remount-ro on 6.1).
        assert_eq!(j.see(vec![], Some(true)).0, FsMount::Ro);
        let mut x = Judge::new(FsType::Xfs, "sdb");
        let down = "XFS (sdb): Filesystem has been shut down due to log error (0x2).";
        assert_eq!(x.see(l(down), Some(false)).0, FsMount::ShutDown);
    }

    #[test]
    fn a_bounded_command_reports_its_status_and_words_and_is_killed_past_its_bound() {
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo fine"]);
        assert!(run_bounded(ok, Duration::from_secs(5))
            .unwrap()
            .ends_with("ok fine"));
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo broken >&2; exit 3"]);
        let e = run_bounded(bad, Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("exit status: 3") && e.ends_with("broken"), "{e}");
        let mut slow = Command::new("sleep");
        slow.arg("5");
        let e = run_bounded(slow, Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("killed"), "{e}");
    }

    #[test]
    fn a_mount_is_found_by_its_folder_and_read_only_by_either_flag() {
        assert_eq!(mount_state(Path::new("/proc")), Some(false));
        assert_eq!(mount_state(Path::new("/no/such/folder")), None);
        let info = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    90 22 8:16 / /m rw,relatime shared:9 - ext4 /dev/sdb ro,relatime\n\
                    91 22 8:32 / /n ro,relatime - xfs /dev/sdc rw,attr2\n";
        assert_eq!(mount_state_in(info, Path::new("/")), Some(false));
        // ext4 after an aborted journal: the superblock is read-only.
        assert_eq!(mount_state_in(info, Path::new("/m")), Some(true));
        assert_eq!(mount_state_in(info, Path::new("/n")), Some(true));
    }

    #[test]
    fn the_probe_refuses_what_it_must_not_format() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("disk");
        std::fs::write(&file, vec![0u8; 8192]).unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let args = |extra: &[&str]| {
            let mut v: Vec<OsString> =
                vec!["fsprobe".into(), "--device".into(), file.clone().into()];
            v.extend(["--mount-dir".into(), mnt.clone().into()]);
            v.extend(extra.iter().map(OsString::from));
            Args::parse_from(v)
        };
        // A regular file is not in a session.
        let e = Probe::setup(args(&["--expect-session", "session1"]))
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("session1"), "{e:#}");
        // A mount folder with something in it.
        std::fs::write(mnt.join("x"), b"x").unwrap();
        let e = Probe::setup(args(&[])).err().unwrap();
        assert!(format!("{e:#}").contains("not empty"), "{e:#}");
    }
}
