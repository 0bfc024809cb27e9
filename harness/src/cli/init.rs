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
        use std::os::unix::fs::PermissionsExt;
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
        for f in crate::template::files(host_conf.as_deref()) {
            let path = dir.join(f.path);
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, &f.text))
                .and_then(|()| {
                    if f.executable {
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = written {
                eprintln!("iscsi-chaos: init: {}: {e}", path.display());
                return 1;
            }
            println!("{}", path.display());
        }
        eprintln!(
            "iscsi-chaos: init: iscsid.conf from {from}; next: `iscsi-chaos list {0}/scenarios`, then `sudo iscsi-chaos run {0}/scenarios --out {0}/out`",
            dir.display()
        );
        0
    }
}
