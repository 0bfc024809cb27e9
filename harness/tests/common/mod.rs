//! Helpers shared by the root-gated target tests.

use iscsi_chaos::env::lane::cleanup_run;
use iscsi_chaos::runner::cleanup::remove_run;

/// Walks test run `id`'s ledger (removing what it lists and the run's
/// registry entry), then removes every namespace and veth of the run left. Runs its own runtime
/// on a fresh thread: test guards call it from Drop, maybe inside a tokio
/// test, maybe while unwinding from a failed assertion.
pub fn remove_lanes_of_run(id: &str) {
    let id = id.to_string();
    let res = std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let sweep = remove_run(&id).await;
                if !sweep.removed.is_empty() || !sweep.failed.is_empty() {
                    eprintln!("guard's ledger walk: {sweep:?}");
                }
                cleanup_run(&id).await
            })
    })
    .join();
    match res {
        Ok(Ok(report)) if report != Default::default() => {
            eprintln!("guard removed leftovers: {report:?}")
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("guard cleanup failed: {e:#}"),
        Err(_) => eprintln!("guard cleanup panicked"),
    }
}
