//! Developer tasks: `cargo xtask chaos`, `cargo xtask test`, `cargo xtask lab …`.
//!
//! The lab is a Debian VM under QEMU that runs the real iSCSI stack for hosts
//! whose kernel cannot (see ARCHITECTURE.md). Everything here shells out to
//! host tools (debootstrap, mkfs.ext4, qemu-system-x86_64, cargo) and never
//! needs a crate that talks to the kernel.

mod bench;
mod browser;
mod chaos;
mod outside;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use iscsi_chaos_lab::cli::{lab_command, LabCommand};
use iscsi_chaos_lab::interrupt;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "iscsi-chaos developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scenario suite: natively where this host can, in the lab otherwise.
    Chaos(chaos::ChaosArgs),
    /// Run every test: unit tests here, then the root and end-to-end tests in the lab.
    Test(chaos::TestArgs),
    /// Timing figures: lab boot, trivial run, and (with --report) harness overhead per scenario.
    Bench(bench::BenchArgs),
    /// Open a report.html in headless Chromium; fail on console errors, broken links or fetches.
    BrowserCheck(browser::BrowserArgs),
    /// Build or use the lab VM.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
}

fn main() -> ExitCode {
    interrupt::install();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Chaos(args) => chaos::chaos(&args),
        Command::Test(args) => chaos::test(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::BrowserCheck(args) => browser::check(&args),
        Command::Lab { command } => lab_command(
            command,
            Some(workspace::root()),
            workspace::target_dir().join("lab-out"),
        ),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::from(if interrupt::requested() { 130 } else { 1 })
        }
    }
}
