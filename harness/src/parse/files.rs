//! Which files a set of scenario paths stands for: the `*.toml` files of
//! folders (searched recursively, sorted) and the files a scenario names
//! (`[initiator] iscsid_conf`, relative to its folder). `run --lab` copies
//! exactly these into the guest.

use std::path::{Path, PathBuf};

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
}
