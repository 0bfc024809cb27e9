//! The `iscsi-chaos` command: parses the command line and hands it to
//! [`iscsi_chaos::cli`], one file per command. Started as `blkprobe`, it is
//! the probe instead.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use iscsi_chaos::cli::Cli;
use iscsi_chaos::runner::PROBE_NAME;

fn main() -> ExitCode {
    // This binary is also the probe (an installed harness has no other).
    let arg0 = std::env::args_os().next().unwrap_or_default();
    if Path::new(&arg0).file_name() == Some(PROBE_NAME.as_ref()) {
        return guest_probes::blkprobe::main();
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
