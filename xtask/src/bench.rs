//! `cargo xtask bench`: the timing figures we quote, measured the same way
//! every time. Timings are reported, never asserted.
//!
//! - lab: boot-to-command (guest uptime when the job starts) and a whole
//!   trivial run's wall time, over several boots.
//! - suite: per scenario, the harness's own overhead (setup, teardown) and the
//!   delay from a fault step's scheduled instant to its qdisc being in place,
//!   read from the report.json of a `cargo xtask chaos` run.
//! - lanes (`--jobs 1,2,4`): the whole suite in the lab once per jobs value:
//!   wall time, the serial sum of its runs, their ratio, verdicts, the worst
//!   |measured - predicted| first error, and the largest probe op gap
//!   outside fault windows (what parallel lanes must not blur).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use iscsi_chaos_lab::cli::{ImageArgs, VmArgs};
use iscsi_chaos_lab::{image, vm};

use crate::workspace;

#[derive(Args)]
pub struct BenchArgs {
    /// Number of trivial lab boots to time.
    #[arg(long, default_value_t = 3)]
    boots: usize,
    /// Also summarise the timings of this report.json (e.g. target/chaos-out/report.json).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Run the shipped suite in the lab at each of these `--jobs` values
    /// (comma-separated, e.g. 1,2,4) and compare wall time and fidelity.
    #[arg(long, value_delimiter = ',')]
    jobs: Vec<u16>,
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    vm: VmArgs,
}

fn stats(values: &[f64]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    format!(
        "mean {mean:.1} s (min {min:.1}, max {max:.1}, n={})",
        values.len()
    )
}

pub fn bench(args: &BenchArgs) -> Result<i32> {
    let image = image::ensure(&args.image, false)?;
    if !args.jobs.is_empty() {
        return lanes(args, &image);
    }
    let (mut boot, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..args.boots {
        let b = vm::boot(
            &image,
            &args.vm,
            &workspace::job(
                workspace::target_dir().join("lab-out"),
                vec!["true".to_string()],
            ),
        )?;
        boot.extend(b.boot_to_command_s);
        wall.push(b.wall_s);
    }
    println!("lab ({}):", image.release);
    println!("  boot to command:   {}", stats(&boot));
    println!("  trivial run wall:  {}", stats(&wall));
    if let Some(report) = &args.report {
        let report = if report.is_absolute() {
            report.clone()
        } else {
            workspace::root().join(report)
        };
        let text = std::fs::read_to_string(&report)
            .with_context(|| format!("reading {}", report.display()))?;
        let parsed = iscsi_chaos_formats::report::Report::from_json(&text)
            .with_context(|| format!("parsing {}", report.display()))?;
        println!("suite ({}):", report.display());
        println!(
            "  {:<28} {:>8} {:>10} {:>11} {:>18}",
            "scenario", "target", "setup s", "teardown s", "fault apply ms"
        );
        let f =
            |v: Option<f64>, scale: f64| v.map_or("-".to_string(), |x| format!("{:.1}", x * scale));
        for s in &parsed.scenarios {
            let t = &s.timings;
            println!(
                "  {:<28} {:>8} {:>10} {:>11} {:>18}",
                s.name,
                s.target,
                f(t.setup_s, 1.0),
                f(t.teardown_s, 1.0),
                f(t.fault_apply_latency_max_s, 1000.0)
            );
        }
        capture_costs(report.parent().unwrap_or(std::path::Path::new(".")))?;
    }
    Ok(0)
}

/// The switch capture's cost per run, from the histories beside a report:
/// the share of one CPU its thread used while it ran, the frames it saw,
/// and the file it wrote.
fn capture_costs(folder: &std::path::Path) -> Result<()> {
    use iscsi_chaos_formats::history::{Event, History};
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(id) = name.strip_suffix(".history.jsonl") else {
            continue;
        };
        let h = History::from_json_lines(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        for e in &h.entries {
            if let Event::Capture(c) = &e.event {
                rows.push((id.to_string(), c.clone()));
            }
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!("capture (share of one CPU while the run ran):");
    println!(
        "  {:<44} {:>7} {:>9} {:>9} {:>10} {:>9}",
        "run", "cpu %", "frames", "frames/s", "file MiB", "truncated"
    );
    let mut shares = Vec::new();
    for (id, c) in &rows {
        let share = if c.wall_s > 0.0 {
            c.cpu_s / c.wall_s
        } else {
            0.0
        };
        shares.push(share * 100.0);
        println!(
            "  {:<44} {:>7.2} {:>9} {:>9.0} {:>10.1} {:>9}",
            id,
            share * 100.0,
            c.frames,
            c.frames as f64 / c.wall_s.max(1e-9),
            c.bytes as f64 / 1048576.0,
            c.truncated_at
                .map_or("-".to_string(), |t| format!("{t:.1}"))
        );
    }
    let max = shares.iter().cloned().fold(0.0, f64::max);
    let mean = shares.iter().sum::<f64>() / shares.len() as f64;
    println!(
        "  cpu %: mean {mean:.2}, max {max:.2} over {} runs",
        shares.len()
    );
    Ok(())
}

/// After the last fault ends, recovery (relogin, the stalled write's
/// retry) belongs to the fault too: gaps starting before this are not
/// counted as "outside fault windows".
const RECOVERY_MARGIN_S: f64 = 15.0;

/// One `--jobs` value's figures.
struct LaneFigures {
    jobs: u16,
    wall_s: f64,
    serial_s: f64,
    passed: usize,
    runs: usize,
    worst_first_error_s: Option<f64>,
    worst_quiet_gap_s: f64,
}

fn lanes(args: &BenchArgs, image: &image::Image) -> Result<i32> {
    crate::workspace::build_binaries()?;
    let root = workspace::root();
    let base = workspace::target_dir().join("bench-lanes");
    let mut figures = Vec::new();
    for &jobs in &args.jobs {
        let out = base.join(format!("jobs-{jobs}"));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        let cmd = vec![
            workspace::target_dir()
                .join("debug/iscsi-chaos")
                .display()
                .to_string(),
            "run".into(),
            "--jobs".into(),
            jobs.to_string(),
            "--out".into(),
            out.display().to_string(),
            root.join("scenarios").display().to_string(),
        ];
        let boot = vm::boot(image, &args.vm, &workspace::job(out.clone(), cmd))?;
        let wall_s = boot.wall_s - boot.boot_to_command_s.unwrap_or(0.0);
        let f = figures_of(jobs, wall_s, &out)?;
        println!(
            "jobs {jobs}: wall {:.0} s, {} of {} passed (exit {})",
            f.wall_s, f.passed, f.runs, boot.status
        );
        figures.push(f);
    }
    let serial_wall = figures.iter().find(|f| f.jobs == 1).map(|f| f.wall_s);
    println!(
        "lanes ({}, {} host cores):",
        image.release,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  {:>4} {:>8} {:>10} {:>7} {:>9} {:>8} {:>14} {:>14}",
        "jobs",
        "wall s",
        "serial s",
        "ratio",
        "vs -j1",
        "passed",
        "worst 1st err",
        "worst quiet gap"
    );
    for f in &figures {
        println!(
            "  {:>4} {:>8.0} {:>10.0} {:>7.2} {:>9} {:>8} {:>14} {:>14.2}",
            f.jobs,
            f.wall_s,
            f.serial_s,
            f.wall_s / f.serial_s.max(1e-9),
            serial_wall.map_or("-".into(), |s| format!("{:.2}", f.wall_s / s)),
            format!("{}/{}", f.passed, f.runs),
            f.worst_first_error_s
                .map_or("-".into(), |x| format!("{x:.2} s")),
            f.worst_quiet_gap_s
        );
    }
    Ok(0)
}

fn figures_of(jobs: u16, wall_s: f64, out: &std::path::Path) -> Result<LaneFigures> {
    use iscsi_chaos_formats::report::{history_file, Report, Verdict};
    let text = std::fs::read_to_string(out.join("report.json"))
        .with_context(|| format!("no report.json in {}", out.display()))?;
    let report = Report::from_json(&text)?;
    let mut f = LaneFigures {
        jobs,
        wall_s,
        serial_s: 0.0,
        passed: 0,
        runs: report.scenarios.len(),
        worst_first_error_s: None,
        worst_quiet_gap_s: 0.0,
    };
    for e in &report.scenarios {
        let t = &e.timings;
        f.serial_s +=
            t.setup_s.unwrap_or(0.0) + t.timeline_s.unwrap_or(0.0) + t.teardown_s.unwrap_or(0.0);
        if e.verdict == Verdict::Pass {
            f.passed += 1;
        }
        if let (Some(want), Some(got)) = (e.expected.first_error_s, e.measured.first_error_s) {
            let d = (got - want).abs();
            f.worst_first_error_s = Some(f.worst_first_error_s.map_or(d, |w: f64| w.max(d)));
        }
        if let Ok(text) = std::fs::read_to_string(out.join(history_file(&e.id))) {
            if let Ok(h) = iscsi_chaos_formats::history::History::from_json_lines(&text) {
                f.worst_quiet_gap_s = f.worst_quiet_gap_s.max(quiet_gap(&h));
            }
        }
    }
    Ok(f)
}

/// The largest gap between probe operations outside the fault windows
/// (from the first fault's begin to the last one's end plus recovery) and
/// before verification.
fn quiet_gap(h: &iscsi_chaos_formats::history::History) -> f64 {
    use iscsi_chaos_formats::history::{Event, FaultPhase};
    use iscsi_chaos_formats::probe::ProbeEvent;
    let mut first_begin = f64::INFINITY;
    let mut last_end = f64::NEG_INFINITY;
    let mut verify = f64::INFINITY;
    let mut ops = Vec::new();
    for e in &h.entries {
        match &e.event {
            Event::Fault {
                phase: FaultPhase::Begin,
                ..
            } => first_begin = first_begin.min(e.t),
            Event::Fault {
                phase: FaultPhase::End,
                ..
            } => last_end = last_end.max(e.t),
            Event::Probe {
                event: ProbeEvent::Op { t, .. },
                ..
            } => ops.push(*t),
            Event::Probe {
                event: ProbeEvent::VerifyStart { t, .. },
                ..
            } => verify = verify.min(*t),
            _ => {}
        }
    }
    ops.retain(|t| *t < verify);
    ops.sort_by(f64::total_cmp);
    let fault = (first_begin, last_end + RECOVERY_MARGIN_S);
    ops.windows(2)
        .filter(|w| w[1] <= fault.0 || w[0] >= fault.1)
        .map(|w| w[1] - w[0])
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_chaos_formats::history::{Event, FaultPhase, History};
    use iscsi_chaos_formats::probe::{OpKind, ProbeEvent};

    fn op(h: &mut History, t: f64) {
        h.push(
            t,
            Event::Probe {
                probe: "p".into(),
                event: ProbeEvent::Op {
                    t,
                    start: t - 0.001,
                    op: OpKind::Write,
                    seq: 0,
                    block: 0,
                    ok: true,
                    errno: None,
                },
            },
        );
    }

    fn fault(h: &mut History, t: f64, phase: FaultPhase) {
        h.push(
            t,
            Event::Fault {
                step: 0,
                phase,
                kind: "blackhole".into(),
                scheduled: t,
                path: None,
            },
        );
    }

    #[test]
    fn gaps_inside_fault_windows_and_recovery_do_not_count() {
        let mut h = History::default();
        for t in [1.0, 1.1, 1.9, 2.0] {
            op(&mut h, t);
        }
        fault(&mut h, 3.0, FaultPhase::Begin);
        fault(&mut h, 10.0, FaultPhase::End);
        // The fault's own stall (2 -> 20) and recovery do not count.
        for t in [20.0, 26.0, 26.5, 27.2] {
            op(&mut h, t);
        }
        assert!((quiet_gap(&h) - 0.8).abs() < 1e-9, "{}", quiet_gap(&h));
        // A quiet stall after recovery does.
        op(&mut h, 30.0);
        assert!((quiet_gap(&h) - 2.8).abs() < 1e-9, "{}", quiet_gap(&h));
    }
}
