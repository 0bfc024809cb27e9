//! `iscsi-chaos init DIR`: writes the starter project of
//! [`crate::template`].

use std::path::PathBuf;

use super::INPUT_ERROR;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct InitArgs {
    dir: PathBuf,
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
        let template = crate::template::files(host_conf.as_deref());
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
        0
    }
}
