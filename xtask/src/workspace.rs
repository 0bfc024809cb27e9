//! Where things are in this repository, and the lab job that shares it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use iscsi_chaos_lab::vm::Job;

pub use iscsi_chaos_lab::host::run;

/// The workspace root (the parent of xtask/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The cargo target directory of the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A lab job that sees this workspace (read-only, at its own path, as the
/// working directory) and writes into `out`.
pub fn job(out: PathBuf, cmd: Vec<String>) -> Job {
    Job {
        work: Some(root()),
        out,
        cmd,
        ..Job::default()
    }
}

/// `cargo build` of the harness and probe binaries the lab and native runs use.
pub fn build_binaries() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .current_dir(root())
        .args(["build", "--quiet", "--workspace", "--bins"]))
}
