//! SIGTERM/SIGINT as the probes see them: the first asks them to end the
//! I/O phase and verify; a second, or a verify pass past its budget after
//! the first, cuts verification short.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::monotonic_ns;

/// After SIGTERM/SIGINT the verify pass gets at most this long.
pub const SIGNAL_VERIFY_BUDGET: Duration = Duration::from_secs(5);

// Signal state: how many SIGTERM/SIGINT arrived, and when the first did.
static SIGNALS: AtomicU64 = AtomicU64::new(0);
static FIRST_SIGNAL_NS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe work: atomics and clock_gettime.
    if SIGNALS.fetch_add(1, SeqCst) == 0 {
        FIRST_SIGNAL_NS.store(monotonic_ns(), SeqCst);
    }
}

pub fn install_signal_handlers() -> Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a handler that only touches atomics.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            // Restart interrupted syscalls: the probe polls the flag itself.
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                bail!("sigaction: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

pub fn signalled() -> bool {
    SIGNALS.load(SeqCst) > 0
}

/// Verify gives up on a second signal, or once the signal budget is spent.
pub fn verify_cut_short() -> bool {
    match SIGNALS.load(SeqCst) {
        0 => false,
        1 => {
            let since = monotonic_ns().saturating_sub(FIRST_SIGNAL_NS.load(SeqCst));
            Duration::from_nanos(since) >= SIGNAL_VERIFY_BUDGET
        }
        _ => true,
    }
}

/// A command-line number of seconds as a duration.
pub fn secs(what: &str, v: f64) -> Result<Duration> {
    if !v.is_finite() || v < 0.0 {
        bail!("--{what} must be a non-negative number of seconds, not {v}");
    }
    Ok(Duration::from_secs_f64(v))
}
