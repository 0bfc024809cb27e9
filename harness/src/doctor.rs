//! `iscsi-chaos doctor`: can this host run scenarios natively? Each missing
//! piece comes with how to get it. `cargo xtask chaos` uses the same check to
//! choose between the native path and the lab VM.

use std::path::Path;
use std::process::{Command, Stdio};

/// One thing the harness needs.
pub struct Need {
    pub what: &'static str,
    /// `None`: present. `Some(hint)`: missing, and how to get it.
    pub missing: Option<String>,
    /// Needed by every scenario (not only by one target kind).
    pub essential: bool,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Loaded, built in, or loadable (`modprobe -n` dry run).
fn module_available(name: &str) -> bool {
    if Path::new("/sys/module").join(name).exists() {
        return true;
    }
    tool("modprobe")
        && Command::new("modprobe")
            .args(["-n", "-q", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

pub fn needs() -> Vec<Need> {
    let mut needs = vec![Need {
        what: "root",
        missing: (!is_root()).then(|| {
            "run as root: the harness creates namespaces, qdiscs and iSCSI sessions".into()
        }),
        essential: true,
    }];
    let kernel = |m: &'static str, essential: bool| {
        Need {
        what: m,
        missing: (!module_available(m)).then(|| {
            format!("kernel module {m} is not available: this kernel lacks it (use the lab: `cargo xtask chaos --lab`)")
        }),
        essential,
    }
    };
    needs.push(kernel("iscsi_tcp", true));
    needs.push(kernel("sd_mod", true));
    needs.push(kernel("sch_netem", true));
    needs.push(kernel("veth", true));
    needs.push(kernel("target_core_mod", false));
    // slow_store scenarios only.
    needs.push(kernel("dm_delay", false));
    for (t, package) in [("dmsetup", "dmsetup"), ("losetup", "mount")] {
        needs.push(Need {
            what: t,
            missing: (!tool(t)).then(|| {
                format!("{t} is not installed (slow_store only): apt-get install {package}")
            }),
            essential: false,
        });
    }
    for (t, package) in [
        ("iscsiadm", "open-iscsi"),
        ("iscsid", "open-iscsi"),
        ("tgtd", "tgt"),
        ("tgtadm", "tgt"),
    ] {
        needs.push(Need {
            what: t,
            missing: (!tool(t)).then(|| format!("{t} is not installed: apt-get install {package}")),
            essential: true,
        });
    }
    needs.push(Need {
        what: "configfs",
        missing: (!Path::new("/sys/kernel/config").is_dir()).then(|| {
            "configfs is not mounted (LIO only): mount -t configfs none /sys/kernel/config".into()
        }),
        essential: false,
    });
    needs
}

/// The first missing essential piece, if any.
pub fn first_problem() -> Option<String> {
    needs()
        .into_iter()
        .filter(|n| n.essential)
        .find_map(|n| n.missing)
}

/// Loads the modules the harness uses (iscsiadm and tc would too, but an
/// explicit load gives a clear error, and sd_mod is never autoloaded without udev).
pub fn load_modules() {
    for m in ["sd_mod", "iscsi_tcp", "sch_netem", "veth"] {
        let _ = Command::new("modprobe")
            .args(["-q", m])
            .stderr(Stdio::null())
            .status();
    }
}

pub fn command(brief: bool) -> u8 {
    let needs = needs();
    if brief {
        return match needs
            .iter()
            .filter(|n| n.essential)
            .find_map(|n| n.missing.as_ref())
        {
            Some(problem) => {
                println!("{problem}");
                1
            }
            None => 0,
        };
    }
    let mut essential_missing = false;
    for need in &needs {
        match &need.missing {
            None => println!("ok       {}", need.what),
            Some(hint) => {
                let label = if need.essential {
                    "MISSING"
                } else {
                    "optional"
                };
                essential_missing |= need.essential;
                println!("{label:<8} {}: {hint}", need.what);
            }
        }
    }
    u8::from(essential_missing)
}
