//! Every external program the harness runs starts here: with a time bound,
//! killed when its handle is dropped, and carrying our marker in its
//! environment so that a later kill can check the process is ours.

use std::io::{Read, Write};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

/// The environment variable every process we start carries; its value is
/// the run id (or `cleanup` for the cleanup command).
pub const MARKER_VAR: &str = "ISCSI_CHAOS_RUN";

/// Bound on a management tool (iscsiadm, nft, dmsetup, losetup, modprobe).
/// Generous: under TCG a busy iscsiadm takes seconds, never this long.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

static MARKER: OnceLock<String> = OnceLock::new();

/// Sets the marker value for this process (once; later calls are ignored).
pub fn set_marker(value: &str) {
    let _ = MARKER.set(value.to_string());
}

fn marker() -> &'static str {
    MARKER.get().map(String::as_str).unwrap_or("harness")
}

/// A tokio command for `program`: killed on drop, marked.
pub fn command(program: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.kill_on_drop(true).env(MARKER_VAR, marker());
    cmd
}

/// Starts `cmd` so that it is SIGKILLed when the harness dies, however it
/// dies: no process of ours goes on writing to a disk after us.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
/// not the process. Tokio's blocking threads come and go (an idle one exits
/// after 10 s), and a probe forked on one was SIGKILLed mid-run while other
/// lanes kept the runtime busy. So the fork happens on one thread that lives
/// as long as the process, and the child checks it was not orphaned before
/// the signal was armed.
pub async fn spawn_dying_with_harness(
    mut cmd: tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    type Job = Box<dyn FnOnce() + Send>;
    static FORKER: OnceLock<std::sync::mpsc::Sender<Job>> = OnceLock::new();
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe; nothing else runs in
    // the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("the harness died"));
            }
            Ok(())
        });
    }
    let forker = FORKER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("forker".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("starting the forker thread");
        tx
    });
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The child is reaped by this runtime's process driver.
        let _entered = runtime.enter();
        let _ = tx.send(cmd.spawn());
    });
    forker
        .send(job)
        .map_err(|_| std::io::Error::other("the forker thread is gone"))?;
    rx.await
        .map_err(|_| std::io::Error::other("the forker thread is gone"))?
}

/// A blocking command for `program` (for [`output_blocking`]), marked.
pub fn blocking_command(program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env(MARKER_VAR, marker());
    cmd
}

/// Runs `cmd` to its end within `bound` (stdin empty); on timeout the
/// process is killed and the error says which command it was.
pub async fn output(
    cmd: &mut tokio::process::Command,
    what: &str,
    bound: Duration,
) -> Result<Output> {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(bound, cmd.output()).await {
        Ok(out) => out.with_context(|| format!("running {what} (is it installed?)")),
        Err(_) => Err(anyhow!(
            "{what} did not finish within {} s; killed",
            bound.as_secs()
        )),
    }
}

/// Runs a blocking `cmd` within `bound`, feeding it `stdin`; on timeout
/// the process is killed. Its output is read on helper threads, so a
/// chatty program cannot block on a full pipe; the wait goes through
/// [`crate::sys::blocking`].
pub fn output_blocking(
    cmd: &mut std::process::Command,
    what: &str,
    stdin: Option<&str>,
    bound: Duration,
) -> Result<Output> {
    crate::sys::blocking::blocking(|| run_bounded(cmd, what, stdin, bound))
}

fn run_bounded(
    cmd: &mut std::process::Command,
    what: &str,
    stdin: Option<&str>,
    bound: Duration,
) -> Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {what} (is it installed?)"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .with_context(|| format!("writing {what}'s input"))?;
    }
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let until = Instant::now() + bound;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting")? {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow!(
                "{what} did not finish within {} s; killed",
                bound.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Whether process `pid` carries our marker (any run's).
pub fn carries_marker(pid: i32) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let prefix = format!("{MARKER_VAR}=");
    environ
        .split(|b| *b == 0)
        .any(|var| var.starts_with(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocking_command_is_killed_at_its_bound() {
        let started = Instant::now();
        let mut cmd = blocking_command("sleep");
        cmd.arg("30");
        let err =
            output_blocking(&mut cmd, "sleep 30", None, Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_blocking_command_gets_its_input_and_the_marker() {
        let mut cmd = blocking_command("sh");
        cmd.args(["-c", &format!("cat; echo \"${MARKER_VAR}\"")]);
        let out = output_blocking(&mut cmd, "sh", Some("in\n"), TOOL_TIMEOUT).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("in\n"), "{text}");
        assert_eq!(text.lines().nth(1), Some(marker()));
    }

    #[tokio::test]
    async fn an_async_command_is_killed_at_its_bound_and_started_ones_are_marked() {
        let mut cmd = command("sleep");
        cmd.arg("30");
        let err = output(&mut cmd, "sleep 30", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        let exec_done = |pid: i32| {
            // /proc/<pid>/environ is the new program's once it has exec'd:
            // comm changes first, the new stack's environment a moment
            // later (reading it between the two gives nothing).
            let until = Instant::now() + Duration::from_secs(10);
            while (std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
                != "sleep\n"
                || std::fs::read(format!("/proc/{pid}/environ")).map_or(true, |e| e.is_empty()))
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let mut child = command("sleep").arg("5").spawn().unwrap();
        let pid = child.id().unwrap() as i32;
        exec_done(pid);
        assert!(carries_marker(pid));
        let _ = child.kill().await;
        let mut unmarked = std::process::Command::new("sleep");
        unmarked.arg("5").env_remove(MARKER_VAR);
        let mut unmarked = unmarked.spawn().unwrap();
        exec_done(unmarked.id() as i32);
        assert!(!carries_marker(unmarked.id() as i32));
        let _ = unmarked.kill();
        let _ = unmarked.wait();
    }
}
