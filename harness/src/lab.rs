//! `run --lab`: the harness runs itself in the lab VM, for hosts whose
//! kernel cannot run the iSCSI stack, with nothing but the installed binary.
//!
//! The job share gets a copy of this very executable (which is also the
//! probe, see `runner::PROBE_NAME`) and of every file the run reads: the
//! scenario files of the paths given, the iscsid.conf files they name,
//! `--iscsid-conf` and `--baseline`. Each copy sits below `in/` at its own
//! absolute host path, so a scenario's relative `iscsid_conf` still
//! resolves; the guest's command names the copies, and console lines show
//! host paths again. The output folder is shared at its own path. Files are
//! checked on the host before the boot, so errors name the user's own
//! path, line and field.
//!
//! Invariant: only the files named here are copied, and the guest sees no
//! other host folder than the output folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use iscsi_chaos_lab::vm::{Job, JOB_MOUNT};

/// Below the job share: the copies, at their own absolute host paths.
const INPUTS: &str = "in";
/// Below the job share: the harness itself.
const HARNESS: &str = "bin/iscsi-chaos";

/// The files a lab job carries, and the guest command that uses them.
#[derive(Debug, Default)]
pub struct LabJob {
    files: BTreeSet<PathBuf>,
    args: Vec<String>,
}

impl LabJob {
    /// An argument passed as it is.
    pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// A file the run reads: copied, and named by its guest path.
    pub fn file_arg(&mut self, path: &Path) -> Result<&mut Self> {
        let host = absolute(path)?;
        let guest = guest_path(&host);
        self.files.insert(host);
        self.args.push(guest.display().to_string());
        Ok(self)
    }

    /// A scenario file or folder: its scenario files and the iscsid.conf
    /// files they name are copied; the argument is its guest path.
    pub fn scenarios_arg(&mut self, path: &Path) -> Result<&mut Self> {
        let host = absolute(path)?;
        for file in crate::parse::files::scenario_files(std::slice::from_ref(&host)) {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Some(conf) = crate::parse::files::iscsid_conf_of(&file, &text) {
                    if conf.is_file() {
                        self.files.insert(absolute(&conf)?);
                    }
                }
            }
            self.files.insert(file);
        }
        self.args.push(guest_path(&host).display().to_string());
        Ok(self)
    }

    /// The host files copied (absolute paths).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(PathBuf::as_path)
    }

    /// The arguments after the harness's own name, as the guest gets them.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The VM's job: `exe` (this harness) runs with the arguments, `out`
    /// shared at its own path.
    pub fn into_job(self, exe: &Path, out: PathBuf) -> Job {
        let mut files: Vec<(PathBuf, PathBuf)> = self
            .files
            .iter()
            .map(|f| (f.clone(), job_relative(f)))
            .collect();
        files.push((exe.to_path_buf(), PathBuf::from(HARNESS)));
        let mut cmd = vec![Path::new(JOB_MOUNT).join(HARNESS).display().to_string()];
        cmd.extend(self.args);
        Job {
            work: None,
            out,
            files,
            cmd,
            shown_as: vec![
                (
                    Path::new(JOB_MOUNT).join(HARNESS).display().to_string(),
                    "iscsi-chaos".into(),
                ),
                (
                    Path::new(JOB_MOUNT).join(INPUTS).display().to_string(),
                    String::new(),
                ),
            ],
        }
    }
}

/// `path` made absolute (and `..` resolved) on the host.
fn absolute(path: &Path) -> Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("{}: cannot read it", path.display()))
}

fn job_relative(host: &Path) -> PathBuf {
    Path::new(INPUTS).join(host.strip_prefix("/").unwrap_or(host))
}

/// Where the guest sees the copy of the host file `host` (absolute).
pub fn guest_path(host: &Path) -> PathBuf {
    Path::new(JOB_MOUNT).join(job_relative(host))
}

/// Gives everything below `out` that root owns to the user who ran us
/// through sudo (SUDO_UID, SUDO_GID), the folder itself included; nothing
/// without sudo. Returns how many entries changed owner.
pub fn give_to_sudo_user(out: &Path) -> Result<usize> {
    let (Some(uid), Some(gid)) = (env_id("SUDO_UID"), env_id("SUDO_GID")) else {
        return Ok(0);
    };
    if uid == 0 {
        return Ok(0);
    }
    chown_root_owned(out, uid, gid)
}

fn env_id(var: &str) -> Option<u32> {
    std::env::var(var).ok()?.trim().parse().ok()
}

/// Entries below `dir` (and `dir`) owned by root go to `uid:gid`; symlinks
/// are changed themselves, never followed.
pub fn chown_root_owned(dir: &Path, uid: u32, gid: u32) -> Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let mut changed = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                todo.push(entry?.path());
            }
        }
        if meta.uid() == 0 {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to uid {uid}", path.display()))?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_keep_their_folders_and_the_conf_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("s/sub")).unwrap();
        std::fs::create_dir_all(root.join("conf")).unwrap();
        std::fs::write(
            root.join("s/sub/a.toml"),
            "[initiator]\niscsid_conf = \"../../conf/site.conf\"\n",
        )
        .unwrap();
        std::fs::write(root.join("s/readme.md"), "").unwrap();
        std::fs::write(root.join("conf/site.conf"), "").unwrap();
        std::fs::write(root.join("base.json"), "{}").unwrap();
        let mut job = LabJob::default();
        job.arg("run").scenarios_arg(&root.join("s")).unwrap();
        job.arg("--baseline")
            .file_arg(&root.join("base.json"))
            .unwrap();
        let files: Vec<_> = job.files().map(Path::to_path_buf).collect();
        assert_eq!(
            files,
            [
                root.join("base.json"),
                root.join("conf/site.conf"),
                root.join("s/sub/a.toml")
            ]
        );
        let guest_s = format!("/lab/job/in{}", root.join("s").display());
        assert_eq!(job.args()[1], guest_s);
        assert_eq!(job.args()[2], "--baseline");
        let j = job.into_job(Path::new("/usr/bin/iscsi-chaos"), root.join("out"));
        assert_eq!(j.cmd[0], "/lab/job/bin/iscsi-chaos");
        assert!(j
            .files
            .iter()
            .any(|(from, to)| from == Path::new("/usr/bin/iscsi-chaos")
                && to == Path::new("bin/iscsi-chaos")));
        let to_conf = j
            .files
            .iter()
            .find(|(from, _)| from.ends_with("conf/site.conf"))
            .unwrap();
        // The scenario's relative path still leads to the copy.
        let guest_scenario = guest_path(&root.join("s/sub/a.toml"));
        let resolved = guest_scenario
            .parent()
            .unwrap()
            .join("../../conf/site.conf");
        let normal: PathBuf = resolved.components().fold(PathBuf::new(), |mut p, c| {
            match c {
                std::path::Component::ParentDir => {
                    p.pop();
                }
                c => p.push(c),
            }
            p
        });
        assert_eq!(normal, Path::new("/lab/job").join(&to_conf.1));
        // Console lines name host paths again.
        let mut line = format!("{}/sub/a.toml:3:1: bad", guest_s);
        for (g, h) in &j.shown_as {
            line = line.replace(g.as_str(), h);
        }
        assert_eq!(
            line,
            format!("{}/sub/a.toml:3:1: bad", root.join("s").display())
        );
    }

    #[test]
    fn a_missing_input_is_named() {
        let e = LabJob::default()
            .file_arg(Path::new("/nonexistent/x.conf"))
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.conf"), "{e}");
    }

    #[test]
    fn chown_changes_root_owned_entries_only() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give files away
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/report.json"), "{}").unwrap();
        std::fs::write(dir.path().join("theirs"), "").unwrap();
        std::os::unix::fs::lchown(dir.path().join("theirs"), Some(4321), Some(4321)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let n = chown_root_owned(dir.path(), 1234, 1234).unwrap();
        assert_eq!(n, 4, "dir, sub, report.json, link");
        use std::os::unix::fs::MetadataExt;
        let uid = |p: &str| std::fs::symlink_metadata(dir.path().join(p)).unwrap().uid();
        assert_eq!(uid("sub/report.json"), 1234);
        assert_eq!(uid("theirs"), 4321);
        assert_eq!(std::fs::metadata("/etc/passwd").unwrap().uid(), 0);
    }
}
