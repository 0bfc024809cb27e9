//! The lab's command-line options and its `lab build|run|path` commands,
//! shared by `iscsi-chaos lab` and `cargo xtask lab` (one definition).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::{image, vm};

/// Which image: shared by every command that needs one.
#[derive(Args, Clone, Debug, Default)]
pub struct ImageArgs {
    /// Debian release of the guest (kernel matrix): bookworm (6.1) or trixie (6.12).
    /// Default: bookworm, or the oldest release whose C library can run the
    /// harness binary.
    #[arg(long, env = "ISCSI_CHAOS_LAB_RELEASE")]
    pub release: Option<String>,
    /// Debian package archive to build from (default: the host's own apt sources).
    #[arg(long, env = "ISCSI_CHAOS_MIRROR")]
    pub mirror: Option<String>,
}

impl ImageArgs {
    /// The release asked for, else the default one.
    pub fn release(&self) -> &str {
        self.release.as_deref().unwrap_or(image::DEFAULT_RELEASE)
    }
}

/// How to boot: shared by `lab run`, `run --lab`, `chaos` and `test`.
#[derive(Args, Clone, Debug)]
pub struct VmArgs {
    /// Kill the VM if its command has not finished after this many seconds
    /// (the default suite one run at a time takes about 35 minutes under TCG).
    #[arg(long = "lab-timeout", alias = "timeout", default_value_t = 3600)]
    pub timeout: u64,
    /// Guest memory in MiB (default: what the lanes of as many vCPUs as the
    /// host has cores need, at least 2048).
    #[arg(long)]
    pub memory_mib: Option<u32>,
    /// Accelerator: auto (KVM if it really boots a kernel here, TCG otherwise), kvm or tcg.
    #[arg(long, default_value = "auto", env = "ISCSI_CHAOS_LAB_ACCEL")]
    pub accel: String,
}

#[derive(Subcommand)]
pub enum LabCommand {
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
        /// Host folder shared read-write with the guest at the same path.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Host folder shared read-only at the same path, CMD's working
        /// directory (default: the workspace under cargo xtask, none otherwise).
        #[arg(long)]
        work: Option<PathBuf>,
        /// The command to run in the guest.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Print where the image for a release is cached.
    Path {
        #[command(flatten)]
        image: ImageArgs,
    },
}

/// Carries out a `lab` command; `work` and `out` are the caller's defaults
/// for `lab run`. Returns the exit status.
pub fn lab_command(command: LabCommand, work: Option<PathBuf>, out: PathBuf) -> Result<i32> {
    match command {
        LabCommand::Build { image, force } => image::ensure(&image, force).map(|_| 0),
        LabCommand::Run {
            image,
            vm,
            out: asked_out,
            work: asked_work,
            cmd,
        } => {
            let img = image::ensure(&image, false)?;
            let job = vm::Job {
                work: asked_work.or(work),
                out: asked_out.unwrap_or(out),
                cmd,
                ..vm::Job::default()
            };
            vm::run(&img, &vm, &job)
        }
        LabCommand::Path { image } => image::cached_path(&image).map(|p| {
            println!("{}", p.display());
            0
        }),
    }
}
