//! The `iscsi-chaos` command: parses the command line and hands it to
//! [`iscsi_chaos::cli`], one file per command. Started as `blkprobe` or
//! `fsprobe`, it is that probe instead.

use std::process::ExitCode;

use clap::Parser;
use iscsi_chaos::cli::Cli;

fn main() -> ExitCode {
    // This binary is also each probe (an installed harness has no other).
    let arg0 = std::env::args_os().next().unwrap_or_default();
    if let Some(code) = guest_probes::main_as(&arg0) {
        return code;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISCSI_CHAOS_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    ExitCode::from(Cli::parse().exec())
}
