//! Running nft in a lane's namespace (a child switched into it), and our
//! table's existence check and removal.

use anyhow::{bail, Result};

use crate::sys::cmd;

use crate::sys::netns::NetNs;
pub use crate::wire::nft::TABLE;

/// Runs `nft ARGS` (the script `stdin` on its standard input) in `ns`.
pub fn nft_in(ns: &NetNs, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut cmd = cmd::blocking_command("nft");
    cmd.args(args);
    ns.enter_on_exec(&mut cmd);
    let what = format!(
        "nft {} (install nftables for firewall faults)",
        args.join(" ")
    );
    let out = cmd::output_blocking(&mut cmd, &what, stdin, cmd::TOOL_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "nft {} in {}: {}: {}",
            args.join(" "),
            ns.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn table_words() -> (&'static str, &'static str) {
    TABLE.split_once(' ').unwrap_or(("inet", TABLE))
}

/// Whether our table exists in namespace `netns` (for the ledger).
pub fn table_exists(netns: &str) -> bool {
    let (family, name) = table_words();
    NetNs::open(netns).is_ok_and(|ns| nft_in(&ns, &["list", "table", family, name], None).is_ok())
}

/// Deletes our table in namespace `netns` (for the ledger).
pub fn delete_table(netns: &str) -> Result<()> {
    let (family, name) = table_words();
    nft_in(
        &NetNs::open(netns)?,
        &["delete", "table", family, name],
        None,
    )
    .map(drop)
}
