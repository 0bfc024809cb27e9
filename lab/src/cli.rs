//! The lab's command-line options and its `lab build|run|path` commands,
//! shared by `iscsi-chaos lab` and `cargo xtask lab` (one definition).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

pub use crate::image::ImageArgs;
pub use crate::vm::VmArgs;
use crate::{image, vm};

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
