//! Outcome maps: a sweep's runs as tables over two of its axes, each cell
//! the measured outcome beside the predicted one ("no error, stall 6.1 s",
//! "EIO at 9.2 s"), disagreements and borderline cells marked. Written as
//! `outcome.json`, `outcome.md` and the heatmap `outcome.svg`
//! ([`super::heatmap`]) when the report holds sweep points.
//!
//! Rows are the first axis, columns the second (in the order of the
//! point's keys); every other axis, and the target, makes a table of its
//! own, named in its heading.

use std::collections::BTreeMap;

use super::events::{Reporter, RunEvent};
use super::out::OutDir;
pub use super::outcome_grid::{Cell, Outcome, Table};
use super::{Entry, Report, Verdict};

pub const JSON_FILE: &str = "outcome.json";
pub const MD_FILE: &str = "outcome.md";
pub const SVG_FILE: &str = "outcome.svg";

fn errno_name(errno: i32) -> String {
    match errno {
        5 => "EIO".into(),
        110 => "ETIMEDOUT".into(),
        61 => "ENODATA".into(),
        n => format!("errno {n}"),
    }
}

/// What was measured, in a few words.
pub fn measured(e: &Entry) -> String {
    match e.verdict {
        Verdict::Skipped | Verdict::Error => {
            let why = e.reasons.first().map_or("", String::as_str);
            format!("{}: {why}", format!("{:?}", e.verdict).to_lowercase())
        }
        Verdict::Pass | Verdict::Fail => {
            let m = &e.measured;
            let block = match m.first_error_s {
                Some(t) => {
                    let what = m
                        .errnos
                        .first()
                        .map_or_else(|| "error".into(), |n| errno_name(*n));
                    format!("{what} at {t:.1} s")
                }
                None if m.max_stall_s > 0.0 => format!("no error, stall {:.1} s", m.max_stall_s),
                None => "no error".into(),
            };
            match m.fs.as_ref() {
                Some(fs) => format!("{}; {block}", fs_outcome(fs)),
                None => block,
            }
        }
    }
}

/// A filesystem's outcome as a map's cell says it: "fine", "read-only,
/// remount fixes", "shut down, umount needed".
pub fn fs_outcome(fs: &iscsi_chaos_formats::report::FsJson) -> String {
    use iscsi_chaos_formats::probe::{FsMount, Recovery};
    let state = match fs.worst {
        Some(FsMount::Ro) => "read-only",
        Some(FsMount::ShutDown) => "shut down",
        _ => "rw",
    };
    match (state, fs.recovery) {
        ("rw", Some(Recovery::ByItself)) => "fine".into(),
        (s, Some(Recovery::ByItself)) => format!("{s}, fine again by itself"),
        (s, Some(Recovery::Remount)) => format!("{s}, remount fixes"),
        (s, Some(Recovery::Umount)) => format!("{s}, umount needed"),
        (s, Some(Recovery::Never)) => format!("{s}, not brought back"),
        (s, None) => s.to_string(),
    }
}

/// What the oracle predicted, in a few words.
pub fn predicted(e: &Entry) -> String {
    let x = &e.expected;
    let mut s = match x.first_error_s {
        Some(t) => format!("error at {t:.1} ± {:.1} s", x.tolerance_s),
        None => "no error".to_string(),
    };
    if let Some(r) = x.fs_recovery {
        s = format!("filesystem {}; {s}", r.describe());
    }
    if let Some(w) = &x.max_stall_s {
        let (lo, hi) = (w.lo.min(w.hi), w.hi.max(w.lo));
        if hi - lo < 0.05 {
            s.push_str(&format!(", stall {lo:.1} s"));
        } else {
            s.push_str(&format!(", stall {lo:.1}-{hi:.1} s"));
        }
    }
    s
}

/// The outcome map of `report`, if it holds sweep points.
pub fn outcome(report: &Report) -> Option<Outcome> {
    let swept: Vec<&Entry> = report
        .scenarios
        .iter()
        .filter(|e| !e.point.is_empty())
        .collect();
    let first = swept.first()?;
    let mut axes = first.point.keys();
    let row_axis = axes.next()?.clone();
    let column_axis = axes.next().cloned();
    let mut tables: Vec<Table> = Vec::new();
    for e in swept {
        let fixed: BTreeMap<String, String> = e
            .point
            .iter()
            // The target has a table of its own already.
            .filter(|(k, _)| {
                **k != row_axis && Some(*k) != column_axis.as_ref() && k.as_str() != "target"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let row = e.point.get(&row_axis).cloned().unwrap_or_default();
        // Two scenarios swept over the same axes are two tables.
        let scenario = e.name.split('[').next().unwrap_or(&e.name).to_string();
        let column = column_axis
            .as_ref()
            .and_then(|c| e.point.get(c).cloned())
            .unwrap_or_default();
        let at = match tables
            .iter()
            .position(|t| t.scenario == scenario && t.target == e.target && t.fixed == fixed)
        {
            Some(i) => i,
            None => {
                tables.push(Table {
                    scenario: scenario.clone(),
                    target: e.target.clone(),
                    fixed,
                    rows: Vec::new(),
                    columns: Vec::new(),
                    cells: Vec::new(),
                });
                tables.len() - 1
            }
        };
        let t = &mut tables[at];
        if !t.rows.contains(&row) {
            t.rows.push(row.clone());
        }
        if !t.columns.contains(&column) {
            t.columns.push(column.clone());
        }
        t.cells.push(Cell {
            id: e.id.clone(),
            row,
            column,
            verdict: e.verdict,
            measured: measured(e),
            predicted: predicted(e),
            agrees: e.verdict == Verdict::Pass,
            borderline: e.expected.borderline,
            first_error_s: e.measured.first_error_s,
            max_stall_s: matches!(e.verdict, Verdict::Pass | Verdict::Fail)
                .then_some(e.measured.max_stall_s),
        });
    }
    // Numbers in numeric order (a budget's bisection runs them out of order).
    for t in &mut tables {
        sort_numerically(&mut t.rows);
        sort_numerically(&mut t.columns);
    }
    Some(Outcome {
        row_axis,
        column_axis,
        tables,
    })
}

/// Sorts `values` by number when every one is a number; leaves them in
/// their order otherwise.
fn sort_numerically(values: &mut [String]) {
    if values.iter().all(|v| v.parse::<f64>().is_ok()) {
        values.sort_by(|a, b| {
            let (a, b): (f64, f64) = (a.parse().unwrap_or(0.0), b.parse().unwrap_or(0.0));
            a.total_cmp(&b)
        });
    }
}

/// The map as Markdown: one table per target and fixed values.
pub fn markdown(o: &Outcome) -> String {
    let mut md = String::from("# Outcome map\n\n");
    md.push_str(&format!(
        "Rows: `{}`{}. Each cell: measured / predicted; **✗** the run did not \
         agree with the prediction, *borderline* the oracle called it a race.\n",
        o.row_axis,
        o.column_axis
            .as_ref()
            .map_or(String::new(), |c| format!("; columns: `{c}`"))
    ));
    for t in &o.tables {
        let fixed: Vec<String> = t
            .fixed
            .iter()
            .map(|(k, v)| format!("`{k}` = {v}"))
            .collect();
        md.push_str(&format!(
            "\n\n## {} on {}{}\n\n",
            t.scenario,
            t.target,
            if fixed.is_empty() {
                String::new()
            } else {
                format!(", {}", fixed.join(", "))
            }
        ));
        match &o.column_axis {
            Some(col_title) => {
                md.push_str(&format!("| {} \\ {col_title} |", o.row_axis));
                for c in &t.columns {
                    md.push_str(&format!(" {c} |"));
                }
            }
            // One axis: one column of outcomes.
            None => md.push_str(&format!("| {} | measured / predicted |", o.row_axis)),
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(t.columns.len()));
        md.push('\n');
        for r in &t.rows {
            md.push_str(&format!("| {r} |"));
            for c in &t.columns {
                let text = match t.cells.iter().find(|x| &x.row == r && &x.column == c) {
                    None => String::new(),
                    Some(cell) => {
                        let mark = if !cell.agrees {
                            " **✗**"
                        } else if cell.borderline {
                            " *borderline*"
                        } else {
                            ""
                        };
                        format!("{} / {}{mark}", cell.measured, cell.predicted)
                    }
                };
                md.push_str(&format!(" {} |", text.replace('|', "\\|")));
            }
            md.push('\n');
        }
    }
    md
}

/// Writes `outcome.json` and `outcome.md` at the end of a suite with sweep
/// points.
pub struct OutcomeMap {
    pub out: OutDir,
}

impl Reporter for OutcomeMap {
    fn event(&mut self, event: &RunEvent<'_>) {
        let RunEvent::SuiteFinished { report } = event else {
            return;
        };
        let Some(o) = outcome(report) else {
            return;
        };
        let json = serde_json::to_string_pretty(&o).expect("the map serializes");
        for (file, text) in [
            (JSON_FILE, json),
            (MD_FILE, markdown(&o)),
            (SVG_FILE, super::heatmap::render(&o)),
        ] {
            self.out.write_or_say(file, text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Expected, MeasuredJson, Timings};

    #[test]
    fn a_filesystem_s_cell_says_its_worst_state_and_what_brought_it_back() {
        use iscsi_chaos_formats::probe::{FsMount, Recovery};
        use iscsi_chaos_formats::report::FsJson;
        let fs = |worst, recovery| FsJson {
            worst: Some(worst),
            recovery: Some(recovery),
            ..FsJson::default()
        };
        assert_eq!(fs_outcome(&fs(FsMount::Rw, Recovery::ByItself)), "fine");
        assert_eq!(
            fs_outcome(&fs(FsMount::Ro, Recovery::Remount)),
            "read-only, remount fixes"
        );
        assert_eq!(
            fs_outcome(&fs(FsMount::ShutDown, Recovery::Umount)),
            "shut down, umount needed"
        );
    }

    fn entry(
        rt: &str,
        len: &str,
        target: &str,
        first_error: Option<f64>,
        verdict: Verdict,
    ) -> Entry {
        Entry {
            id: format!("s[fault0.duration_s={len},replacement_timeout={rt}]@{target}"),
            name: "s".into(),
            target: target.into(),
            verdict,
            reasons: vec!["first error: expected ...".into()],
            settings: Default::default(),
            point: [
                ("fault[0].duration_s".to_string(), len.to_string()),
                ("replacement_timeout".to_string(), rt.to_string()),
            ]
            .into_iter()
            .collect(),
            faults: Vec::new(),
            expected: Expected {
                first_error_s: first_error.map(|_| 9.0),
                tolerance_s: 1.5,
                borderline: false,
                imprecise: false,
                detection_s: None,
                max_stall_s: None,
                recovery_s: None,
                possible_damage: Vec::new(),
                fs_recovery: None,
                notes: vec![],
            },
            measured: MeasuredJson {
                first_error_s: first_error,
                errnos: first_error.map(|_| 5).into_iter().collect(),
                max_stall_s: first_error.unwrap_or(4.1),
                ..MeasuredJson::default()
            },
            timings: Timings::default(),
        }
    }

    #[test]
    fn a_sweep_becomes_one_table_per_target_with_measured_and_predicted_cells() {
        let report = Report {
            scenarios: vec![
                entry("5", "4", "tgt", None, Verdict::Pass),
                entry("5", "15", "tgt", Some(9.2), Verdict::Pass),
                entry("20", "4", "tgt", None, Verdict::Pass),
                entry("20", "15", "tgt", Some(9.1), Verdict::Fail),
                entry("5", "4", "lio", None, Verdict::Pass),
            ],
            ..Report::default()
        };
        let o = outcome(&report).unwrap();
        assert_eq!(o.row_axis, "fault[0].duration_s");
        assert_eq!(o.column_axis.as_deref(), Some("replacement_timeout"));
        assert_eq!(o.tables.len(), 2);
        let t = &o.tables[0];
        assert_eq!(
            (t.rows.clone(), t.columns.clone()),
            (vec!["4".into(), "15".into()], vec!["5".into(), "20".into()])
        );
        let md = markdown(&o);
        assert!(
            md.contains("| fault[0].duration_s \\ replacement_timeout | 5 | 20 |"),
            "{md}"
        );
        assert!(
            md.contains("| 15 | EIO at 9.2 s / error at 9.0 ± 1.5 s | EIO at 9.1 s / error at 9.0 ± 1.5 s **✗** |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| 4 | no error, stall 4.1 s / no error | no error, stall 4.1 s / no error |"
            ),
            "{md}"
        );
        assert!(md.contains("## s on lio"), "{md}");
        // Another scenario over the same axes gets tables of its own.
        let mut report = report;
        let mut other = entry("5", "4", "tgt", None, Verdict::Pass);
        other.name = "t".into();
        report.scenarios.push(other);
        let o = outcome(&report).unwrap();
        assert_eq!(o.tables.len(), 3);
        assert_eq!(
            (o.tables[2].scenario.as_str(), o.tables[2].cells.len()),
            ("t", 1)
        );
        assert_eq!(o.tables[0].cells.len(), 4);
    }

    #[test]
    fn a_sweep_of_one_axis_is_one_column_of_outcomes() {
        let mut e = entry("5", "4", "tgt", None, Verdict::Pass);
        e.point.remove("fault[0].duration_s");
        let report = Report {
            scenarios: vec![e],
            ..Report::default()
        };
        let md = markdown(&outcome(&report).unwrap());
        assert!(
            md.contains(
                "| replacement_timeout | measured / predicted |\n|---|---|\n| 5 | no error"
            ),
            "{md}"
        );
    }

    #[test]
    fn numeric_axes_are_in_numeric_order_whatever_order_the_runs_came_in() {
        let report = Report {
            scenarios: vec![
                entry("20", "30.5", "tgt", Some(30.7), Verdict::Pass),
                entry("20", "28.5", "tgt", None, Verdict::Pass),
                entry("5", "9", "tgt", None, Verdict::Pass),
            ],
            ..Report::default()
        };
        let t = &outcome(&report).unwrap().tables[0];
        assert_eq!(t.rows, ["9", "28.5", "30.5"]);
        assert_eq!(t.columns, ["5", "20"]);
        let mut words = vec!["b".to_string(), "a".to_string()];
        sort_numerically(&mut words);
        assert_eq!(words, ["b", "a"]);
    }

    #[test]
    fn a_report_without_sweeps_has_no_map() {
        let mut e = entry("5", "4", "tgt", None, Verdict::Pass);
        e.point.clear();
        let report = Report {
            scenarios: vec![e],
            ..Report::default()
        };
        assert_eq!(outcome(&report), None);
    }
}
