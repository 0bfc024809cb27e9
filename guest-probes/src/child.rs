//! A program the probes run (the user's command, fio) as the leader of its
//! own process group, with a time bound: past it the whole group is
//! killed, and the probe still waits for it to end (a process blocked in
//! the kernel ends only when its I/O does).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::signals::signalled;

/// How a bounded child ended.
#[derive(Debug)]
pub struct Ended {
    pub status: ExitStatus,
    /// It outlived its bound and was killed.
    pub timed_out: bool,
}

/// Makes `cmd` start as the leader of a process group of its own.
pub fn own_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0)
}

/// Sends `signal` to the process group `child` leads.
fn signal_group(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) of the process group the child leads.
    unsafe { libc::kill(-(child.id() as i32), signal) };
}

/// Waits for `child` (started through [`own_group`]) at most `limit`, then
/// kills its group with SIGKILL and waits on. With `forward`, the probe's
/// own SIGTERM/SIGINT is passed on to the group once as SIGTERM (fio ends
/// its jobs and writes its logs).
pub fn wait_bounded(child: &mut Child, limit: Duration, forward: bool) -> io::Result<Ended> {
    let until = Instant::now() + limit;
    let (mut timed_out, mut forwarded) = (false, false);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Ended { status, timed_out });
        }
        if forward && !forwarded && signalled() {
            forwarded = true;
            signal_group(child, libc::SIGTERM);
        }
        if !timed_out && Instant::now() >= until {
            timed_out = true;
            signal_group(child, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_past_its_bound_is_killed_children_and_all() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 5 & sleep 5"]);
        let mut child = own_group(&mut cmd).spawn().unwrap();
        let began = Instant::now();
        let e = wait_bounded(&mut child, Duration::from_millis(200), false).unwrap();
        assert!(e.timed_out && e.status.code().is_none(), "{e:?}");
        assert!(began.elapsed() < Duration::from_secs(4));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        let mut child = own_group(&mut cmd).spawn().unwrap();
        let e = wait_bounded(&mut child, Duration::from_secs(5), false).unwrap();
        assert_eq!((e.status.code(), e.timed_out), (Some(3), false));
    }
}
