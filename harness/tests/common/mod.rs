//! Helpers shared by the root-gated target tests.

use iscsi_chaos::topology::cleanup_run;

/// Removes every namespace and veth of test run `id`. Runs its own runtime
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
            .block_on(cleanup_run(&id))
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
