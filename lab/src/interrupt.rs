//! Ctrl-C and SIGTERM: remembered in a flag, so the task that owns a QEMU
//! process or a half-built image can stop it and clean up before exiting.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

pub fn install() {
    // The terminal sends SIGINT to our children too; we only note it and let
    // the owner of each child decide how to end it.
    let _ = ctrlc::set_handler(|| REQUESTED.store(true, Ordering::SeqCst));
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
