//! Property: parsing arbitrary or mutated scenario text never panics, and
//! every error carries a line number inside the text and a field.

use iscsi_chaos::model::Scenario;
use iscsi_chaos::parse::LoadError;
use proptest::prelude::*;

const SEED: &str = include_str!("../../scenarios/outage/long-blackhole.toml");

fn check(text: &str) {
    match Scenario::parse(text, "fuzz.toml") {
        Ok(_) => {}
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

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
