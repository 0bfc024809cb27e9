//! Shards' reports into one: the report one unsharded run would have
//! written (entries in plan order), up to timings. Refuses reports of
//! different plans, a run reported twice, and a run no shard reported.

use std::collections::BTreeMap;

use super::{Entry, Report};

/// Merges the shards' reports (`(where, report)`, `where` for messages).
pub fn merge(reports: &[(String, Report)]) -> Result<Report, String> {
    let Some((first_at, first)) = reports.first() else {
        return Err("nothing to merge".into());
    };
    if first.plan.is_empty() {
        return Err(format!(
            "{first_at}: the report lists no plan (written by an older iscsi-chaos?)"
        ));
    }
    let mut by_id: BTreeMap<&str, (&str, &Entry)> = BTreeMap::new();
    for (at, report) in reports {
        if report.schema != first.schema {
            return Err(format!(
                "{at}: schema {} differs from {first_at}'s {}",
                report.schema, first.schema
            ));
        }
        if report.plan != first.plan {
            return Err(format!(
                "{at} was run from another plan than {first_at} (other scenarios or versions): its runs cannot be merged"
            ));
        }
        for entry in &report.scenarios {
            if !first.plan.contains(&entry.id) {
                return Err(format!("{at}: run {:?} is not in the plan", entry.id));
            }
            if let Some((other, _)) = by_id.insert(&entry.id, (at, entry)) {
                return Err(format!("run {} is in both {other} and {at}", entry.id));
            }
        }
    }
    let missing: Vec<&str> = first
        .plan
        .iter()
        .map(String::as_str)
        .filter(|id| !by_id.contains_key(id))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "no report has run(s) {}: is a shard missing?",
            missing.join(", ")
        ));
    }
    Ok(Report {
        schema: first.schema,
        plan: first.plan.clone(),
        shard: None,
        scenarios: first
            .plan
            .iter()
            .map(|id| by_id[id.as_str()].1.clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Expected, MeasuredJson, Timings, Verdict};

    fn entry(id: &str, verdict: Verdict) -> Entry {
        Entry {
            id: id.into(),
            name: id.split('@').next().unwrap().into(),
            target: id.split('@').nth(1).unwrap_or("tgt").into(),
            verdict,
            reasons: vec![],
            settings: Default::default(),
            point: Default::default(),
            faults: Vec::new(),
            expected: Expected {
                first_error_s: None,
                tolerance_s: 1.0,
                borderline: false,
                imprecise: false,
                detection_s: None,
                max_stall_s: None,
                recovery_s: None,
                possible_damage: Vec::new(),
                fs_recovery: None,
                notes: vec![],
            },
            measured: MeasuredJson::default(),
            timings: Timings::default(),
        }
    }

    fn report(plan: &[&str], ids: &[&str]) -> Report {
        Report {
            plan: plan.iter().map(|s| s.to_string()).collect(),
            scenarios: ids.iter().map(|id| entry(id, Verdict::Pass)).collect(),
            ..Report::default()
        }
    }

    #[test]
    fn shards_merge_in_plan_order_and_gaps_or_overlaps_are_refused() {
        let plan = ["a@tgt", "a@lio", "b", "c@tgt"];
        let merged = merge(&[
            ("s2".into(), report(&plan, &["a@lio", "c@tgt"])),
            ("s1".into(), report(&plan, &["a@tgt", "b"])),
        ])
        .unwrap();
        let ids: Vec<&str> = merged.scenarios.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, plan);
        assert_eq!(merged.shard, None);

        let err = merge(&[("s1".into(), report(&plan, &["a@tgt", "b"]))]).unwrap_err();
        assert!(err.contains("a@lio, c@tgt"), "{err}");
        let err = merge(&[
            ("s1".into(), report(&plan, &["a@tgt", "b"])),
            ("s2".into(), report(&plan, &["b", "a@lio", "c@tgt"])),
        ])
        .unwrap_err();
        assert!(err.contains("run b is in both s1 and s2"), "{err}");
        let err = merge(&[
            ("s1".into(), report(&plan, &["a@tgt"])),
            ("s2".into(), report(&["x"], &["x"])),
        ])
        .unwrap_err();
        assert!(err.contains("another plan"), "{err}");
        assert!(merge(&[]).is_err());
        assert!(merge(&[("old".into(), report(&[], &[]))])
            .unwrap_err()
            .contains("no plan"));
    }
}
