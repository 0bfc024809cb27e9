//! Mounts, as far as the harness undoes them: whether a folder is a mount
//! point (/proc/self/mountinfo), and its lazy unmount.

use std::path::Path;

use anyhow::{Context, Result};

/// Whether `dir` is a mount point now.
pub fn is_mounted(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| mount_points(&info).any(|p| Path::new(&p) == dir))
        .unwrap_or(false)
}

/// The mount points of a mountinfo text (field 5, octal escapes undone).
fn mount_points(info: &str) -> impl Iterator<Item = String> + '_ {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
}

/// `\040` and the like back into their bytes.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches the mount at `dir` now (MNT_DETACH: it goes from the tree at
/// once and the filesystem lets its disk go when its last user ends).
pub fn detach(dir: &Path) -> Result<()> {
    nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH)
        .with_context(|| format!("unmounting {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_with_their_escapes_undone() {
        let info = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
                    90 22 8:16 / /tmp/a\\040b rw - xfs /dev/sdb rw\n";
        let points: Vec<String> = mount_points(info).collect();
        assert_eq!(points, vec!["/".to_string(), "/tmp/a b".to_string()]);
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/no/such/folder")));
    }
}
