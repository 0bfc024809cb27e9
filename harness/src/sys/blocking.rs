//! The one policy for blocking kernel-edge work called from async code.
//!
//! Every call that may wait on the kernel or another program (a netlink
//! request, an nft or tgtadm run, a configfs write that waits for sessions
//! to close, an flock) goes through here, so one lane's wait never holds up
//! another lane's steps on a shared async worker:
//!
//! - [`blocking`] for short work on borrowed data: on the multi-thread
//!   runtime the worker hands its other tasks to another thread while `f`
//!   runs (`block_in_place`); elsewhere (a plain thread, a thread switched
//!   into a namespace, a current-thread runtime) `f` simply runs.
//! - [`spawn`] for owned work that may take long (removing a namespace and
//!   its processes): a thread of the runtime's blocking pool.

use anyhow::{Context, Result};

/// Runs `f`, letting the async worker it runs on go on with other tasks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs `f` on the runtime's blocking pool and waits for it.
pub async fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a blocking task of ours panicked or was cancelled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_outside_a_runtime_and_on_both_flavours() {
        assert_eq!(blocking(|| 1), 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(async { blocking(|| 2) }), 2);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert_eq!(rt.block_on(async { blocking(|| 3) }), 3);
        let v = rt.block_on(async { tokio::spawn(async { blocking(|| 4) }).await.unwrap() });
        assert_eq!(v, 4);
        assert_eq!(rt.block_on(spawn(|| blocking(|| 5))).unwrap(), 5);
    }
}
