//! Snapshots of report.json and the terminal table, from checked runs of
//! the shipped outage scenarios over hand-built histories.

use std::path::Path;

use guest_probes::{OpKind, ProbeEvent};
use iscsi_chaos::check::{check, Verdict};
use iscsi_chaos::history::{Event, FaultPhase, History};
use iscsi_chaos::model::Scenario;
use iscsi_chaos::oracle::predict_scenario;
use iscsi_chaos::report::{Entry, EntryExt, Report, SummaryTableExt, Timings};

fn load(name: &str) -> Scenario {
    Scenario::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/outage")
            .join(name),
    )
    .unwrap()
}

fn op(h: &mut History, seq: u64, start: f64, done: f64, errno: Option<i32>) {
    h.push(
        done,
        Event::Probe {
            probe: "blkprobe".into(),
            event: ProbeEvent::Op {
                t: done,
                start,
                op: OpKind::Write,
                seq,
                block: seq,
                ok: errno.is_none(),
                errno,
            },
        },
    );
}

/// Ops every 10 ms from 100 s; an outage [b, e); the op issued at b
/// completes at `release` (failing with EIO at `eio` if given, later ops
/// failing fast until release).
fn history(b: f64, e: f64, release: f64, eio: Option<f64>, lost: u64) -> History {
    let mut h = History::default();
    let mut seq = 0;
    let mut t = 100.0;
    while t < b {
        seq += 1;
        op(&mut h, seq, t, t + 0.002, None);
        t += 0.01;
    }
    for (at, phase) in [(b, FaultPhase::Begin), (e, FaultPhase::End)] {
        h.push(
            at,
            Event::Fault {
                step: 0,
                phase,
                kind: "blackhole".into(),
                scheduled: at - 0.0031,
                path: None,
            },
        );
    }
    // The blackhole's evidence: its qdisc dropped what was sent meanwhile.
    h.push(
        e,
        Event::Qdisc {
            step: 0,
            side: "to_target".into(),
            kind: "netem".into(),
            packets: 40,
            bytes: 40 * 1500,
            drops: 40,
        },
    );
    seq += 1;
    match eio {
        None => op(&mut h, seq, b, release, None),
        Some(x) => {
            op(&mut h, seq, b, x, Some(5));
            let mut t = x + 0.01;
            while t < release {
                seq += 1;
                op(&mut h, seq, t, t + 0.001, Some(5));
                t += 0.01;
            }
        }
    }
    let mut t = release + 0.01;
    while t < release + 2.0 {
        seq += 1;
        op(&mut h, seq, t, t + 0.002, None);
        t += 0.01;
    }
    h.push(
        t + 1.0,
        Event::Probe {
            probe: "blkprobe".into(),
            event: ProbeEvent::Summary {
                t: t + 1.0,
                acked_writes: seq / 2,
                lost_writes: lost,
                corrupt_writes: 0,
                unverified_writes: 0,
                ops: seq,
                errors: 0,
            },
        },
    );
    h.sort();
    h
}

fn report() -> Report {
    let timings = Timings {
        setup_s: Some(3.21),
        timeline_s: Some(12.0),
        teardown_s: Some(1.05),
        fault_apply_latency_max_s: None,
    };
    let mut report = Report::default();
    let short = load("short-blackhole.toml");
    let long = load("long-blackhole.toml");
    for (scenario, h) in [
        (&short, history(103.0, 105.5, 106.0, None, 0)),
        (&long, history(103.0, 118.0, 119.6, Some(112.2), 0)),
        // The long outage again, failing: an early error and lost writes.
        (&long, history(103.0, 118.0, 119.6, Some(108.0), 2)),
    ] {
        let run = &scenario.expand()[0];
        let p = predict_scenario(scenario);
        let c = check(&h, scenario, &p);
        report.push(Entry::checked(run, &p, &c, 103.0, timings.clone()));
    }
    let run = &short.expand()[0];
    report.push(Entry::unchecked(
        run,
        &predict_scenario(&short),
        Verdict::Skipped,
        "LIO: kernel module target_core_mod missing",
        Timings::default(),
    ));
    report
}

#[test]
fn report_json_snapshot() {
    let r = report();
    let verdicts: Vec<Verdict> = r.scenarios.iter().map(|e| e.verdict).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Pass,
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Skipped
        ]
    );
    assert_eq!(r.exit_status(), 1);
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["schema"], 1);
    insta::assert_json_snapshot!(json, {
        ".scenarios[].timings.setup_s" => "[setup_s]",
        ".scenarios[].timings.timeline_s" => "[timeline_s]",
        ".scenarios[].timings.teardown_s" => "[teardown_s]",
        ".scenarios[].timings.fault_apply_latency_max_s" => "[latency]",
    });
}

#[test]
fn summary_table_snapshot() {
    insta::assert_snapshot!(report().summary_table());
}
