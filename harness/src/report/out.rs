//! The output folder (`--out`): report.json and one history per run.
//!
//! The harness runs as root, so what it writes must not be redirectable by
//! anyone else:
//! - a folder another user can write (group or world writable, or owned by
//!   someone other than us or root) is refused with a clear message;
//! - each file is written whole under a fresh name opened with `O_EXCL`
//!   (which never follows a symlink) and renamed into place, so a symlink
//!   planted under the final name is replaced, never written through.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What the reporters write: a symlink under such a name is refused.
const OUTPUT_EXTENSIONS: [&str; 6] = [".json", ".jsonl", ".svg", ".xml", ".md", ".html"];

/// A checked output folder.
#[derive(Debug, Clone)]
pub struct OutDir {
    path: PathBuf,
}

/// The effective user id (the owner of /proc/self).
fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

impl OutDir {
    /// Makes `path` if missing (0755), then checks that only we can write it.
    pub fn prepare(path: &Path) -> Result<OutDir, String> {
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a folder", path.display()));
        }
        let me = euid();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(format!(
                "refusing --out {}: it belongs to uid {}, who could redirect what we write there as uid {me}; use a folder of your own",
                path.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "refusing --out {}: other users can write it (mode {:o}), and could redirect what we write there; use a folder only you can write (chmod go-w)",
                path.display(),
                meta.mode() & 0o7777
            ));
        }
        // A symlink where an output file goes was planted: say so rather
        // than quietly replace it (writing never follows it either way).
        let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let output_like = OUTPUT_EXTENSIONS.iter().any(|x| name.ends_with(x));
            if output_like && entry.file_type().is_ok_and(|t| t.is_symlink()) {
                let to = std::fs::read_link(entry.path()).unwrap_or_default();
                return Err(format!(
                    "refusing --out {}: {name} is a symbolic link (to {}), where the harness writes its output; remove it",
                    path.display(),
                    to.display()
                ));
            }
        }
        Ok(OutDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reporter's write: what goes wrong is said on standard error, since
    /// one output format failing must not stop the others.
    pub fn write_or_say(&self, name: &str, bytes: &[u8]) {
        if let Err(e) = self.write(name, bytes) {
            eprintln!(
                "iscsi-chaos: writing {}: {e}",
                self.path.join(name).display()
            );
        }
    }

    /// Writes `bytes` as `name` (a plain file name) in the folder, whole.
    pub fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(io::Error::other(format!("bad output file name {name:?}")));
        }
        let fin = self.path.join(name);
        for _ in 0..16 {
            // Fresh random keys each time: a name nobody can guess ahead.
            let hasher = RandomState::new().build_hasher();
            let partial = self
                .path
                .join(format!(".{name}.{:016x}.partial", hasher.finish()));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&partial);
            let mut file = match file {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            let written = file.write_all(bytes).and_then(|()| file.sync_all());
            let renamed = written.and_then(|()| std::fs::rename(&partial, &fin));
            if renamed.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            return renamed;
        }
        Err(io::Error::other("no free temporary name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_planted_symlink_is_replaced_never_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("shadow");
        std::fs::write(&victim, b"root:secret").unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("report.json")).unwrap();
        let err = OutDir::prepare(&out).unwrap_err();
        assert!(err.contains("report.json is a symbolic link"), "{err}");
        // Planted after the check: writing replaces the link, never follows it.
        std::fs::remove_file(out.join("report.json")).unwrap();
        let dir = OutDir::prepare(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("report.json")).unwrap();
        dir.write("report.json", b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"root:secret");
        let meta = std::fs::symlink_metadata(out.join("report.json")).unwrap();
        assert!(meta.is_file());
        assert_eq!(std::fs::read(out.join("report.json")).unwrap(), b"{}");
        // No temporary files are left.
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    }

    #[test]
    fn a_folder_others_can_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("shared");
        std::fs::create_dir(&out).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = OutDir::prepare(&out).unwrap_err();
        assert!(err.contains("other users can write it"), "{err}");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(OutDir::prepare(&out).is_err());
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(OutDir::prepare(&out).is_ok());
    }

    #[test]
    fn file_names_stay_inside_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::prepare(tmp.path()).unwrap();
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(dir.write(bad, b"x").is_err(), "{bad:?}");
        }
    }
}
