//! Booting the lab: one QEMU process per `lab run`, one job per boot.
//!
//! The guest's PID 1 (recipe/guest-init.sh) mounts three 9p shares: `job`
//! (at [`JOB_MOUNT`]: the command to run, the files the caller put there,
//! and afterwards the command's exit status), `work` (optional: a host
//! folder such as the workspace, read-only, at the same path as on the host,
//! so absolute paths baked into test binaries hold) and `out` (read-write,
//! same path too).
//! Invariant: when `run` returns, QEMU has exited and the job folder is gone,
//! whether the command finished, the deadline passed, or Ctrl-C came.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::host::{cache_dir, require_tool};
use crate::image::Image;
use crate::interrupt;

/// Where the guest sees the job share.
pub const JOB_MOUNT: &str = "/lab/job";

/// Exit status when the VM was killed at the deadline (as timeout(1)).
const DEADLINE_STATUS: i32 = 124;
/// Exit status when the guest ended without reporting the command's status.
const NO_STATUS: i32 = 125;

/// What one boot measured, besides the command's exit status.
pub struct Boot {
    pub status: i32,
    /// From QEMU's start to the guest starting the command (guest uptime).
    pub boot_to_command_s: Option<f64>,
    /// From QEMU's start to its exit.
    pub wall_s: f64,
}

/// One job: what the guest sees and runs.
#[derive(Debug, Default, Clone)]
pub struct Job {
    /// Shared read-only at the same path; the command's working directory
    /// (`/` without one).
    pub work: Option<PathBuf>,
    /// Shared read-write at the same path (created if missing).
    pub out: PathBuf,
    /// Copied onto the job share before the boot: (host file, path below
    /// the share); the guest finds them below [`JOB_MOUNT`].
    pub files: Vec<(PathBuf, PathBuf)>,
    /// The command, run as root.
    pub cmd: Vec<String>,
    /// (guest text, host text): replaced in every console line, so that
    /// messages about copied files name the host's paths.
    pub shown_as: Vec<(String, String)>,
}

/// How to boot: shared by `lab run`, `run --lab`, `chaos` and `test`.
#[derive(Args, Clone, Debug)]
pub struct VmArgs {
    /// Kill the VM if its command has not finished after this many seconds
    /// (the default suite one run at a time takes about 35 minutes under TCG).
    #[arg(long = "lab-timeout", alias = "timeout", default_value_t = 3600)]
    pub timeout: u64,
    /// Guest memory in MiB (default: what the lanes of as many vCPUs as the
    /// host has cores need, at least 2048).
    #[arg(long)]
    pub memory_mib: Option<u32>,
    /// Accelerator: auto (KVM if it really boots a kernel here, TCG otherwise), kvm or tcg.
    #[arg(long, default_value = "auto", env = "ISCSI_CHAOS_LAB_ACCEL")]
    pub accel: String,
}

/// Boots the image, runs the job's command in the guest, returns its exit status.
pub fn run(image: &Image, args: &VmArgs, job: &Job) -> Result<i32> {
    boot(image, args, job).map(|b| b.status)
}

/// As [`run`], with the boot's timings.
pub fn boot(image: &Image, args: &VmArgs, job: &Job) -> Result<Boot> {
    require_tool("qemu-system-x86_64", "qemu-system-x86")?;
    fs::create_dir_all(&job.out).with_context(|| format!("creating {}", job.out.display()))?;
    let out = job.out.canonicalize()?;
    let work = job.work.as_ref().map(|w| w.canonicalize()).transpose()?;
    let dir = JobDir::create()?;
    for (from, to) in &job.files {
        let dest = dir.path().join(to);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(from, &dest)
            .with_context(|| format!("copying {} to the lab's job share", from.display()))?;
    }
    fs::write(
        dir.path().join("run.sh"),
        job_script(work.as_deref(), &out, &job.cmd),
    )?;

    let accel = choose_accel(image, &args.accel)?;
    let mut qemu = qemu_command(image, args, &accel);
    qemu.arg("-virtfs").arg(share("job", dir.path(), false));
    if let Some(work) = &work {
        qemu.arg("-virtfs").arg(share("work", work, true));
    }
    qemu.arg("-virtfs").arg(share("out", &out, false));
    let started = Instant::now();
    eprintln!(
        "lab: booting {} ({accel}); output folder {}",
        image.release,
        out.display()
    );
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let console = stream_console(&mut child, job.shown_as.clone());
    let outcome = supervise(&mut child, Duration::from_secs(args.timeout));
    let boot_to_command_s = console.join().ok().flatten();
    let elapsed = started.elapsed().as_secs_f64();
    let boot = |status| Boot {
        status,
        boot_to_command_s,
        wall_s: elapsed,
    };
    match outcome {
        Outcome::Exited => {}
        Outcome::Deadline => {
            eprintln!(
                "lab: the VM did not finish within {} s and was killed (last output above)",
                args.timeout
            );
            return Ok(boot(DEADLINE_STATUS));
        }
        Outcome::Interrupted => bail!("interrupted: the VM was stopped"),
    }
    match fs::read_to_string(dir.path().join("status")) {
        Ok(status) => {
            let status: i32 = status.trim().parse().unwrap_or(NO_STATUS);
            eprintln!("lab: command exited with status {status}; whole run {elapsed:.1} s");
            Ok(boot(status))
        }
        Err(_) => {
            eprintln!("lab: the guest stopped without reporting the command's status (kernel panic or crash? see output above)");
            Ok(boot(NO_STATUS))
        }
    }
}

/// The shell script the guest runs: mounts at host paths, then the command.
fn job_script(work: Option<&Path>, out: &Path, cmd: &[String]) -> String {
    let mut script = String::from("set -e\n");
    script.push_str(&format!("LAB_OUT={}\n", quote(out)));
    if let Some(work) = work {
        script.push_str(&format!("LAB_WORK={}\n", quote(work)));
        script.push_str("mkdir -p \"$LAB_WORK\"\n");
        script.push_str("mount --bind /lab/work \"$LAB_WORK\"\n");
    }
    script.push_str("mkdir -p \"$LAB_OUT\" 2>/dev/null || true\n");
    // LIO's db_root folder for reservation state, as targetcli's setup
    // leaves it on a host: without it LIO refuses every PERSISTENT RESERVE
    // OUT (the guest is thrown away after the run).
    script.push_str("mkdir -p /var/target/pr\n");
    script.push_str("mount --bind /lab/out \"$LAB_OUT\"\n");
    match work {
        Some(_) => script.push_str("cd \"$LAB_WORK\"\nset +e\n"),
        None => script.push_str("cd /\nset +e\n"),
    }
    // The guest's console is a serial terminal whose output ends up in the
    // host's log: progress as plain lines, not a redrawn bar.
    script.push_str("export ISCSI_CHAOS_PROGRESS=plain\n");
    for var in ["RUST_LOG", "RUST_BACKTRACE", "ISCSI_CHAOS_LOG"] {
        if let Ok(value) = std::env::var(var) {
            script.push_str(&format!("export {var}={}\n", quote(Path::new(&value))));
        }
    }
    let words: Vec<String> = cmd.iter().map(|w| quote(Path::new(w))).collect();
    script.push_str(&words.join(" "));
    script.push('\n');
    script
}

fn quote(word: &Path) -> String {
    format!("'{}'", word.to_string_lossy().replace('\'', "'\\''"))
}

fn share(tag: &str, path: &Path, readonly: bool) -> String {
    let mut arg = format!(
        "local,path={},mount_tag={tag},security_model=none",
        path.display()
    );
    if readonly {
        arg.push_str(",readonly=on");
    }
    arg
}

fn qemu_command(image: &Image, args: &VmArgs, accel: &str) -> Command {
    let mut qemu = Command::new("qemu-system-x86_64");
    let cpu = if accel == "kvm" { "host" } else { "max" };
    // As many vCPUs as the host has cores: the harness runs lanes side by
    // side (`--jobs`, chosen from the guest's CPUs).
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    qemu.args(["-machine", &format!("q35,accel={accel}")])
        .args(["-cpu", cpu, "-smp", &cpus.to_string()])
        .args([
            "-m",
            &args
                .memory_mib
                .unwrap_or_else(|| default_memory_mib(cpus))
                .to_string(),
        ])
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
        // The image is the cache: the guest writes to a throw-away overlay.
        .args(["-no-reboot", "-snapshot", "-nic", "none"])
        .arg("-kernel")
        .arg(image.kernel())
        .arg("-initrd")
        .arg(image.initrd())
        // The console shows emergencies and alerts (a panic) only: the
        // filesystems the probes break log a critical line per failed
        // call, and each costs serial time under TCG. The harness reads
        // every line from /dev/kmsg anyway.
        .args([
            "-append",
            "root=/dev/vda rw console=ttyS0 quiet loglevel=2 init=/usr/local/sbin/lab-init panic=-1",
        ])
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio",
            image.rootfs().display()
        ));
    qemu
}

/// Guest memory for `cpus` vCPUs: the system (about 512 MiB with iscsid and
/// the harness) plus 256 MiB for each lane the harness runs at once by
/// default there (3 per 2 CPUs, at most 8: `runner::suite` in the harness),
/// at least 2048 MiB.
pub fn default_memory_mib(cpus: usize) -> u32 {
    let lanes = (cpus * 3 / 2).clamp(1, 8) as u32;
    (512 + 256 * lanes).max(2048)
}

/// KVM only when it really boots a kernel here (a PVM host exposes /dev/kvm
/// but cannot run a stock kernel). The answer is cached per host kernel.
fn choose_accel(image: &Image, wanted: &str) -> Result<String> {
    match wanted {
        "tcg" => return Ok("tcg".into()),
        "kvm" => return Ok("kvm".into()),
        "auto" => {}
        other => bail!("--accel must be auto, kvm or tcg, not `{other}`"),
    }
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok("tcg".into());
    }
    let host_kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cache = cache_dir().join(format!("kvm-works-{}", host_kernel.trim()));
    if let Ok(answer) = fs::read_to_string(&cache) {
        return Ok(answer.trim().to_string());
    }
    let accel = if kvm_boots(image) { "kvm" } else { "tcg" };
    let _ = fs::create_dir_all(cache_dir());
    let _ = fs::write(&cache, accel);
    eprintln!(
        "lab: KVM check: using {accel} (cached in {})",
        cache.display()
    );
    Ok(accel.into())
}

/// Boots the kernel alone under KVM and waits a few seconds for its banner.
fn kvm_boots(image: &Image) -> bool {
    let child = Command::new("qemu-system-x86_64")
        .args(["-machine", "q35,accel=kvm", "-cpu", "host", "-m", "256"])
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
        .args(["-no-reboot", "-nic", "none", "-kernel"])
        .arg(image.kernel())
        .args(["-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(13).any(|w| w == b"Linux version") {
                let _ = tx.send(());
                return;
            }
        }
    });
    let booted = rx.recv_timeout(Duration::from_secs(6)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    booted
}

/// The guest's init prints this, with its uptime, just before the command.
const JOB_MARKER: &str = "lab: running job after ";

/// Streams the serial console (the command's output) and QEMU's own errors;
/// returns the guest's boot-to-command time if it reported one.
fn stream_console(
    child: &mut Child,
    shown_as: Vec<(String, String)>,
) -> std::thread::JoinHandle<Option<f64>> {
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        let errors = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("qemu: {line}");
            }
        });
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut out = std::io::stdout();
        let mut boot_to_command = None;
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let mut text = clean_console_line(&line);
            for (guest, host) in &shown_as {
                if text.contains(guest.as_str()) {
                    text = text.replace(guest.as_str(), host);
                }
            }
            if let Some(rest) = text.strip_prefix(JOB_MARKER) {
                boot_to_command = rest.trim_end_matches(" s").parse::<f64>().ok();
            }
            if !text.is_empty() && !is_firmware_noise(&text) {
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
            line.clear();
        }
        let _ = errors.join();
        boot_to_command
    })
}

/// Drops terminal escape sequences and carriage returns from a console line.
fn clean_console_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ params final-byte; other escapes: ESC + one char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' | '\n' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim_end().to_string()
}

fn is_firmware_noise(line: &str) -> bool {
    line.starts_with("SeaBIOS") || line.starts_with("Booting from ROM") || line == "c"
}

enum Outcome {
    Exited,
    Deadline,
    Interrupted,
}

/// Waits for QEMU, killing it at the deadline or on Ctrl-C/SIGTERM.
fn supervise(child: &mut Child, deadline: Duration) -> Outcome {
    let started = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            // The terminal's SIGINT reaches QEMU too, which then exits first.
            return if interrupt::requested() {
                Outcome::Interrupted
            } else {
                Outcome::Exited
            };
        }
        let outcome = if interrupt::requested() {
            Outcome::Interrupted
        } else if started.elapsed() > deadline {
            Outcome::Deadline
        } else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let _ = child.kill();
        let _ = child.wait();
        return outcome;
    }
}

/// The job share: a private temporary folder, removed on drop.
struct JobDir(PathBuf);

impl JobDir {
    fn create() -> Result<JobDir> {
        let base = cache_dir().join("jobs");
        fs::create_dir_all(&base)?;
        for n in 0..1000 {
            let path = base.join(format!("job-{}-{n}", std::process::id()));
            if fs::create_dir(&path).is_ok() {
                // It holds the binaries and inputs of the job: root's alone.
                fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
                return Ok(JobDir(path));
            }
        }
        bail!("could not create a job folder in {}", base.display())
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_memory_grows_with_the_lanes_of_its_vcpus() {
        assert_eq!(default_memory_mib(2), 2048);
        assert_eq!(default_memory_mib(4), 2048);
        // 8 vCPUs: 8 lanes (the cap) of 256 MiB beside the system.
        assert_eq!(default_memory_mib(8), 512 + 8 * 256);
        assert_eq!(default_memory_mib(64), 512 + 8 * 256);
    }

    #[test]
    fn console_lines_lose_escapes_and_carriage_returns() {
        assert_eq!(
            clean_console_line(b"\x1bc\x1b[?7l\x1b[2Jlab: up\r\n"),
            "lab: up"
        );
        assert_eq!(clean_console_line(b"plain text\r\n"), "plain text");
    }

    #[test]
    fn job_script_quotes_every_word() {
        let script = job_script(
            Some(Path::new("/w")),
            Path::new("/o"),
            &["sh".into(), "-c".into(), "echo 'a b'".into()],
        );
        assert!(
            script.ends_with("'sh' '-c' 'echo '\\''a b'\\'''\n"),
            "{script}"
        );
        assert!(script.contains("LAB_WORK='/w'"));
        assert!(script.contains("export ISCSI_CHAOS_PROGRESS=plain\n"));
        let bare = job_script(None, Path::new("/o"), &["true".into()]);
        assert!(
            !bare.contains("LAB_WORK") && bare.contains("cd /\n"),
            "{bare}"
        );
    }
}
