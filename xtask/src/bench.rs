//! `cargo xtask bench`: the timing figures we quote, measured the same way
//! every time. Timings are reported, never asserted.
//!
//! - lab: boot-to-command (guest uptime when the job starts) and a whole
//!   trivial run's wall time, over several boots.
//! - suite: per scenario, the harness's own overhead (setup, teardown) and the
//!   delay from a fault step's scheduled instant to its qdisc being in place,
//!   read from the report.json of a `cargo xtask chaos` run.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::{image, vm, workspace, ImageArgs, VmArgs};

#[derive(Args)]
pub struct BenchArgs {
    /// Number of trivial lab boots to time.
    #[arg(long, default_value_t = 3)]
    boots: usize,
    /// Also summarise the timings of this report.json (e.g. target/chaos-out/report.json).
    #[arg(long)]
    report: Option<PathBuf>,
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
    let (mut boot, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..args.boots {
        let b = vm::boot(&image, &args.vm, &["true".to_string()])?;
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
    }
    Ok(0)
}
