//! `iscsi-chaos doctor`: can this host run scenarios natively? Each missing
//! piece comes with how to get it. `cargo xtask chaos` uses the same check to
//! choose between the native path and the lab VM.
//!
//! Needs come in two tiers: [`GLOBAL`] ones every run has (missing one stops
//! the whole `run`), and those of one run, from its target kind and fault
//! kinds ([`run_needs`]): a run whose needs are missing is "skipped" with the
//! reason. A new target or fault kind adds its arm to [`target_needs`] or
//! [`fault_needs`] (the matches are exhaustive, so the compiler asks for it).

use std::path::Path;

use crate::model::{Run, TargetKind};

pub use crate::model::needs::*;
use Requirement::{Configfs, LioPrFolder, Module, Root, Tool};

/// Needed by every run: missing one stops the whole `run`.
pub const GLOBAL: &[Requirement] = &[
    Root,
    Module("iscsi_tcp"),
    Module("sd_mod"),
    Module("veth"),
    // The lane's switch.
    Module("bridge"),
    Tool {
        name: "iscsiadm",
        package: "open-iscsi",
    },
    Tool {
        name: "iscsid",
        package: "open-iscsi",
    },
];

/// What a run on this target kind needs beyond [`GLOBAL`].
pub fn target_needs(target: TargetKind) -> &'static [Requirement] {
    match target {
        TargetKind::Tgt => &[TGTD, TGTADM],
        TargetKind::Lio => &[
            Module("target_core_mod"),
            Module("iscsi_target_mod"),
            Configfs,
        ],
    }
}

/// Everything one run needs beyond [`GLOBAL`]: its target's, then its
/// faults', then its probes' filesystems', each once.
pub fn run_needs(run: &Run) -> Vec<Requirement> {
    let mut needs: Vec<Requirement> = Vec::new();
    let all = target_needs(run.target)
        .iter()
        .chain(run.scenario.faults.iter().flat_map(|f| f.kind.needs()))
        .chain(
            run.scenario
                .probes
                .iter()
                .filter_map(|p| p.fs.as_ref())
                .flat_map(|fs| fs.fs.needs()),
        )
        .chain(
            run.scenario
                .probes
                .iter()
                .filter(|p| p.fio.is_some())
                .map(|_| &crate::model::needs::FIO),
        )
        .chain(fencing_needs(run));
    for need in all {
        if !needs.contains(need) {
            needs.push(*need);
        }
    }
    needs
}

/// What `[fencing]` needs: sg_persist, and on LIO its reservation folder.
fn fencing_needs(run: &Run) -> &'static [Requirement] {
    match (&run.scenario.fencing, run.target) {
        (None, _) => &[],
        (Some(_), TargetKind::Lio) => &[SG_PERSIST, LioPrFolder],
        (Some(_), TargetKind::Tgt) => &[SG_PERSIST],
    }
}

/// Why the run must be skipped on this host, or `None` if it can run:
/// what its target cannot do, then what the host lacks.
pub fn skip_reason(run: &Run) -> Option<String> {
    if let Some(why) = run.unsupported() {
        return Some(why.to_string());
    }
    skip_reason_with(run, Requirement::missing)
}

/// [`skip_reason`] with the host probe given (for tests).
pub fn skip_reason_with(
    run: &Run,
    probe: impl Fn(&Requirement) -> Option<String>,
) -> Option<String> {
    let missing: Vec<String> = run_needs(run).iter().filter_map(probe).collect();
    (!missing.is_empty())
        .then(|| format!("this host lacks what the run needs: {}", missing.join("; ")))
}

impl Requirement {
    pub fn name(&self) -> &'static str {
        match self {
            Root => "root",
            Module(m) => m,
            Tool { name, .. } => name,
            Configfs => "configfs",
            LioPrFolder => "LIO's reservation folder",
        }
    }

    /// `None`: present. `Some(hint)`: missing, and how to get it.
    pub fn missing(&self) -> Option<String> {
        match *self {
            Root => (!is_root()).then(|| {
                "run as root: the harness creates namespaces, qdiscs and iSCSI sessions".into()
            }),
            Module(m) => (!module_available(m)).then(|| {
                format!("kernel module {m} is not available: this kernel lacks it (use the lab: `iscsi-chaos run --lab ...`)")
            }),
            Tool { name, package } => (!tool(name))
                .then(|| format!("{name} is not installed: apt-get install {package}")),
            Configfs => (!Path::new("/sys/kernel/config").is_dir()).then(|| {
                "configfs is not mounted: mount -t configfs none /sys/kernel/config".into()
            }),
            LioPrFolder => {
                let dir = crate::sys::configfs::lio_pr_folder();
                (!dir.is_dir()).then(|| {
                    format!(
                        "{} is missing: LIO keeps persistent-reservation state there and refuses every PERSISTENT RESERVE OUT without it (mkdir -p {}; targetcli's setup makes it)",
                        dir.display(),
                        dir.display()
                    )
                })
            }
        }
    }
}

/// One thing the harness needs, as `doctor` lists it.
pub struct Need {
    pub what: &'static str,
    /// `None`: present. `Some(hint)`: missing, and how to get it.
    pub missing: Option<String>,
    /// Needed by every run ([`GLOBAL`]); the others skip only the runs that
    /// need them.
    pub essential: bool,
    /// Who needs it, for the others: "tgt runs", "netem faults".
    pub used_by: &'static str,
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
    tool("modprobe") && modprobe(&["-n", "-q", name])
}

/// Every requirement, with who needs it: the global ones, then each target
/// kind's and each fault family's.
fn all_requirements() -> Vec<(Requirement, bool, &'static str)> {
    let mut all: Vec<(Requirement, bool, &'static str)> =
        GLOBAL.iter().map(|r| (*r, true, "every run")).collect();
    let mut more = |reqs: &[Requirement], used_by: &'static str| {
        for r in reqs {
            if !all.iter().any(|(x, _, _)| x == r) {
                all.push((*r, false, used_by));
            }
        }
    };
    more(&[NETEM], "blackhole, netem and flap faults");
    more(&[Module("sch_tbf")], "tbf faults");
    more(FIREWALL, "reset and mtu faults");
    more(SLOW_STORE, "slow_store faults");
    more(crate::model::needs::EXT4, "fs probes on ext4");
    more(crate::model::needs::XFS, "fs probes on xfs");
    more(target_needs(TargetKind::Tgt), "tgt runs");
    more(target_needs(TargetKind::Lio), "lio runs");
    all
}

pub fn needs() -> Vec<Need> {
    all_requirements()
        .into_iter()
        .map(|(r, essential, used_by)| Need {
            what: r.name(),
            missing: r.missing(),
            essential,
            used_by,
        })
        .collect()
}

/// The first missing global piece, if any: without it nothing can run.
pub fn first_problem() -> Option<String> {
    GLOBAL.iter().find_map(Requirement::missing)
}

/// What the shipped suite needs to run natively rather than in the lab: the
/// global pieces, netem and tgt (`doctor --brief`, `cargo xtask chaos`).
fn suite_problem() -> Option<String> {
    GLOBAL
        .iter()
        .chain(&[NETEM])
        .chain(target_needs(TargetKind::Tgt))
        .find_map(Requirement::missing)
}

/// Loads the modules the harness uses (iscsiadm and tc would too, but an
/// explicit load gives a clear error, and sd_mod is never autoloaded without udev).
pub fn load_modules() {
    for m in ["sd_mod", "iscsi_tcp", "sch_netem", "veth", "bridge"] {
        modprobe(&["-q", m]);
    }
}

pub fn command(brief: bool) -> u8 {
    if brief {
        return match suite_problem() {
            Some(problem) => {
                println!("{problem}");
                1
            }
            None => 0,
        };
    }
    let mut essential_missing = false;
    for need in needs() {
        match &need.missing {
            None => println!("ok       {}", need.what),
            Some(hint) if need.essential => {
                essential_missing = true;
                println!("MISSING  {}: {hint}", need.what);
            }
            Some(hint) => println!(
                "missing  {}: {hint} ({} are skipped)",
                need.what, need.used_by
            ),
        }
    }
    u8::from(essential_missing)
}

/// Runs modprobe (bounded); whether it succeeded.
fn modprobe(args: &[&str]) -> bool {
    let mut cmd = crate::sys::cmd::blocking_command("modprobe");
    cmd.args(args);
    crate::sys::cmd::output_blocking(&mut cmd, "modprobe", None, crate::sys::cmd::TOOL_TIMEOUT)
        .is_ok_and(|out| out.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scenario;

    fn runs(target: &str, faults: &str) -> Vec<Run> {
        let text = format!("version = 1\nduration_s = 20\n[lane]\ntarget = {target}\n{faults}");
        Scenario::parse(&text, "x.toml").unwrap().expand()
    }

    const BLACKHOLE: &str = "[[fault]]\nkind = \"blackhole\"\nstart_s = 1\nduration_s = 2\n";
    const STOP: &str = "[[fault]]\nkind = \"target_stop\"\nstart_s = 5\nduration_s = 2\n";

    #[test]
    fn a_run_needs_its_targets_and_its_faults_pieces() {
        let r = runs("[\"tgt\", \"lio\"]", &format!("{BLACKHOLE}{STOP}"));
        assert_eq!(run_needs(&r[0]), vec![TGTD, TGTADM, NETEM]);
        assert_eq!(
            run_needs(&r[1]),
            vec![
                Module("target_core_mod"),
                Module("iscsi_target_mod"),
                Configfs,
                NETEM
            ]
        );
        // target_stop alone needs nothing beyond the target.
        let r = runs("\"tgt\"", STOP);
        assert_eq!(run_needs(&r[0]), vec![TGTD, TGTADM]);
        // Two netem-based faults: netem once.
        let second = BLACKHOLE.replace("start_s = 1", "start_s = 10");
        let r = runs("\"lio\"", &format!("{BLACKHOLE}{second}"));
        assert_eq!(run_needs(&r[0]).iter().filter(|n| **n == NETEM).count(), 1);
    }

    #[test]
    fn a_run_is_skipped_with_each_missing_piece() {
        let r = runs("[\"tgt\", \"lio\"]", BLACKHOLE);
        let no_lio_no_netem = |req: &Requirement| match req {
            Module("target_core_mod") | Module("sch_netem") => Some(format!("no {}", req.name())),
            _ => None,
        };
        assert_eq!(
            skip_reason_with(&r[0], no_lio_no_netem).as_deref(),
            Some("this host lacks what the run needs: no sch_netem")
        );
        assert_eq!(
            skip_reason_with(&r[1], no_lio_no_netem).as_deref(),
            Some("this host lacks what the run needs: no target_core_mod; no sch_netem")
        );
        assert_eq!(skip_reason_with(&r[0], |_| None), None);
    }

    #[test]
    fn global_needs_are_the_ones_every_run_shares() {
        let names: Vec<&str> = GLOBAL.iter().map(Requirement::name).collect();
        for must in ["root", "iscsi_tcp", "iscsiadm"] {
            assert!(names.contains(&must), "{must}");
        }
        // Per-run needs are not global: a host without them still runs the rest.
        for r in [NETEM, TGTD, Module("target_core_mod"), NFT] {
            assert!(!GLOBAL.contains(&r), "{r:?}");
        }
        // doctor lists each piece once.
        let all = all_requirements();
        for (i, (r, _, _)) in all.iter().enumerate() {
            assert!(!all[i + 1..].iter().any(|(x, _, _)| x == r), "{r:?} twice");
        }
    }
}
