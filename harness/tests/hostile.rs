//! Hostile input: every scenario below is refused with a located
//! diagnostic (an input error, exit status 2) and quickly; files that are
//! not regular files, or too large, are refused without being read; and a
//! scenario that parses plans and predicts with finite, non-negative
//! figures. No root needed.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use iscsi_chaos::model::Scenario;
use iscsi_chaos::parse::{LoadError, MAX_SCENARIO_BYTES};

const HEAD: &str = "version = 1\nduration_s = 30\n[lane]\ntarget = \"tgt\"\n";

/// Runs `f` on its own thread; fails if it takes longer than `limit`.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: not done within {limit:?}"))
}

/// The scenario is refused; returns its diagnostics (each located).
fn refused(text: &str) -> Vec<iscsi_chaos::parse::Diagnostic> {
    let owned = text.to_string();
    let started = Instant::now();
    let result = within(Duration::from_secs(10), "parse", move || {
        Scenario::parse(&owned, "hostile.toml")
    });
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "parsing took {:?}",
        started.elapsed()
    );
    match result {
        Ok(s) => panic!("accepted a hostile scenario: {s:?}\n{text}"),
        Err(LoadError::Invalid(diags)) => {
            assert!(!diags.is_empty());
            let lines = text.split('\n').count();
            for d in &diags {
                assert!(d.line >= 1 && d.line <= lines, "{d}");
                assert!(d.column >= 1, "{d}");
                assert!(!d.field.is_empty(), "{d}");
            }
            diags
        }
        Err(e) => panic!("not an input diagnostic: {e}"),
    }
}

/// `fault` as the scenario's only fault.
fn fault(body: &str) -> String {
    format!("{HEAD}[[fault]]\n{body}\n")
}

#[test]
fn hostile_numbers_are_diagnostics_naming_field_and_range() {
    let cases: Vec<(String, &str, &str)> = vec![
        // (text, field, a part of the message)
        (HEAD.replace("duration_s = 30", "duration_s = 1e308"), "duration_s", "from 0 to 36000"),
        (HEAD.replace("duration_s = 30", "duration_s = 9223372036854775807"), "duration_s", "from 0 to 36000"),
        (HEAD.replace("duration_s = 30", "duration_s = nan"), "duration_s", "NaN"),
        (HEAD.replace("duration_s = 30", "duration_s = inf"), "duration_s", "inf"),
        (HEAD.replace("duration_s = 30", "duration_s = -inf"), "duration_s", "must be > 0"),
        (HEAD.replace("duration_s = 30", "duration_s = -1"), "duration_s", "must be > 0"),
        (
            fault("kind = \"blackhole\"\nstart_s = 1e308\nduration_s = 1"),
            "fault[0].start_s",
            "from 0 to 36000",
        ),
        (
            fault("kind = \"blackhole\"\nstart_s = -9223372036854775808\nduration_s = 1"),
            "fault[0].start_s",
            "must be >= 0",
        ),
        (
            fault("kind = \"blackhole\"\nstart_s = 1\nduration_s = 1e-300"),
            "fault[0].duration_s",
            ">= 0.1",
        ),
        (
            fault("kind = \"blackhole\"\nstart_s = 1\nduration_s = nan"),
            "fault[0].duration_s",
            "NaN",
        ),
        // A tiny flap period: pulses and gaps below what a step can do.
        (
            fault("kind = \"flap\"\non_s = 0.000001\nperiod_s = 0.000002\nstart_s = 0\nduration_s = 30"),
            "fault[0].on_s",
            ">= 0.1",
        ),
        (
            fault("kind = \"flap\"\non_s = 0.5\nperiod_s = 0.55\nstart_s = 0\nduration_s = 30"),
            "fault[0].period_s",
            "less than 0.1 s",
        ),
        (
            fault("kind = \"flap\"\non_s = 1\nperiod_s = 1e308\nstart_s = 0\nduration_s = 30"),
            "fault[0].period_s",
            "from 0.1 to 36000",
        ),
        (
            fault("kind = \"reset\"\non_s = nan\nperiod_s = 2\nstart_s = 0\nduration_s = 30"),
            "fault[0].on_s",
            "must be > 0",
        ),
        (
            fault("kind = \"netem\"\ndelay_ms = 1e308\nstart_s = 1\nduration_s = 5"),
            "fault[0].delay_ms",
            "at most 60000",
        ),
        (
            fault("kind = \"netem\"\njitter_ms = -1\ndelay_ms = 5\nstart_s = 1\nduration_s = 5"),
            "fault[0].jitter_ms",
            ">= 0",
        ),
        (
            fault("kind = \"netem\"\nloss_pct = nan\nstart_s = 1\nduration_s = 5"),
            "fault[0].loss_pct",
            "0 to 100",
        ),
        (
            fault("kind = \"netem\"\nrate_kbit = 9223372036854775807\nstart_s = 1\nduration_s = 5"),
            "fault[0].rate_kbit",
            "at most 100000000",
        ),
        (
            fault("kind = \"tbf\"\nrate_kbit = -1\nstart_s = 1\nduration_s = 5"),
            "fault[0].rate_kbit",
            "must be > 0",
        ),
        (
            fault("kind = \"slow_store\"\nio_delay_ms = 1e308\nstart_s = 1\nduration_s = 5"),
            "fault[0].io_delay_ms",
            "<= 60000",
        ),
        (
            format!("{HEAD}mtu = 9000\n[[fault]]\nkind = \"mtu\"\nmtu = 9223372036854775807\nstart_s = 1\nduration_s = 5\n"),
            "fault[0].mtu",
            "from 576 to 65535",
        ),
        (format!("{HEAD}mtu = -1\n"), "lane.mtu", "from 576 to 65535"),
        (
            format!("{HEAD}lun_size_mib = 9223372036854775807\n"),
            "lane.lun_size_mib",
            "from 1 to 1048576",
        ),
        (
            format!("{HEAD}[[probe]]\nkind = \"blkprobe\"\ninterval_ms = 9223372036854775807\n"),
            "probe[0].interval_ms",
            "from 1 to 60000",
        ),
        (
            format!("{HEAD}[initiator]\nreplacement_timeout = 9223372036854775807\n"),
            "initiator.replacement_timeout",
            "at most 86400",
        ),
        (
            format!("{HEAD}[initiator]\nnoop_out_interval = 4294967296\nnoop_out_timeout = 5\n"),
            "initiator.noop_out_interval",
            "at most 86400",
        ),
        (
            format!("{HEAD}[initiator.settings]\n\"node.conn[0].timeo.login_timeout\" = 9223372036854775807\n"),
            "initiator.settings.\"node.conn[0].timeo.login_timeout\"",
            "<= 60",
        ),
        (
            format!("{HEAD}[initiator.settings]\n\"node.conn[0].timeo.login_timeout\" = 60\n\"node.session.initial_login_retry_max\" = 50\n"),
            "initiator.settings.\"node.conn[0].timeo.login_timeout\"",
            "more than 135 s",
        ),
        (
            format!("{HEAD}[expect]\ndeadline_s = 1e308\n"),
            "expect.deadline_s",
            "from 0 to 3600",
        ),
        (
            format!("{HEAD}[expect]\nfirst_error = 1e308\n"),
            "expect.first_error",
            "from 0 to 36000",
        ),
        (
            format!("{HEAD}[expect]\nmax_stall_s = inf\n"),
            "expect.max_stall_s",
            "inf",
        ),
        (
            format!("{HEAD}[expect]\nfirst_error = 5\ntolerance_s = 1e308\n"),
            "expect.tolerance_s",
            "from 0 to 36000",
        ),
        (
            format!("{HEAD}[expect]\nmax_lost_writes = -9223372036854775808\n"),
            "expect.max_lost_writes",
            "must be >= 0",
        ),
    ];
    for (text, field, part) in cases {
        let diags = refused(&text);
        let d = diags
            .iter()
            .find(|d| d.field == field)
            .unwrap_or_else(|| panic!("no diagnostic on {field}: {diags:#?}\n{text}"));
        assert!(d.message.contains(part), "{field}: `{part}` not in {d}");
    }
}

#[test]
fn too_many_pulses_or_probes_are_refused() {
    // Each fault within the limit, the scenario not: 2 × 30000 pulses.
    let text = "version = 1\nduration_s = 36000\n[lane]\ntarget = \"tgt\"\n\
        [[fault]]\nkind = \"flap\"\non_s = 0.1\nperiod_s = 0.6\nstart_s = 0\nduration_s = 18000\n\
        [[fault]]\nkind = \"flap\"\non_s = 0.1\nperiod_s = 0.6\nstart_s = 18000\nduration_s = 18000\n";
    let d = refused(text);
    assert!(
        d.iter()
            .any(|d| d.field == "fault[1].duration_s" && d.message.contains("60000 pulses in all")),
        "{d:#?}"
    );
    // One probe per host: a second on the one host is refused at its own line.
    let probes: String = (0..2)
        .map(|i| format!("[[probe]]\nkind = \"blkprobe\"\nname = \"p{i}\"\n"))
        .collect();
    let d = refused(&format!("{HEAD}{probes}"));
    assert_eq!(d[0].field, "probe[1]");
    assert!(
        d[0].message
            .contains("2 probes: a run has one probe per host (1 host(s))"),
        "{}",
        d[0]
    );
    let line_of_second = HEAD.lines().count() + 4;
    assert_eq!(d[0].line, line_of_second, "{}", d[0]);
}

#[test]
fn deep_nesting_and_long_strings_are_refused_quickly() {
    // Deeply nested arrays and inline tables: the TOML parser's own limit,
    // or our type check; never a stack overflow.
    for depth in [100, 10_000, 100_000] {
        let arrays = format!(
            "{HEAD}[[fault]]\nkind = {}1{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        refused(&arrays);
        let tables = format!(
            "{HEAD}[initiator.settings]\n\"node.session.queue_depth\" = {}1{}\n",
            "{a = ".repeat(depth),
            "}".repeat(depth)
        );
        refused(&tables);
        let dotted = format!("{HEAD}[expect]\n{} = 1\n", vec!["a"; depth].join("."));
        refused(&dotted);
    }
    // Long strings: refused without echoing them whole.
    let long = "x".repeat(200_000);
    for text in [
        format!("{HEAD}[[fault]]\nkind = \"{long}\"\nstart_s = 1\nduration_s = 1\n"),
        format!("{HEAD}[initiator.settings]\n\"node.{long}\" = 1\n"),
        format!("{HEAD}[initiator.settings]\n\"node.session.iscsi.InitialR2T\" = \"{long}\"\n"),
        format!("{HEAD}[[probe]]\nkind = \"blkprobe\"\nname = \"{long}\"\n"),
        HEAD.replace(
            "version = 1",
            &format!("version = 1\ndescription = \"{long}\""),
        ),
        format!("{HEAD}[lane.{long}]\n"),
    ] {
        let d = refused(&text);
        for d in d {
            assert!(
                d.to_string().len() < 2_000 + d.field.len(),
                "{}",
                &d.to_string()[..200]
            );
        }
    }
}

fn load_quickly(path: &Path) -> LoadError {
    let p = path.to_path_buf();
    within(
        Duration::from_secs(5),
        &path.display().to_string(),
        move || Scenario::load(&p).expect_err("loaded"),
    )
}

#[test]
fn only_regular_files_of_bounded_size_are_read() {
    // /dev/zero would be read forever.
    let e = load_quickly(Path::new("/dev/zero"));
    assert!(matches!(e, LoadError::Read { .. }), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("/dev/zero: cannot read: a character device"),
        "{shown}"
    );
    // A directory.
    let dir = tempfile::tempdir().unwrap();
    let e = load_quickly(dir.path());
    assert!(
        e.to_string().contains("a directory, not a regular file"),
        "{e}"
    );
    // A FIFO without a writer: neither the open nor the read may block.
    let fifo = dir.path().join("s.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = load_quickly(&fifo);
    assert!(
        e.to_string()
            .contains(&format!("{}: cannot read: a FIFO", fifo.display())),
        "{e}"
    );
    // Larger than the cap: refused by its size; at the cap: parsed.
    let big = dir.path().join("big.toml");
    let mut text = HEAD.to_string();
    text.push_str(&"#".repeat(MAX_SCENARIO_BYTES as usize - text.len()));
    std::fs::write(&big, &text).unwrap();
    Scenario::load(&big).unwrap();
    text.push('#');
    std::fs::write(&big, &text).unwrap();
    let e = load_quickly(&big);
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
    // Not UTF-8.
    std::fs::write(&big, b"version = 1\n\xff\n").unwrap();
    assert!(load_quickly(&big).to_string().contains("not UTF-8"));
    // Missing: the OS's error, naming the file.
    let e = load_quickly(&dir.path().join("none.toml"));
    assert!(e.to_string().contains("none.toml: cannot read"), "{e}");
}

#[test]
fn extreme_but_valid_scenarios_plan_and_predict_sanely() {
    let texts = [
        // The longest run with the most pulses.
        "version = 1\nduration_s = 36000\n[lane]\ntarget = [\"tgt\", \"lio\"]\n\
         [[fault]]\nkind = \"flap\"\non_s = 0.1\nperiod_s = 1\nstart_s = 0\nduration_s = 36000\n"
            .to_string(),
        // The longest outage, NOPs off, queue forever.
        "version = 1\nduration_s = 36000\n[lane]\ntarget = \"lio\"\n[initiator]\n\
         noop_out_interval = 0\nnoop_out_timeout = 0\nreplacement_timeout = -1\n\
         [[fault]]\nkind = \"target_stop\"\nstart_s = 0\nduration_s = 36000\n"
            .to_string(),
        // The largest timers; the slowest impairments.
        "version = 1\nduration_s = 36000\n[lane]\ntarget = \"tgt\"\n[initiator]\n\
         noop_out_interval = 3600\nnoop_out_timeout = 3600\nreplacement_timeout = 3600\n\
         [initiator.settings]\n\"node.conn[0].timeo.login_timeout\" = 45\n\
         \"node.session.initial_login_retry_max\" = 2\n"
            .to_string()
            + "[[fault]]\nkind = \"netem\"\ndelay_ms = 60000\njitter_ms = 60000\nloss_pct = 99.9\nrate_kbit = 1\nstart_s = 0\nduration_s = 18000\n\
               [[fault]]\nkind = \"reset\"\non_s = 0.1\nperiod_s = 0.2\nstart_s = 18000\nduration_s = 3000\n\
               [[fault]]\nkind = \"slow_store\"\nio_delay_ms = 60000\nstart_s = 21000\nduration_s = 15000\n",
    ];
    for text in texts {
        let s = Scenario::parse(&text, "extreme.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let s2 = s.clone();
        let plan = within(Duration::from_secs(20), "plan", move || {
            iscsi_chaos::plan::suite(&[s2])
        });
        assert_eq!(plan.len(), s.lane.targets.len());
        for p in &plan {
            assert_eq!(p.prediction.insane(), None, "{}", p.id);
            assert!(p
                .steps
                .iter()
                .all(|st| st.at_s.is_finite() && st.at_s >= 0.0 && st.at_s <= s.duration_s));
        }
    }
}
