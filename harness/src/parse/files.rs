//! Files: which files a set of scenario paths stands for (the `*.toml`
//! files of folders, searched recursively, sorted, and the files a scenario
//! names: `[initiator] iscsid_conf`, relative to its folder; `run --lab`
//! copies exactly these into the guest), and how one is read (a regular
//! file, bounded).

use std::path::{Path, PathBuf};

use super::diag::LoadError;

/// Largest scenario file read, bytes.
pub const MAX_SCENARIO_BYTES: u64 = 1024 * 1024;

/// Most bytes of an iscsid.conf read (Debian's is about 12 KiB).
pub const MAX_CONF_BYTES: u64 = 1 << 20;

/// An iscsid.conf as read: its path as messages name it, and its text or
/// why it could not be read (`path: reason`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfText {
    pub file: String,
    pub text: Result<String, String>,
}

/// Scenario files under the given paths, sorted, folders searched
/// recursively; a path that does not exist is kept (loading it says so).
pub fn scenario_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            for entry in entries {
                walk(&entry, out);
            }
        } else if path.extension().is_some_and(|e| e == "toml") || !path.exists() {
            out.push(path.to_path_buf());
        }
    }
    let mut out = Vec::new();
    for path in paths {
        walk(path, &mut out);
    }
    out
}

/// The iscsid.conf a scenario's `[initiator] iscsid_conf` names, resolved
/// against the scenario file's folder (`None`: it names none, or the text
/// is not TOML, which loading reports).
pub fn iscsid_conf_of(scenario: &Path, text: &str) -> Option<PathBuf> {
    let doc = text.parse::<toml::Table>().ok()?;
    let rel = doc.get("initiator")?.get("iscsid_conf")?.as_str()?;
    Some(scenario.parent().unwrap_or(Path::new(".")).join(rel))
}

/// Reads a scenario file: at most [`MAX_SCENARIO_BYTES`] of a regular file.
pub fn read_scenario(path: &Path) -> Result<String, LoadError> {
    read_capped(path, MAX_SCENARIO_BYTES).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Reads the iscsid.conf at `path` (at most [`MAX_CONF_BYTES`]).
pub fn read_conf(path: &Path) -> ConfText {
    let file = path.display().to_string();
    let text = read_capped(path, MAX_CONF_BYTES).map_err(|e| format!("{file}: {e}"));
    ConfText { file, text }
}

/// Where a scenario's `[initiator] iscsid_conf` may point: into the
/// scenario's own folder (or below it), or into open-iscsi's own folder. A
/// scenario from a pull request must not make the harness read (and quote
/// into CI logs) any file of the host.
pub const CONF_FOLDERS: &str = "the scenario's own folder, the folder above it (not /), its \
     project (the nearest folder above it holding .git or .github) or /etc/iscsi";

/// Whether `conf` (as resolved, symlinks followed) lies where a scenario
/// may name one ([`CONF_FOLDERS`]).
pub fn conf_place_allowed(scenario: &Path, conf: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    let Some(conf) = real(conf) else {
        // It does not exist: reading it says so (and quotes nothing).
        return true;
    };
    let folder = scenario.parent().filter(|p| !p.as_os_str().is_empty());
    let Some(folder) = real(folder.unwrap_or(Path::new("."))) else {
        return false;
    };
    // A project's scenarios/ folder beside its confs (what `init` makes).
    let above = folder.parent().filter(|p| p.parent().is_some());
    let project = folder
        .ancestors()
        .find(|a| a.join(".git").exists() || a.join(".github").is_dir());
    conf.starts_with(&folder)
        || above.is_some_and(|p| conf.starts_with(p))
        || project.is_some_and(|p| conf.starts_with(p))
        || conf.starts_with("/etc/iscsi")
}

/// Reads the iscsid.conf the scenario at `scenario` (text `text`) names in
/// `[initiator] iscsid_conf`, if it names one and it lies in
/// [`CONF_FOLDERS`].
pub fn named_conf(scenario: &Path, text: &str) -> Option<ConfText> {
    iscsid_conf_of(scenario, text).map(|path| {
        if conf_place_allowed(scenario, &path) {
            read_conf(&path)
        } else {
            let file = path.display().to_string();
            ConfText {
                text: Err(format!(
                    "{file}: not read: a scenario's iscsid_conf may name a file in {CONF_FOLDERS} \
                     (give any other conf on the command line: --iscsid-conf)"
                )),
                file,
            }
        }
    })
}

/// Reads the regular file at `path`, at most `cap` bytes, as UTF-8.
pub(crate) fn read_capped(path: &Path, cap: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    // fstat of what was opened, not a second lookup of the path.
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{what}, not a regular file"),
        ));
    }
    let too_big = || {
        Error::new(
            ErrorKind::InvalidData,
            format!("larger than {cap} bytes: not a scenario"),
        )
    };
    if meta.len() > cap {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    // The size may have changed since fstat: never read more than cap + 1.
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_give_their_toml_files_sorted_and_files_name_their_conf() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/z.toml"), "").unwrap();
        std::fs::write(dir.path().join("a.toml"), "").unwrap();
        std::fs::write(dir.path().join("notes.md"), "").unwrap();
        let found = scenario_files(&[dir.path().to_path_buf(), dir.path().join("missing.toml")]);
        let names: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.toml", "b/z.toml", "missing.toml"]);
        let s = Path::new("/x/s/a.toml");
        assert_eq!(
            iscsid_conf_of(s, "[initiator]\niscsid_conf = \"../c/site.conf\"\n"),
            Some(PathBuf::from("/x/s/../c/site.conf"))
        );
        assert_eq!(iscsid_conf_of(s, "[initiator]\nprofile = \"x\"\n"), None);
        assert_eq!(iscsid_conf_of(s, "not = [toml"), None);
    }

    #[test]
    fn a_scenario_names_a_conf_only_in_its_folder_or_etc_iscsi() {
        let top = tempfile::tempdir().unwrap();
        // Not a project: no .git or .github above the scenario; the
        // scenario two folders below `dir`.
        let dir = top.path();
        let sub = dir.join("p").join("s");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            dir.join("p/site.conf"),
            "node.session.timeo.replacement_timeout = 5\n",
        )
        .unwrap();
        std::fs::write(dir.join("outside.conf"), "secret = x\n").unwrap();
        std::fs::write(
            sub.join("mine.conf"),
            "node.session.timeo.replacement_timeout = 5\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.join("outside.conf"), sub.join("link.conf")).unwrap();
        let scenario = sub.join("a.toml");
        let named = |rel: &str| {
            named_conf(&scenario, &format!("[initiator]\niscsid_conf = {rel:?}\n")).unwrap()
        };
        assert!(named("mine.conf").text.is_ok());
        assert!(named("../site.conf").text.is_ok());
        for escape in ["../../outside.conf", "link.conf", "/proc/self/status"] {
            let e = named(escape).text.unwrap_err();
            assert!(
                e.contains("not read: a scenario's iscsid_conf may name"),
                "{escape}: {e}"
            );
            assert!(!e.contains("secret"), "{e}");
        }
        // In a project (here: what `init` makes, with .github), the conf
        // beside the scenarios' folder is the project's.
        std::fs::create_dir(dir.join(".github")).unwrap();
        assert!(named("../../outside.conf").text.is_ok());
        assert!(named("/proc/self/status").text.is_err());
    }
}
