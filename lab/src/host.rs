//! The host side of the lab: where its cache is, and running host tools.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::interrupt;

/// The cache for lab images and job folders: outside any source tree,
/// shared by checkouts and by the installed command.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ISCSI_CHAOS_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    base.join("iscsi-chaos")
}

/// Fails with one line naming the Debian package when a host tool is missing.
pub fn require_tool(tool: &str, package: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("`{tool}` is not installed: install it with `apt-get install {package}`");
    }
    Ok(())
}

pub fn require_root(why: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("{why} needs root: run it as root (e.g. with sudo)");
    }
    Ok(())
}

/// Runs a command to completion, streaming its output; fails on non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if interrupt::requested() {
        bail!("interrupted");
    }
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}
