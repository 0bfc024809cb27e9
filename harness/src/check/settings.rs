//! The timers the kernel really used (the history's `Settings` entries,
//! read from sysfs after login and at the end) against what the run asked
//! for. A difference is a warning, not a failure: the run measured the
//! kernel's timers, and the prediction was made from the asked ones.

use std::collections::BTreeMap;

use crate::history::{Event, History};
use crate::model::multipath::Multipath;
use crate::model::timing::SCSI_TIMEOUT_S;
use crate::model::Initiator;

/// What each sysfs value should read, and the setting it comes from. With
/// multipath, multipathd writes its fast_io_fail_tmo into recovery_tmo.
fn asked(i: &Initiator, mp: Option<&Multipath>) -> Vec<(&'static str, i64, &'static str)> {
    let recovery = match mp {
        Some(mp) if mp.fast_io_fail_tmo.is_some() => (
            mp.effective_recovery_tmo(i.replacement_timeout),
            "multipath's fast_io_fail_tmo (multipathd writes it to recovery_tmo)",
        ),
        _ => (i.replacement_timeout, "replacement_timeout"),
    };
    vec![
        ("session.recovery_tmo", recovery.0, recovery.1),
        (
            "connection.recv_tmo",
            i64::from(i.noop_out_interval),
            "noop_out_interval",
        ),
        (
            "connection.ping_tmo",
            i64::from(i.noop_out_timeout),
            "noop_out_timeout",
        ),
        (
            "session.abort_tmo",
            i64::from(i.abort_timeout()),
            "node.session.err_timeo.abort_timeout",
        ),
        (
            "disk.timeout",
            SCSI_TIMEOUT_S as i64,
            "the SCSI command timeout the model assumes",
        ),
    ]
}

/// Whether sysfs value `got` is what `want` asked for (a negative
/// replacement_timeout is "never", however the kernel writes it).
fn same(want: i64, got: &str) -> bool {
    match got.trim().parse::<i64>() {
        Ok(got) => got == want || (want < 0 && got < 0),
        Err(_) => false,
    }
}

/// The values read after login, and a warning for each value that differs
/// from what was asked or that changed by the end of the run (a further
/// path's values are keyed `path<N>.<key>`).
pub fn effective(
    history: &History,
    i: &Initiator,
    mp: Option<&Multipath>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let read = |when: &str| {
        history.entries.iter().find_map(|e| match &e.event {
            Event::Settings { when: w, values } if w == when => Some(values.clone()),
            _ => None,
        })
    };
    let Some(start) = read("after_login") else {
        return (BTreeMap::new(), Vec::new());
    };
    let mut warnings = Vec::new();
    let asked = asked(i, mp);
    for (key, got) in &start {
        let base = match key.split_once('.') {
            Some((p, rest)) if p.starts_with("path") => rest,
            _ => key.as_str(),
        };
        if let Some((_, want, setting)) = asked.iter().find(|(k, _, _)| *k == base) {
            let want = *want;
            if !same(want, got) {
                warnings.push(format!(
                    "the kernel used {key} = {got} where {setting} asked for {want}: \
                     the prediction assumed {want}"
                ));
            }
        }
    }
    if let Some(end) = read("at_end") {
        for (key, before) in &start {
            match end.get(key) {
                Some(after) if after != before => warnings.push(format!(
                    "{key} changed during the run: {before} after login, {after} at the end \
                     (a record edited after login, or another daemon rewriting it)"
                )),
                _ => {}
            }
        }
    }
    (start, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(after_login: &[(&str, &str)], at_end: Option<&[(&str, &str)]>) -> History {
        let values = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut h = History::default();
        h.push(
            1.0,
            Event::Settings {
                when: "after_login".into(),
                values: values(after_login),
            },
        );
        if let Some(end) = at_end {
            h.push(
                9.0,
                Event::Settings {
                    when: "at_end".into(),
                    values: values(end),
                },
            );
        }
        h
    }

    fn initiator() -> Initiator {
        Initiator {
            noop_out_interval: 2,
            noop_out_timeout: 2,
            replacement_timeout: 5,
            ..Initiator::default()
        }
    }

    #[test]
    fn what_the_kernel_uses_as_asked_gives_no_warning() {
        let kv = [
            ("session.recovery_tmo", "5"),
            ("connection.recv_tmo", "2"),
            ("connection.ping_tmo", "2"),
            ("session.abort_tmo", "15"),
            ("disk.timeout", "30"),
            ("disk.eh_timeout", "10"),
        ];
        let (values, warnings) = effective(&history(&kv, Some(&kv)), &initiator(), None);
        assert_eq!(values.len(), 6);
        assert_eq!(warnings, Vec::<String>::new());
    }

    #[test]
    fn a_timer_other_than_asked_or_rewritten_during_the_run_is_a_warning() {
        let start = [("session.recovery_tmo", "120"), ("disk.timeout", "30")];
        let end = [("session.recovery_tmo", "120"), ("disk.timeout", "60")];
        let (_, warnings) = effective(&history(&start, Some(&end)), &initiator(), None);
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(
            warnings[0].starts_with(
                "the kernel used session.recovery_tmo = 120 where replacement_timeout asked for 5"
            ),
            "{warnings:#?}"
        );
        assert!(
            warnings[1].starts_with("disk.timeout changed during the run: 30 after login, 60"),
            "{warnings:#?}"
        );
    }

    #[test]
    fn never_is_never_however_the_kernel_writes_it() {
        let mut i = initiator();
        i.replacement_timeout = -1;
        assert!(same(-1, "-1") && same(-1, "-2147483648"));
        let (_, warnings) = effective(&history(&[("session.recovery_tmo", "-1")], None), &i, None);
        assert!(warnings.is_empty(), "{warnings:#?}");
        // A history from before this was recorded: nothing to say.
        assert_eq!(
            effective(&History::default(), &i, None),
            (BTreeMap::new(), Vec::new())
        );
    }
}
