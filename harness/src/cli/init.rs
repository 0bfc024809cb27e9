//! `iscsi-chaos init DIR`: writes the starter project of
//! [`crate::template`].

use std::path::PathBuf;

use super::INPUT_ERROR;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct InitArgs {
    dir: PathBuf,
    /// The GitHub repository (owner/name) the generated workflow takes
    /// iscsi-chaos from (default: a placeholder the last line names).
    #[arg(long, value_name = "OWNER/NAME")]
    harness_repo: Option<String>,
}

impl InitArgs {
    pub fn exec(self) -> u8 {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = &self.dir;
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            eprintln!(
                "iscsi-chaos: init: {} is not empty; give a new or empty folder",
                dir.display()
            );
            return INPUT_ERROR;
        }
        let host_conf = std::fs::read_to_string("/etc/iscsi/iscsid.conf").ok();
        let from = if host_conf.is_some() {
            "/etc/iscsi/iscsid.conf"
        } else {
            "open-iscsi's defaults"
        };
        if let Some(repo) = &self.harness_repo {
            let word = |w: &str| {
                !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            };
            if !repo
                .split_once('/')
                .is_some_and(|(o, n)| word(o) && word(n))
            {
                eprintln!(
                    "iscsi-chaos: init: --harness-repo {repo}: write OWNER/NAME, e.g. acme/iscsi-chaos"
                );
                return INPUT_ERROR;
            }
        }
        let template =
            crate::template::files_for(host_conf.as_deref(), self.harness_repo.as_deref());
        for f in &template.files {
            let path = dir.join(f.path);
            // Made here (never an existing file or link), with the mode its
            // contents allow.
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(f.mode())
                        .open(&path)
                })
                .and_then(|mut file| file.write_all(f.text.as_bytes()));
            if let Err(e) = written {
                eprintln!("iscsi-chaos: init: {}: {e}", path.display());
                return 1;
            }
            println!("{}", path.display());
        }
        for r in &template.redacted {
            eprintln!(
                "iscsi-chaos: init: {from}:{}: {} not copied (a secret); set it from your CI's secret store",
                r.line, r.key
            );
        }
        eprintln!(
            "iscsi-chaos: init: iscsid.conf from {from}; next: `iscsi-chaos list {0}/scenarios`, then `sudo iscsi-chaos run {0}/scenarios --out {0}/out`",
            dir.display()
        );
        if self.harness_repo.is_none() {
            eprintln!(
                "iscsi-chaos: init: edit {}: replace {} with the GitHub repository that holds iscsi-chaos (or run init again with --harness-repo OWNER/NAME)",
                dir.join(".github/workflows/iscsi-chaos.yml").display(),
                crate::template::HARNESS_REPO_PLACEHOLDER
            );
        }
        0
    }
}
