//! Property: parsing arbitrary or mutated scenario text never panics, and
//! every error carries a line number inside the text and a field; a
//! scenario that parses plans (`plan::suite`) and predicts without
//! panicking, with finite, non-negative figures and steps inside its I/O
//! phase.

use iscsi_chaos::model::Scenario;
use iscsi_chaos::parse::LoadError;
use proptest::prelude::*;

const SEED: &str = include_str!("../../scenarios/outage/long-blackhole.toml");

/// Shipped scenarios with many kinds of values to mutate.
const SEEDS: &[&str] = &[
    SEED,
    include_str!("../../scenarios/outage/flapping.toml"),
    include_str!("../../scenarios/outage/reset-flapping.toml"),
    include_str!("../../scenarios/impairment/bad-cable.toml"),
    include_str!("../../scenarios/impairment/bandwidth-cap.toml"),
    include_str!("../../scenarios/impairment/overloaded-array.toml"),
    include_str!("../../scenarios/path/mtu-mismatch.toml"),
    include_str!("../../scenarios/target/portal-gone-at-reconnect.toml"),
    include_str!("../../scenarios/target/slow-store.toml"),
];

/// Numbers a hostile or careless scenario writes.
const HOSTILE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "-1e308",
    "1e-308",
    "nan",
    "inf",
    "-inf",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "0.0001",
    "0.1",
    "36000",
    "36000.5",
    "65536",
    "1.5",
    "100",
    "3600",
    "3601",
    "\"5\"",
    "[]",
    "{}",
];

/// The pure stages after the parser: plan and predict.
fn plan_and_predict(s: &Scenario) {
    for p in iscsi_chaos::plan::suite(std::slice::from_ref(s)) {
        assert_eq!(p.prediction.insane(), None, "{}", p.id);
        for st in &p.steps {
            assert!(
                st.at_s.is_finite() && st.at_s >= 0.0 && st.at_s <= s.duration_s + 1e-9,
                "{}: step at {}",
                p.id,
                st.at_s
            );
        }
    }
    assert_eq!(
        iscsi_chaos::oracle::predict_scenario(s).insane(),
        None,
        "{}",
        s.name
    );
}

fn check(text: &str) {
    match Scenario::parse(text, "fuzz.toml") {
        Ok(s) => plan_and_predict(&s),
        Err(LoadError::Invalid(diags)) => {
            assert!(!diags.is_empty());
            let lines = text.split('\n').count().max(1);
            for d in diags {
                assert!(
                    d.line >= 1 && d.line <= lines,
                    "{d} (text has {lines} lines)"
                );
                assert!(d.column >= 1);
                assert!(!d.field.is_empty(), "{d}");
                assert!(d.to_string().starts_with(&format!("fuzz.toml:{}:", d.line)));
            }
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

/// Each `= <value>` of `seed` (picked by `at`) replaced by a hostile
/// number.
fn with_numbers(seed: &str, swaps: &[(prop::sample::Index, prop::sample::Index)]) -> String {
    let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
    let assignments: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(" = ") && !l.trim_start().starts_with('#'))
        .map(|(i, _)| i)
        .collect();
    if assignments.is_empty() {
        return seed.to_string();
    }
    for (at, number) in swaps {
        let i = assignments[at.index(assignments.len())];
        let key = lines[i].split(" = ").next().unwrap_or("").to_string();
        lines[i] = format!(
            "{key} = {}",
            HOSTILE_NUMBERS[number.index(HOSTILE_NUMBERS.len())]
        );
    }
    lines.join("\n") + "\n"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hostile_numbers_never_panic_parse_plan_or_predict(
        seed in any::<prop::sample::Index>(),
        swaps in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..5)
    ) {
        let text = with_numbers(SEEDS[seed.index(SEEDS.len())], &swaps);
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn tomlish_text_never_panics(text in "([a-z_\\[\\]\\.\"=0-9 -]{0,20}\n){0,12}") {
        check(&text);
    }

    #[test]
    fn mutated_scenarios_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, "[a-z0-9=\\[\\]\"\\.\n -]{0,6}"), 1..6)
    ) {
        let mut text = SEED.to_string();
        for (at, op, piece) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            match op {
                0 => text.insert_str(i, &piece),
                1 => { let j = (i + piece.len()).min(text.len()); let mut j = j; while !text.is_char_boundary(j) { j -= 1; } text.replace_range(i..j, ""); }
                2 => { let mut j = (i + piece.len()).min(text.len()); while !text.is_char_boundary(j) { j -= 1; } text.replace_range(i..j, &piece); }
                _ => {
                    // Swap a number for a negative or zero one.
                    text = text.replacen(" = 1", " = -1", 1).replacen(" = 5", " = 0", 1);
                }
            }
        }
        check(&text);
    }
}
