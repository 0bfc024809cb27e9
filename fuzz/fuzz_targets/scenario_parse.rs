//! The scenario parser on arbitrary UTF-8: it never panics, every error is
//! a located diagnostic (a line inside the text, a column, a field, of
//! bounded size), and a scenario it accepts goes through the other pure
//! stages (the plan: `plan::suite`, with its fault steps and the oracle's
//! prediction per target) without panicking, with finite, non-negative
//! predictions and steps inside the I/O phase. The property tests in
//! harness/tests/parse_fuzz.rs check the same on every `cargo test`.

#![no_main]

use iscsi_chaos::model::Scenario;
use iscsi_chaos::parse::LoadError;
use libfuzzer_sys::fuzz_target;


fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Scenario::parse(text, "fuzz.toml") {
        Ok(scenario) => {
            for planned in iscsi_chaos::plan::suite(std::slice::from_ref(&scenario)) {
                assert!(!planned.id.is_empty());
                assert_eq!(planned.prediction.insane(), None);
                for step in &planned.steps {
                    assert!(
                        step.at_s.is_finite()
                            && step.at_s >= 0.0
                            && step.at_s <= scenario.duration_s + 1e-9,
                        "step at {}",
                        step.at_s
                    );
                }
            }
            assert_eq!(iscsi_chaos::oracle::predict_scenario(&scenario).insane(), None);
        }
        Err(LoadError::Invalid(diags)) => {
            assert!(!diags.is_empty(), "an error without a diagnostic");
            let lines = text.split('\n').count().max(1);
            for d in &diags {
                assert!(d.line >= 1 && d.line <= lines, "{d} (text has {lines} lines)");
                assert!(d.column >= 1, "{d}");
                assert!(!d.field.is_empty(), "{d}");
                assert!(d.to_string().len() < 4096, "an unbounded diagnostic");
                assert!(d.to_string().starts_with(&format!("fuzz.toml:{}:", d.line)));
            }
        }
        Err(e) => panic!("parsing text gave a non-input error: {e}"),
    }
});
