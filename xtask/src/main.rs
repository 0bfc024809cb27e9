//! Developer tasks: `cargo xtask chaos`, `cargo xtask test`, `cargo xtask lab …`.
//!
//! The lab is a Debian VM under QEMU that runs the real iSCSI stack for hosts
//! whose kernel cannot (see ARCHITECTURE.md). Everything here shells out to
//! host tools (debootstrap, mkfs.ext4, qemu-system-x86_64, cargo) and never
//! needs a crate that talks to the kernel.

mod bench;
mod browser;
mod buildlog;
mod chaos;
mod image;
mod interrupt;
mod vm;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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

#[derive(Subcommand)]
enum LabCommand {
    /// Build the lab image (cached; rebuilt only when the recipe changes).
    Build {
        #[command(flatten)]
        image: ImageArgs,
        /// Rebuild even when a complete image for this recipe is cached.
        #[arg(long)]
        force: bool,
    },
    /// Boot the lab, run CMD as root inside it, and exit with CMD's status.
    Run {
        #[command(flatten)]
        image: ImageArgs,
        #[command(flatten)]
        vm: VmArgs,
        /// The command to run in the guest (its working directory is the workspace).
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Print where the image for a release is cached.
    Path {
        #[command(flatten)]
        image: ImageArgs,
    },
}

/// Which image: shared by every command that needs one.
#[derive(Args, Clone)]
pub struct ImageArgs {
    /// Debian release of the guest (kernel matrix): bookworm (6.1) or trixie (6.12).
    #[arg(long, default_value = "bookworm", env = "ISCSI_CHAOS_LAB_RELEASE")]
    pub release: String,
    /// Debian package archive to build from (default: the host's own apt sources).
    #[arg(long, env = "ISCSI_CHAOS_MIRROR")]
    pub mirror: Option<String>,
}

/// How to boot: shared by `lab run`, `chaos` and `test`.
#[derive(Args, Clone)]
pub struct VmArgs {
    /// Kill the VM if CMD has not finished after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Host folder shared read-write with the guest at the same path.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: u32,
    /// Accelerator: auto (KVM if it really boots a kernel here, TCG otherwise), kvm or tcg.
    #[arg(long, default_value = "auto", env = "ISCSI_CHAOS_LAB_ACCEL")]
    pub accel: String,
}

fn main() -> ExitCode {
    interrupt::install();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Chaos(args) => chaos::chaos(&args),
        Command::Test(args) => chaos::test(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::BrowserCheck(args) => browser::check(&args),
        Command::Lab { command } => match command {
            LabCommand::Build { image, force } => image::ensure(&image, force).map(|_| 0),
            LabCommand::Run { image, vm, cmd } => {
                image::ensure(&image, false).and_then(|img| vm::run(&img, &vm, &cmd))
            }
            LabCommand::Path { image } => image::cached_path(&image).map(|p| {
                println!("{}", p.display());
                0
            }),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::from(if interrupt::requested() { 130 } else { 1 })
        }
    }
}
