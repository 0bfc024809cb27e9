//! sg_persist (sg3-utils) on one SCSI disk: a persistent reservation
//! command through the I_T nexus of the disk's session.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

/// Bound of one sg_persist call: a healthy target answers at once; one
/// behind a broken link must not hold the run.
const BOUND: Duration = Duration::from_secs(10);

/// Runs `sg_persist ARGS DEVICE`; its stdout, or an error with its status
/// and its own words.
pub async fn sg_persist(device: &Path, args: &[String]) -> Result<String> {
    let mut cmd = super::cmd::command("sg_persist");
    cmd.args(args).arg(device);
    let out = super::cmd::output(&mut cmd, "sg_persist", BOUND).await?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        bail!(
            "sg_persist {} {}: {} ({})",
            args.join(" "),
            device.display(),
            said.trim(),
            out.status
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
