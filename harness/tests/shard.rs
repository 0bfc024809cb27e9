//! Sharding the shipped suite (`run --shard K/N`) and merging the shards'
//! output folders (`iscsi-chaos merge`): the merged report has the full
//! suite's run ids and verdicts, in plan order, and the histories. No root:
//! the shards' reports are made from the plan, as `run` would write them.

use std::path::{Path, PathBuf};
use std::process::Command;

use iscsi_chaos::check::Verdict;
use iscsi_chaos::model::Scenario;
use iscsi_chaos::plan::shard::{select, Shard};
use iscsi_chaos::report::{Entry, EntryExt, Report, Timings};

const HARNESS: &str = env!("CARGO_BIN_EXE_iscsi-chaos");

fn shipped() -> Vec<Scenario> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios"),
        &mut files,
    );
    files
        .iter()
        .map(|f| Scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A verdict that differs between runs, so that a mix-up would show.
fn verdict_of(index: usize) -> Verdict {
    [Verdict::Pass, Verdict::Fail, Verdict::Skipped][index % 3]
}

#[test]
fn three_shards_merged_equal_the_whole_suite() {
    let plan = iscsi_chaos::plan::suite(&shipped());
    assert!(plan.len() >= 30, "{}", plan.len());
    let ids: Vec<String> = plan.iter().map(|p| p.id.clone()).collect();
    let entry = |i: usize| {
        Entry::unchecked(
            &plan[i].run,
            &plan[i].prediction,
            verdict_of(i),
            format!("run {i}"),
            Timings::default(),
        )
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut seen = Vec::new();
    for k in 1..=3 {
        let shard = Shard { index: k, count: 3 };
        let mine = select(&plan, shard);
        assert!(!mine.is_empty(), "shard {shard} is empty");
        seen.extend(mine.iter().copied());
        let report = Report {
            plan: ids.clone(),
            shard: Some(shard.to_string()),
            scenarios: mine.iter().map(|&i| entry(i)).collect(),
            ..Report::default()
        };
        let dir = tmp.path().join(format!("shard{k}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("report.json"), report.to_json()).unwrap();
        for &i in &mine {
            std::fs::write(dir.join(plan[i].history_file()), format!("history {i}\n")).unwrap();
        }
        dirs.push(dir);
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..plan.len()).collect::<Vec<_>>(),
        "each run in one shard"
    );

    let merged_dir = tmp.path().join("merged");
    let out = Command::new(HARNESS)
        .arg("merge")
        .args(&dirs)
        .arg("--out")
        .arg(&merged_dir)
        .output()
        .unwrap();
    // Some runs "failed": the merged report's exit status says so.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged =
        Report::from_json(&std::fs::read_to_string(merged_dir.join("report.json")).unwrap())
            .unwrap();
    let whole = Report {
        plan: ids.clone(),
        scenarios: (0..plan.len()).map(entry).collect(),
        ..Report::default()
    };
    assert_eq!(merged, whole);
    for (i, p) in plan.iter().enumerate() {
        let h = std::fs::read_to_string(merged_dir.join(p.history_file())).unwrap();
        assert_eq!(h, format!("history {i}\n"));
    }

    // A shard left out is named, and nothing is written.
    let partial = tmp.path().join("partial");
    let out = Command::new(HARNESS)
        .arg("merge")
        .args(&dirs[..2])
        .arg("--out")
        .arg(&partial)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a shard missing?"), "{stderr}");
    assert!(!partial.join("report.json").exists());
}

#[test]
fn shards_are_balanced_by_expected_time() {
    use iscsi_chaos::plan::shard::expected_s;
    let plan = iscsi_chaos::plan::suite(&shipped());
    let total: f64 = plan.iter().map(expected_s).sum();
    let longest = plan.iter().map(expected_s).fold(0.0, f64::max);
    for n in [2, 3, 4] {
        for k in 1..=n {
            let load: f64 = select(&plan, Shard { index: k, count: n })
                .iter()
                .map(|&i| expected_s(&plan[i]))
                .sum();
            // Longest-first greedy: no shard exceeds its share by more than
            // the longest run.
            assert!(
                load <= total / n as f64 + longest,
                "{k}/{n}: {load} of {total}"
            );
        }
    }
}
