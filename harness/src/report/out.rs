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
    /// Makes `path` if missing (0755), then checks that only we can write
    /// it, and that nobody else can swap a folder or link on the way to it
    /// ([`check_way`]).
    pub fn prepare(path: &Path) -> Result<OutDir, String> {
        check_way(path, euid())?;
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        check_way(path, euid())?;
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

/// Whether a folder or link `meta` belongs to us, root, or the user who
/// ran us through sudo (their own home is on the way to their folder).
fn trusted_owner(meta: &std::fs::Metadata, me: u32) -> bool {
    let sudo_user = std::env::var("SUDO_UID")
        .ok()
        .and_then(|u| u.parse::<u32>().ok());
    meta.uid() == me || meta.uid() == 0 || sudo_user == Some(meta.uid())
}

/// Checks the way to `path`: every symbolic link on it (as written)
/// belongs to us or root, and every folder of the way as resolved belongs
/// to us or root and is writable by no one else, or is sticky (like /tmp)
/// and the next step in it belongs to us or root. Otherwise another user
/// could swap a step for a link to where they want us to write.
pub fn check_way(path: &Path, me: u32) -> Result<(), String> {
    let refuse = |what: String| Err(format!("refusing --out {}: {what}", path.display()));
    let abs = std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    // As written: links.
    let mut prefix = PathBuf::new();
    for part in abs.components() {
        prefix.push(part);
        match std::fs::symlink_metadata(&prefix) {
            Ok(m) if m.file_type().is_symlink() && !trusted_owner(&m, me) => {
                return refuse(format!(
                    "{} is a symbolic link of uid {}, who could point it elsewhere",
                    prefix.display(),
                    m.uid()
                ));
            }
            Ok(_) => {}
            // Not there yet: what follows is made by us.
            Err(_) => break,
        }
    }
    // As resolved: the folders that exist.
    let Some(existing) = abs.ancestors().find(|a| a.exists()) else {
        return Ok(());
    };
    let real =
        std::fs::canonicalize(existing).map_err(|e| format!("{}: {e}", existing.display()))?;
    // (folder, the next step in it) from the root down; the last folder
    // that exists holds what is still to be made.
    let mut pairs: Vec<(PathBuf, PathBuf)> = real
        .ancestors()
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (w[1].to_path_buf(), w[0].to_path_buf()))
        .collect();
    pairs.reverse();
    if let Some(next) = abs
        .strip_prefix(existing)
        .ok()
        .and_then(|rest| rest.components().next())
    {
        pairs.push((real.clone(), real.join(next)));
    }
    for (dir, child) in &pairs {
        let (dir, child) = (dir.as_path(), child.as_path());
        let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !trusted_owner(&meta, me) {
            return refuse(format!("{} belongs to uid {}", dir.display(), meta.uid()));
        }
        if meta.mode() & 0o022 != 0 {
            let sticky = meta.mode() & 0o1000 != 0;
            // A step still to be made is made by us (and checked again
            // once it is there).
            let child_ok = match std::fs::symlink_metadata(child) {
                Ok(m) => trusted_owner(&m, me),
                Err(_) => true,
            };
            if !sticky {
                return refuse(format!(
                    "{} can be written by other users (mode {:o}), who could swap what is in it",
                    dir.display(),
                    meta.mode() & 0o7777
                ));
            }
            if !child_ok {
                return refuse(format!(
                    "{} belongs to another user, in {} which others can write",
                    child.display(),
                    dir.display()
                ));
            }
        }
    }
    Ok(())
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
    fn a_link_or_folder_another_user_could_swap_on_the_way_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let me = euid();
        let other = if me == 4242 { 4243 } else { 4242 };
        // A folder others can write, not sticky, on the way.
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_way(&open.join("out"), me).unwrap_err();
        assert!(err.contains("can be written by other users"), "{err}");
        // Sticky (like /tmp) with our own entry: fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::create_dir(open.join("mine")).unwrap();
        check_way(&open.join("mine/out"), me).unwrap();
        // A link on the way owned by someone else (only root can chown).
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        check_way(&link.join("mine/out"), me).unwrap();
        if me == 0 {
            std::os::unix::fs::lchown(&link, Some(other), Some(other)).unwrap();
            let err = check_way(&link.join("mine/out"), me).unwrap_err();
            assert!(err.contains("is a symbolic link of uid"), "{err}");
            // And a sticky folder's entry of someone else.
            std::os::unix::fs::chown(open.join("mine"), Some(other), Some(other)).unwrap();
            let err = check_way(&open.join("mine/out"), me).unwrap_err();
            assert!(err.contains("mine belongs to another user"), "{err}");
        }
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
