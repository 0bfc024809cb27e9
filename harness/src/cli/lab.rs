//! The lab VM from the installed binary: `run --lab` (this binary and the
//! run's inputs into the guest, the reports back) and `lab build|run|path`.

use std::path::PathBuf;

use iscsi_chaos_formats::exit;
use iscsi_chaos_lab::cli::{lab_command, ImageArgs, LabCommand};
use iscsi_chaos_lab::{glibc, image, interrupt, vm};

use super::compare::read_report;
use super::run::RunArgs;
use super::{give_back, load_all, INPUT_ERROR};
use crate::lab::LabJob;
use crate::parse::sweep::Axis;

/// `lab build|run|path`.
pub fn command(command: LabCommand) -> u8 {
    interrupt::install();
    lab_status(lab_command(command, None, PathBuf::from("lab-out")))
}

/// `run --lab`: checks every input here (so errors name the user's files),
/// picks the guest release this binary can run in, copies the binary and
/// the inputs into the job, boots, and hands the outputs to the sudo user.
/// `axes`: the command line's, `None` when they could not be read.
pub fn run_in_lab(cli: &RunArgs, axes: Option<&[Axis]>) -> u8 {
    let (paths, out) = (&cli.scenarios, &cli.out);
    let Some(axes) = axes else {
        return INPUT_ERROR;
    };
    if load_all(paths, axes).is_err() {
        return INPUT_ERROR;
    }
    if let Some(Err(e)) = cli.baseline.as_deref().map(read_report) {
        eprintln!("iscsi-chaos: --baseline {e}");
        return INPUT_ERROR;
    }
    interrupt::install();
    let job = || -> anyhow::Result<(LabJob, PathBuf, PathBuf, String)> {
        let exe = std::env::current_exe()?;
        let need = glibc::needed_by(&exe)?;
        let releases = image::releases()?;
        let release = glibc::choose(need, cli.image.release.as_deref(), &releases, &exe)?;
        std::fs::create_dir_all(out)
            .map_err(|e| anyhow::anyhow!("--out {}: {e}", out.display()))?;
        let out = out.canonicalize()?;
        let mut job = LabJob::default();
        job.arg("run").arg("--out").arg(out.display().to_string());
        if let Some(j) = cli.jobs {
            job.arg("--jobs").arg(j.to_string());
        }
        if let Some(s) = cli.shard {
            job.arg("--shard").arg(s.to_string());
        }
        for a in &cli.sweeps {
            let values: Vec<String> = a.values.iter().map(|v| v.to_string()).collect();
            job.arg("--sweep")
                .arg(format!("{}={}", a.key, values.join(",")));
        }
        if let Some(conf) = &cli.iscsid_conf {
            job.arg("--iscsid-conf").file_arg(conf)?;
        }
        if let Some(b) = &cli.baseline {
            job.arg("--baseline").file_arg(b)?;
        }
        if cli.long {
            job.arg("--long");
        }
        if let Some(c) = cli.capture {
            job.arg("--capture").arg(c.as_str());
        }
        if cli.repeat > 1 {
            job.arg("--repeat").arg(cli.repeat.to_string());
        }
        for p in paths {
            job.scenarios_arg(p)?;
        }
        Ok((job, exe, out, release.to_string()))
    };
    let (job, exe, out, release) = match job() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("iscsi-chaos: --lab: {e:#}");
            return INPUT_ERROR;
        }
    };
    eprintln!(
        "iscsi-chaos: in the lab ({release} guest): {} input file(s) copied in, reports to {}",
        job.files().count(),
        out.display()
    );
    let image_args = ImageArgs {
        release: Some(release),
        ..cli.image.clone()
    };
    let status = lab_status(
        image::ensure(&image_args, false)
            .and_then(|img| vm::run(&img, &cli.vm, &job.into_job(&exe, out.clone()))),
    );
    give_back(&out);
    status
}

/// A lab command's exit status (its error said on stderr).
fn lab_status(result: anyhow::Result<i32>) -> u8 {
    match result {
        Ok(code) => code.clamp(0, 255) as u8,
        Err(e) => {
            eprintln!("iscsi-chaos: lab: {e:#}");
            if interrupt::requested() {
                exit::INTERRUPTED as u8
            } else {
                1
            }
        }
    }
}
