//! `cargo xtask chaos` (the main job) and `cargo xtask test` (every test).
//!
//! Both run the harness exactly as a user would: natively when this host's
//! kernel and privileges allow (decided by `iscsi-chaos doctor`, the same
//! check users run), in the lab VM otherwise, with one boot for the whole
//! suite.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use clap::Args;

use iscsi_chaos_lab::cli::{ImageArgs, VmArgs};
use iscsi_chaos_lab::{image, vm};

use crate::workspace::{self, build_binaries, run};

#[derive(Args)]
pub struct ChaosArgs {
    /// Run on this host (fails if it cannot).
    #[arg(long, conflicts_with = "lab")]
    native: bool,
    /// Run in the lab VM even if this host could run natively.
    #[arg(long)]
    lab: bool,
    /// Where report.json and the histories go.
    #[arg(long, default_value = "target/chaos-out")]
    report_dir: PathBuf,
    /// Runs at once (`iscsi-chaos run --jobs`; default: the harness picks
    /// from the CPUs and memory of where it runs).
    #[arg(long)]
    jobs: Option<u16>,
    /// Only shard K of N (`iscsi-chaos run --shard K/N`), e.g. one job of a CI matrix.
    #[arg(long)]
    shard: Option<String>,
    /// Apply the node settings of this iscsid.conf to every scenario (`iscsi-chaos run --iscsid-conf`).
    #[arg(long)]
    iscsid_conf: Option<PathBuf>,
    /// Sweep KEY over values (`iscsi-chaos run --sweep`; repeat for more axes).
    #[arg(long, value_name = "KEY=V1,V2,...")]
    sweep: Vec<String>,
    /// Compare with this baseline report and exit 1 on a regression (`iscsi-chaos run --baseline`).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Also the scenarios marked `long = true` (`iscsi-chaos run --long`).
    #[arg(long)]
    long: bool,
    /// Run each scenario this many times (`iscsi-chaos run --repeat`).
    #[arg(long)]
    repeat: Option<u32>,
    /// Scenario files or folders (default: the shipped suite in scenarios/).
    /// In the lab they must lie inside this workspace (the guest sees it).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    vm: VmArgs,
}

#[derive(Args)]
pub struct TestArgs {
    /// Only the unit tests that need neither root nor the lab.
    #[arg(long)]
    unit_only: bool,
    /// Skip opening the lab suite's report.html in headless Chromium.
    #[arg(long)]
    no_browser: bool,
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    vm: VmArgs,
}

fn harness_binary() -> PathBuf {
    workspace::target_dir().join("debug/iscsi-chaos")
}

/// Where to run: the reason is printed in one line either way.
enum Place {
    Native,
    Lab,
}

fn choose_place(force_native: bool, force_lab: bool) -> Place {
    if force_native {
        eprintln!("chaos: running natively (--native)");
        return Place::Native;
    }
    if force_lab {
        eprintln!("chaos: running in the lab VM (--lab)");
        return Place::Lab;
    }
    let doctor = Command::new(harness_binary())
        .args(["doctor", "--brief"])
        .stdin(Stdio::null())
        .output();
    match doctor {
        Ok(out) if out.status.success() => {
            eprintln!(
                "chaos: running natively: this host has root, the kernel modules and the tools"
            );
            Place::Native
        }
        Ok(out) => {
            let reason = String::from_utf8_lossy(&out.stdout);
            let reason = reason.lines().next().unwrap_or("the host check failed");
            eprintln!("chaos: running in the lab VM: {reason}");
            Place::Lab
        }
        Err(err) => {
            eprintln!("chaos: running in the lab VM: the host check could not run ({err})");
            Place::Lab
        }
    }
}

pub fn chaos(args: &ChaosArgs) -> Result<i32> {
    build_binaries()?;
    let root = workspace::root();
    let report_dir = absolute(&root, &args.report_dir);
    std::fs::create_dir_all(&report_dir)?;
    let scenarios: Vec<PathBuf> = if args.scenarios.is_empty() {
        vec![root.join("scenarios")]
    } else {
        args.scenarios.iter().map(|s| absolute(&root, s)).collect()
    };
    let mut cmd = vec![
        harness_binary().display().to_string(),
        "run".to_string(),
        "--out".to_string(),
        report_dir.display().to_string(),
    ];
    if let Some(jobs) = args.jobs {
        cmd.extend(["--jobs".to_string(), jobs.to_string()]);
    }
    if let Some(shard) = &args.shard {
        cmd.extend(["--shard".to_string(), shard.clone()]);
    }
    for (flag, file) in [
        ("--iscsid-conf", &args.iscsid_conf),
        ("--baseline", &args.baseline),
    ] {
        if let Some(file) = file {
            cmd.extend([
                flag.to_string(),
                absolute(&root, file).display().to_string(),
            ]);
        }
    }
    for sweep in &args.sweep {
        cmd.extend(["--sweep".to_string(), sweep.clone()]);
    }
    if args.long {
        cmd.push("--long".to_string());
    }
    if let Some(n) = args.repeat {
        cmd.extend(["--repeat".to_string(), n.to_string()]);
    }
    cmd.extend(scenarios.iter().map(|s| s.display().to_string()));
    match choose_place(args.native, args.lab) {
        Place::Native => {
            let status = Command::new(&cmd[0])
                .args(&cmd[1..])
                .status()
                .context("starting iscsi-chaos")?;
            Ok(status.code().unwrap_or(1))
        }
        Place::Lab => {
            let image = image::ensure(&args.image, false)?;
            vm::run(&image, &args.vm, &workspace::job(report_dir, cmd))
        }
    }
}

fn absolute(root: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    }
}

/// Unit tests here; then, in one lab boot, every `#[ignore]`d test (those
/// need root and the iSCSI kernel stack; one of them runs the shipped suite).
pub fn test(args: &TestArgs) -> Result<i32> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = workspace::root();
    run(Command::new(&cargo)
        .current_dir(&root)
        .args(["test", "--workspace"]))?;
    if args.unit_only {
        return Ok(0);
    }
    build_binaries()?;
    let tests = test_executables(&cargo, &root)?;
    let report_dir = workspace::target_dir().join("test-out");
    std::fs::create_dir_all(&report_dir)?;
    // Each executable's output also goes to a log of its own, so that a
    // failure's message is repeated at the very end (where a CI excerpt,
    // which shows the tail, finds it).
    let logs = report_dir.join("lab-tests");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    let mut script = String::from("status=0\n");
    for test in &tests {
        let name = test.file_name().unwrap_or_default().to_string_lossy();
        let log = logs.join(format!("{name}.log"));
        script.push_str(&format!(
            "echo \"== lab test: {name}\"; \
             ( {exe} --ignored --test-threads=1 2>&1 || echo failed > {log}.failed ) | tee {log}; \
             [ -e {log}.failed ] && status=1\n",
            exe = test.display(),
            log = log.display()
        ));
    }
    // The shipped suite runs inside harness/tests/lab_suite.rs, which also
    // checks that nothing is left behind; it keeps its output folder here
    // so that its report.html is checked in a browser below.
    script.push_str("exit $status\n");
    let suite_out = report_dir.join("suite");
    let _ = std::fs::remove_dir_all(&suite_out);
    let script = format!("export {SUITE_OUT}={}\n{script}", suite_out.display());
    let image = image::ensure(&args.image, false)?;
    let status = vm::run(
        &image,
        &args.vm,
        &workspace::job(report_dir, vec!["sh".into(), "-c".into(), script]),
    )?;
    if !args.no_browser {
        crate::browser::check(&crate::browser::BrowserArgs {
            report: suite_out,
            screenshot: None,
        })?;
    }
    // The installed-binary path: a second boot, as a user outside the
    // repository starts it.
    crate::outside::check()?;
    repeat_failures(&logs);
    Ok(status)
}

/// The failure sections of the lab tests' logs (what `cargo test` prints
/// under "failures:"), each cut to its first lines, after a heading.
fn repeat_failures(logs: &Path) {
    let Ok(dir) = std::fs::read_dir(logs) else {
        return;
    };
    let mut names: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
    names.sort();
    for log in names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
    {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for section in failure_sections(&text) {
            println!(
                "== lab test failed ({}), repeated from above:",
                log.file_stem().unwrap_or_default().to_string_lossy()
            );
            println!("{section}");
        }
    }
}

/// Lines kept of each failure's section.
const FAILURE_LINES: usize = 40;

/// Each `---- NAME stdout ----` section of a libtest log's "failures:"
/// part, the backtrace's frames left out, cut to [`FAILURE_LINES`] lines.
fn failure_sections(log: &str) -> Vec<String> {
    let Some((_, failures)) = log.split_once("\nfailures:\n") else {
        return Vec::new();
    };
    let failures = failures.split("\nfailures:\n").next().unwrap_or(failures);
    failures
        .split("\n---- ")
        .filter(|s| s.contains(" stdout ----"))
        .map(|s| {
            let lines: Vec<&str> = s
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    !(l.starts_with("at ")
                        || l.split_once(": ")
                            .is_some_and(|(n, _)| n.parse::<u32>().is_ok()))
                })
                .collect();
            let mut kept = format!(
                "---- {}",
                lines[..lines.len().min(FAILURE_LINES)].join("\n")
            );
            if lines.len() > FAILURE_LINES {
                kept.push_str(&format!(
                    "\n[... {} more lines in the log]",
                    lines.len() - FAILURE_LINES
                ));
            }
            kept
        })
        .collect()
}

/// Where the lab suite test keeps its output (harness/tests/lab_suite.rs).
const SUITE_OUT: &str = "ISCSI_CHAOS_SUITE_OUT";

/// The test executables cargo built, from its JSON messages.
fn test_executables(cargo: &str, root: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--message-format=json",
            "--quiet",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("cargo test --no-run")?;
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test = msg["profile"]["test"].as_bool() == Some(true);
        if let (true, Some(exe)) = (is_test, msg["executable"].as_str()) {
            // xtask's own tests need nothing the lab adds.
            if !exe.contains("/xtask-") {
                exes.push(PathBuf::from(exe));
            }
        }
    }
    exes.sort();
    exes.dedup();
    Ok(exes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_cut_from_libtests_output_without_its_backtrace() {
        let log = "running 2 tests\ntest a ... ok\ntest b ... FAILED\n\nfailures:\n\n\
                   ---- b stdout ----\n\nthread 'b' (7) panicked at harness/tests/x.rs:3:5:\n\
                   assertion `left == right` failed: r#1 Error: fault[0] left no evidence\n  \
                   left: Some(1)\n right: Some(0)\nstack backtrace:\n   0: std::panicking::begin\n             \
                   at /rustc/library/std/src/panicking.rs:689:5\n   1: x::b\n\n\n\
                   failures:\n    b\n\ntest result: FAILED. 1 passed; 1 failed\n";
        let sections = failure_sections(log);
        assert_eq!(sections.len(), 1, "{sections:?}");
        let b = &sections[0];
        assert!(b.starts_with("---- b stdout ----"), "{b}");
        assert!(b.contains("fault[0] left no evidence"), "{b}");
        assert!(b.contains("right: Some(0)"), "{b}");
        assert!(!b.contains("panicking.rs") && !b.contains("x::b"), "{b}");
        assert!(failure_sections("running 1 test\ntest a ... ok\n").is_empty());
    }

    #[test]
    fn a_long_failure_is_cut_and_says_so() {
        let body: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let log = format!("failures:\n\n---- c stdout ----\n{body}\nfailures:\n    c\n");
        let sections = failure_sections(&format!("x\n{log}"));
        assert_eq!(sections.len(), 1);
        assert!(sections[0].contains("line 30"), "{}", sections[0]);
        assert!(!sections[0].contains("line 60"), "{}", sections[0]);
        assert!(
            sections[0].ends_with("more lines in the log]"),
            "{}",
            sections[0]
        );
    }
}
