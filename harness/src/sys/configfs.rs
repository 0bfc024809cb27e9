//! LIO's configfs tree from the outside: which objects are ours (by IQN,
//! HBA index and device name), removing one, and finding and removing the
//! leftovers of dead runs. Blocking.

use std::io::{self};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::model::names::{run_of, run_of_iqn, IQN_PREFIX};

/// Where LIO's configfs tree lives.
pub const CONFIGFS_TARGET: &str = "/sys/kernel/config/target";
/// Prefix of our backstore device names.
pub const DEVICE_PREFIX: &str = "iscsi-chaos-";
/// Our fileio HBA indexes: `HBA_BASE + (run hash % HBA_RUN_SLOTS) * 256 + lane`.
pub const HBA_BASE: u64 = 3_000_000_000;
pub const HBA_RUN_SLOTS: u64 = 100_000;
pub const HBA_END: u64 = HBA_BASE + HBA_RUN_SLOTS * 256;
pub fn io_ctx(e: io::Error, what: &str, path: &Path) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("{what} {}", path.display()))
}

/// Shut down the sessions of the ACL at `acl` (changing `cmdsn_depth`
/// makes LIO reinstate them) and wait up to a second until its `info` says
/// none is left. Best effort: the ACL's rmdir closes them anyway.
pub fn shut_down_sessions(acl: &Path) {
    let depth = acl.join("cmdsn_depth");
    let Some(value) = std::fs::read_to_string(&depth)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
    else {
        return;
    };
    // The same value is a no-op (measured): change it; the ACL goes next.
    let other = if value > 1 { value - 1 } else { value + 1 };
    if let Err(e) = std::fs::write(&depth, other.to_string()) {
        tracing::warn!("rewriting {}: {e}", depth.display());
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let info = std::fs::read_to_string(acl.join("info")).unwrap_or_default();
        if info.contains("No active") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::warn!("LIO: sessions of {} still active after 1 s", acl.display());
}

/// Whether `path` is a configfs object of ours: inside one of our targets
/// (`iscsi/<our IQN>/...`) or our HBAs (`core/fileio_<ours>/...`).
pub fn is_our_configfs_path(path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(CONFIGFS_TARGET) else {
        return false;
    };
    let parts: Vec<&str> = rest
        .components()
        .map(|c| match c {
            std::path::Component::Normal(n) => n.to_str().unwrap_or("/"),
            _ => "/",
        })
        .collect();
    if parts.contains(&"/") {
        return false;
    }
    match parts.as_slice() {
        ["iscsi", iqn, ..] => iqn.starts_with(IQN_PREFIX) && iqn.len() > IQN_PREFIX.len(),
        ["core", hba] => is_our_hba(hba),
        ["core", hba, device, ..] => is_our_hba(hba) && device.starts_with(DEVICE_PREFIX),
        _ => false,
    }
}

/// Removes one configfs object of ours (for the ledger, newest first): a
/// link is unlinked; a TPG is disabled first; an ACL's sessions are shut
/// down first (see `set_initiator_access`). Blocking.
pub fn remove_configfs_object(path: &Path) -> Result<()> {
    if path.is_symlink() {
        return std::fs::remove_file(path).map_err(|e| io_ctx(e, "unlink", path));
    }
    let name = file_name(path);
    let parent = path.parent().map(file_name).unwrap_or_default();
    if name.starts_with("tpgt_") {
        let _ = std::fs::write(path.join("enable"), "0");
    } else if parent == "acls" {
        shut_down_sessions(path);
    }
    std::fs::remove_dir(path).map_err(|e| io_ctx(e, "rmdir", path))
}

/// One of our objects found in configfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The run id in its name.
    pub run_id: String,
    /// The target's or the device's configfs folder.
    pub path: PathBuf,
}

pub fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether `name` is one of our HBAs (`fileio_<N>`, N in our range).
pub fn is_our_hba(name: &str) -> bool {
    name.strip_prefix("fileio_")
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| (HBA_BASE..HBA_END).contains(&n))
}

/// Our targets (by IQN prefix) and backstore devices (by name prefix, in
/// fileio HBAs) present in configfs, targets first. Empty if LIO is absent.
pub fn leftovers() -> Vec<Leftover> {
    let root = Path::new(CONFIGFS_TARGET);
    let mut found = Vec::new();
    for t in dir_entries(&root.join("iscsi")) {
        let name = file_name(&t);
        if let Some(run) = run_of_iqn(&name) {
            found.push(Leftover {
                run_id: run.to_string(),
                path: t.clone(),
            });
        }
    }
    for hba in dir_entries(&root.join("core")) {
        if !file_name(&hba).starts_with("fileio_") {
            continue;
        }
        for dev in dir_entries(&hba) {
            let name = file_name(&dev);
            if let Some(run) = name.strip_prefix(DEVICE_PREFIX).and_then(run_of) {
                if dev.is_dir() {
                    found.push(Leftover {
                        run_id: run.to_string(),
                        path: dev.clone(),
                    });
                }
            }
        }
    }
    found
}

/// Remove a whole target tree bottom-up: disable each TPG, then portals,
/// mapped LUNs, ACLs, LUN links, LUNs, TPGs, the target.
fn remove_target_tree(target: &Path) -> Result<()> {
    let tpgs: Vec<PathBuf> = dir_entries(target)
        .into_iter()
        .filter(|p| file_name(p).starts_with("tpgt_"))
        .collect();
    for tpg in &tpgs {
        let _ = std::fs::write(tpg.join("enable"), "0");
        for np in dir_entries(&tpg.join("np")) {
            let _ = std::fs::remove_dir(np);
        }
        for acl in dir_entries(&tpg.join("acls")) {
            for mapped in dir_entries(&acl)
                .into_iter()
                .filter(|p| file_name(p).starts_with("lun_") && p.is_dir() && !p.is_symlink())
            {
                for link in dir_entries(&mapped).into_iter().filter(|p| p.is_symlink()) {
                    let _ = std::fs::remove_file(link);
                }
                let _ = std::fs::remove_dir(&mapped);
            }
            let _ = std::fs::remove_dir(&acl);
        }
        for lun in dir_entries(&tpg.join("lun")) {
            for link in dir_entries(&lun).into_iter().filter(|p| p.is_symlink()) {
                let _ = std::fs::remove_file(link);
            }
            let _ = std::fs::remove_dir(&lun);
        }
        std::fs::remove_dir(tpg).map_err(|e| io_ctx(e, "rmdir", tpg))?;
    }
    std::fs::remove_dir(target).map_err(|e| io_ctx(e, "rmdir", target))
}

/// Remove our configfs objects whose run `is_stale` says is dead: targets
/// first (they hold links to devices), then devices, then HBAs of ours left
/// empty. Returns a description of each removal (or failure). Blocking.
pub fn remove_leftovers(is_stale: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut done = Vec::new();
    let stale: Vec<Leftover> = leftovers()
        .into_iter()
        .filter(|l| is_stale(&l.run_id))
        .collect();
    let core = Path::new(CONFIGFS_TARGET).join("core");
    for l in &stale {
        let is_device = l.path.starts_with(&core);
        let res = if is_device {
            std::fs::remove_dir(&l.path).map_err(|e| io_ctx(e, "rmdir", &l.path))
        } else {
            remove_target_tree(&l.path)
        };
        let what = if is_device { "device" } else { "target" };
        done.push(match res {
            Ok(()) => format!("LIO {what} {}", file_name(&l.path)),
            Err(e) => format!("(could not remove LIO {what} {}: {e:#})", l.path.display()),
        });
        if is_device {
            if let Some(hba) = l.path.parent() {
                // Only ours, and only once empty (an HBA folder holds its
                // devices' folders and nothing else).
                if is_our_hba(&file_name(hba))
                    && dir_entries(hba).iter().all(|p| !p.is_dir())
                    && std::fs::remove_dir(hba).is_ok()
                {
                    done.push(format!("LIO HBA {}", file_name(hba)));
                }
            }
        }
    }
    done
}

/// `<db_root>/pr`, where LIO keeps persistent-reservation state: its
/// db_root from configfs (`/var/target` by default).
pub fn lio_pr_folder() -> PathBuf {
    let root = std::fs::read_to_string("/sys/kernel/config/target/dbroot")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| s.starts_with('/'))
        .unwrap_or_else(|| "/var/target".to_string());
    Path::new(&root).join("pr")
}

/// Whether `path` is a reservation-state file LIO writes for one of our
/// LUNs: `aptpl_` and a unit serial of ours (32 hex digits) in a `pr`
/// folder.
pub fn is_our_pr_state_file(path: &Path) -> bool {
    let in_pr = path.parent().and_then(Path::file_name) == Some(std::ffi::OsStr::new("pr"));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    in_pr
        && path.is_absolute()
        && !path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        && name
            .strip_prefix("aptpl_")
            .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}
