//! The scenario parser on arbitrary UTF-8: it never panics, every error is
//! a located diagnostic (a line inside the text, a column, a field), and a
//! scenario it accepts goes through the other pure stages (expansion, the
//! oracle, the nemesis plan) without panicking either. The property test in
//! harness/tests/parse_fuzz.rs checks the same on every `cargo test`.

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
            for run in scenario.expand() {
                assert!(!run.id().is_empty());
            }
            let _ = iscsi_chaos::oracle::predict_scenario(&scenario);
            let _ = iscsi_chaos::nemesis::plan(&scenario.faults);
        }
        Err(LoadError::Invalid(diags)) => {
            assert!(!diags.is_empty(), "an error without a diagnostic");
            let lines = text.split('\n').count().max(1);
            for d in &diags {
                assert!(d.line >= 1 && d.line <= lines, "{d} (text has {lines} lines)");
                assert!(d.column >= 1, "{d}");
                assert!(!d.field.is_empty(), "{d}");
                assert!(d.to_string().starts_with(&format!("fuzz.toml:{}:", d.line)));
            }
        }
        Err(e) => panic!("parsing text gave a non-input error: {e}"),
    }
});
