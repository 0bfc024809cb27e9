//! Sweeps: a scenario's `[sweep]` table and `--sweep KEY=V1,V2,...` axes,
//! expanded into one scenario per point of the grid.
//!
//! A point is the scenario file with each axis's value written in (the TOML
//! document edited, then validated like any file), so every check of a
//! hand-written file holds for every point. It is named
//! `stem[key=value,...]` (stable: the axes in the order given, file axes
//! first) and keeps its coordinates ([`Scenario::point`]).
//!
//! Axis keys: `target`; the initiator's short names (`replacement_timeout`,
//! `noop_out_interval`, `noop_out_timeout`) or any iscsiadm node key
//! (`node.session.timeo.replacement_timeout`, `node.session.err_timeo.…`);
//! a fault parameter `fault[N].field`; or a dotted path into the file
//! (`duration_s`, `lane.lun_size_mib`, `expect.max_stall_s`).
//!
//! Invariant: a point's problem names the file, line and key of the axis
//! that made it (or `--sweep` for a command-line axis), and the value.
use std::path::Path;

pub use self::axis::{
    file_axes, parse_cli_axis, parse_option_axis, shown, Axis, Origin, PATH_ROOTS,
};
use self::axis::{id_key, resolve, set, Seg};
use crate::model::Scenario;
use crate::parse::diag::{quote_key, Diagnostic, LoadError};
use crate::parse::files::ConfText;

mod axis;
pub mod iscsid_conf;

/// Most points one scenario may expand to.
pub const MAX_POINTS: usize = 1000;
/// Every point of the grid of `axes`, as (axis index, value index) lists.
fn grid(axes: &[Axis]) -> Vec<Vec<usize>> {
    let mut points = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                (0..axis.values.len()).map(move |v| {
                    let mut q = p.clone();
                    q.push(v);
                    q
                })
            })
            .collect();
    }
    points
}

/// The scenario of `text` at every point of its `[sweep]` axes and `cli`
/// (a file without either is the one scenario it describes). `conf`: the
/// iscsid.conf the scenario names, as the caller read it
/// ([`crate::parse::files::named_conf`]).
pub fn expand(
    text: &str,
    path: &Path,
    cli: &[Axis],
    conf: Option<&ConfText>,
) -> Result<Vec<Scenario>, LoadError> {
    let file = path.display().to_string();
    let mut axes = file_axes(&file, text).map_err(LoadError::Invalid)?;
    // The scenario's own profile or iscsid.conf goes under everything else.
    let own_conf = scenario_conf(&file, text, conf)?;
    // A command-line axis replaces a file axis of the same key; settings
    // (unnamed axes) come first, so a sweep of the same key overrides them.
    axes.retain(|a| !cli.iter().any(|c| resolve(&c.key) == resolve(&a.key)));
    let (settings, sweeps): (Vec<Axis>, Vec<Axis>) = cli.iter().cloned().partition(|a| !a.named);
    let axes: Vec<Axis> = own_conf
        .into_iter()
        .chain(settings)
        .chain(axes)
        .chain(sweeps)
        .collect();
    let base = Scenario::parse(text, path)?;
    if axes.is_empty() {
        return Ok(vec![base]);
    }
    let named = axes.iter().any(|a| a.named);
    let points = grid(&axes);
    if points.len() > MAX_POINTS {
        let (line, column) = match axes[0].origin {
            Origin::File { line, column } => (line, column),
            Origin::Cli { .. } | Origin::Conf { .. } => (0, 0),
        };
        return Err(LoadError::Invalid(vec![Diagnostic::new(
            &file,
            line,
            column,
            "sweep",
            format!("{} points, more than {MAX_POINTS}", points.len()),
            Some("sweep fewer values, or split the sweep over files".into()),
        )]));
    }
    let mut doc: toml::Table = text.parse().map_err(|_| {
        LoadError::Invalid(vec![Diagnostic::new(
            &file,
            1,
            1,
            "sweep",
            "cannot be read".into(),
            None,
        )])
    })?;
    doc.remove("sweep");
    let mut out = Vec::with_capacity(points.len());
    let mut diags = Vec::new();
    for point in points {
        let mut d = doc.clone();
        let coords: Vec<(&Axis, &toml::Value)> = axes
            .iter()
            .zip(&point)
            .map(|(a, &v)| (a, &a.values[v]))
            .collect();
        let mut failed = false;
        for (axis, value) in &coords {
            let path_of = resolve(&axis.key).expect("checked when the axis was read");
            if let Err(e) = set(&mut d, &path_of, (*value).clone()) {
                diags.push(axis_diag(&file, axis, value, e));
                failed = true;
            }
        }
        if failed {
            continue;
        }
        let edited = toml::to_string(&d).expect("a TOML table serializes");
        match Scenario::parse(&edited, path) {
            Ok(mut s) => {
                let swept: Vec<&(&Axis, &toml::Value)> =
                    coords.iter().filter(|(a, _)| a.named).collect();
                if named {
                    let ids: Vec<String> = swept
                        .iter()
                        .map(|(a, v)| format!("{}={}", id_key(&a.key), shown(v)))
                        .collect();
                    s.name = format!("{}[{}]", base.name, ids.join(","));
                }
                s.point = swept
                    .iter()
                    .map(|(a, v)| (a.key.clone(), shown(v)))
                    .collect();
                out.push(s);
            }
            Err(LoadError::Invalid(found)) => {
                // Told at the axis that made it, the point's own problem.
                let (axis, value) = coords
                    .iter()
                    .rev()
                    .find(|(a, _)| {
                        found
                            .iter()
                            .any(|d| d.field.contains(&field_of_key(&a.key)))
                    })
                    .or(coords.last())
                    .copied()
                    .expect("a point has axes");
                for f in found {
                    diags.push(axis_diag(
                        &file,
                        axis,
                        value,
                        format!("{}: {}", f.field, f.message),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        diags.dedup_by(|a, b| a.message == b.message && a.line == b.line);
        Err(LoadError::Invalid(diags))
    }
}

/// The settings of the scenario's `[initiator] profile` or `iscsid_conf`
/// (`conf`, read by the caller), as unnamed axes: each one the file does
/// not set itself (its own keys override the profile).
fn scenario_conf(file: &str, text: &str, conf: Option<&ConfText>) -> Result<Vec<Axis>, LoadError> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        // Scenario::parse says what is wrong with it.
        return Ok(Vec::new());
    };
    let initiator = doc.get("initiator").and_then(toml::Value::as_table);
    let field = |k: &str| {
        initiator
            .and_then(|i| i.get(k))
            .and_then(toml::Value::as_str)
    };
    let at = |k: &str| {
        let (line, column) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.trim_start().starts_with(k))
            .map_or((1, 1), |(i, l)| (i + 1, l.len() - l.trim_start().len() + 1));
        (line, column)
    };
    let conf = if let Some(name) = field("profile") {
        let Some(conf) = crate::model::profiles::profile(name) else {
            return Ok(Vec::new()); // Scenario::parse names the bad profile.
        };
        iscsid_conf::parse(&format!("profile {name}"), conf)
    } else if let Some(conf) = conf {
        iscsid_conf::parse_read(conf)
    } else {
        return Ok(Vec::new());
    };
    let conf = conf.map_err(|e| {
        let (line, column) = at("iscsid_conf");
        LoadError::Invalid(vec![Diagnostic::new(
            file,
            line,
            column,
            "initiator.iscsid_conf",
            e,
            None,
        )])
    })?;
    let has = |segs: &[Seg]| {
        let mut v: Option<&toml::Value> = None;
        let mut table = Some(&doc);
        for s in segs {
            let Seg::Key(k) = s else { return false };
            v = table.and_then(|t| t.get(k));
            table = v.and_then(toml::Value::as_table);
        }
        v.is_some()
    };
    Ok(conf
        .settings
        .into_iter()
        .filter(|a| resolve(&a.key).is_ok_and(|segs| !has(&segs)))
        .collect())
}

/// The field name a key's problems are reported under.
fn field_of_key(key: &str) -> String {
    match resolve(key).as_deref() {
        Ok([.., Seg::Key(last)]) => last.clone(),
        _ => key.to_string(),
    }
}

fn axis_diag(file: &str, axis: &Axis, value: &toml::Value, message: String) -> Diagnostic {
    let value = shown(value);
    // One redaction path: a secret's value is never in a message.
    let value = crate::model::settings::redacted(&axis.key, &value);
    let at = format!("at {} = {value}: {message}", axis.key);
    match &axis.origin {
        Origin::File { line, column } => Diagnostic::new(
            file,
            *line,
            *column,
            &format!("sweep.{}", quote_key(&axis.key)),
            at,
            None,
        ),
        Origin::Cli { option } => {
            Diagnostic::new(file, 0, 0, &format!("{option} {}", axis.key), at, None)
        }
        // Told at the iscsid.conf's line, naming the scenario it broke.
        Origin::Conf { file: conf, line } => Diagnostic::new(
            conf,
            *line,
            1,
            &axis.key,
            format!("{value} (in scenario {file}): {message}"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "version = 1\nduration_s = 30\n[lane]\ntarget = [\"tgt\", \"lio\"]\n\
        [initiator]\nnoop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5\n\
        [[probe]]\nkind = \"blkprobe\"\ninterval_ms = 10\n\
        [[fault]]\nkind = \"blackhole\"\nstart_s = 3\nduration_s = 15\n";

    fn names(s: &[Scenario]) -> Vec<&str> {
        s.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn a_file_sweep_expands_the_grid_with_stable_names_and_coordinates() {
        let text = format!(
            "{BASE}[sweep]\nreplacement_timeout = [5, 20]\n\"fault[0].duration_s\" = [4, 15]\n"
        );
        let got = expand(&text, Path::new("dir/long.toml"), &[], None).unwrap();
        // toml orders the table's keys: fault[0].duration_s first.
        assert_eq!(
            names(&got),
            [
                "long[fault0.duration_s=4,replacement_timeout=5]",
                "long[fault0.duration_s=4,replacement_timeout=20]",
                "long[fault0.duration_s=15,replacement_timeout=5]",
                "long[fault0.duration_s=15,replacement_timeout=20]",
            ]
        );
        assert_eq!(got[1].initiator.replacement_timeout, 20);
        assert_eq!(got[1].faults[0].duration_s, 4.0);
        assert_eq!(
            got[1].point,
            [
                ("fault[0].duration_s".to_string(), "4".to_string()),
                ("replacement_timeout".to_string(), "20".to_string())
            ]
        );
        // Each point has both targets; the plan gives each its own run.
        let ids: Vec<String> = got[0].expand().iter().map(|r| r.id()).collect();
        assert_eq!(
            ids,
            [
                "long[fault0.duration_s=4,replacement_timeout=5]@tgt",
                "long[fault0.duration_s=4,replacement_timeout=5]@lio"
            ]
        );
    }

    #[test]
    fn a_named_profile_applies_under_the_files_own_keys() {
        let text = "version = 1\nduration_s = 30\n[lane]\ntarget = \"tgt\"\n\
                    [initiator]\nprofile = \"multipath\"\nreplacement_timeout = 7\n";
        let got = expand(text, Path::new("p.toml"), &[], None).unwrap();
        assert_eq!(names(&got), ["p"], "settings do not rename the run");
        let i = &got[0].initiator;
        // The file's own replacement_timeout wins; the NOP-Outs are the profile's.
        assert_eq!(
            (
                i.replacement_timeout,
                i.noop_out_interval,
                i.noop_out_timeout
            ),
            (7, 5, 10)
        );
        // A command-line iscsid.conf still goes over both.
        let conf =
            iscsid_conf::parse("my.conf", "node.session.timeo.replacement_timeout = 40\n").unwrap();
        let got = expand(text, Path::new("p.toml"), &conf.settings, None).unwrap();
        assert_eq!(got[0].initiator.replacement_timeout, 40);
        assert_eq!(got[0].initiator.noop_out_timeout, 10);
    }

    #[test]
    fn a_bad_profile_or_conf_is_told_at_its_line() {
        let text = "version = 1\nduration_s = 30\n[lane]\ntarget = \"tgt\"\n\
                    [initiator]\nprofile = \"multipth\"\n";
        let d = match expand(text, Path::new("p.toml"), &[], None) {
            Err(e) => e.diagnostics().to_vec(),
            Ok(s) => panic!("{s:?}"),
        };
        assert_eq!((d[0].line, d[0].field.as_str()), (6, "initiator.profile"));
        assert!(d[0].hint.as_deref().unwrap().contains("multipath"), "{d:?}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("site.conf"),
            "# ours\nnode.conn[0].timeo.noop_out_interval = 3\nnode.session.timeo.replacement_timeout = -9999999999\n",
        )
        .unwrap();
        let scenario = dir.path().join("s.toml");
        let text = "version = 1\nduration_s = 30\n[lane]\ntarget = \"tgt\"\n\
                    [initiator]\niscsid_conf = \"site.conf\"\n";
        let d = match Scenario::parse_swept(text, &scenario, &[]) {
            Err(e) => e.diagnostics().to_vec(),
            Ok(s) => panic!("{s:?}"),
        };
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].file.ends_with("site.conf") && d[0].line == 3, "{d:#?}");
        // Without the bad line the conf applies.
        std::fs::write(
            dir.path().join("site.conf"),
            "node.conn[0].timeo.noop_out_interval = 3\n",
        )
        .unwrap();
        let got = Scenario::parse_swept(text, &scenario, &[]).unwrap();
        assert_eq!(got[0].initiator.noop_out_interval, 3);
        // A conf that is not there names the scenario's key.
        let text = text.replace("site.conf", "gone.conf");
        let d = match Scenario::parse_swept(&text, &scenario, &[]) {
            Err(e) => e.diagnostics().to_vec(),
            Ok(s) => panic!("{s:?}"),
        };
        assert_eq!(
            (d[0].line, d[0].field.as_str()),
            (6, "initiator.iscsid_conf")
        );
        assert!(d[0].message.contains("gone.conf"), "{d:?}");
    }

    #[test]
    fn command_line_axes_add_to_and_replace_file_axes() {
        let text = format!("{BASE}[sweep]\nreplacement_timeout = [5, 20]\n");
        let cli = [
            parse_cli_axis("node.session.timeo.replacement_timeout=1,2,3").unwrap(),
            parse_cli_axis("target=lio").unwrap(),
        ];
        let got = expand(&text, Path::new("s.toml"), &cli, None).unwrap();
        assert_eq!(got.len(), 3, "{:?}", names(&got));
        assert_eq!(got[2].initiator.replacement_timeout, 3);
        assert_eq!(got[2].lane.targets, [crate::model::TargetKind::Lio]);
        assert_eq!(
            got[0].name,
            "s[node.session.timeo.replacement_timeout=1,target=lio]"
        );
        // Other node keys go to [initiator.settings] and its allow-list.
        let cli = [parse_cli_axis("node.session.err_timeo.abort_timeout=7,9").unwrap()];
        let got = expand(BASE, Path::new("s.toml"), &cli, None).unwrap();
        assert_eq!(
            got[1].initiator.extra["node.session.err_timeo.abort_timeout"],
            "9"
        );
    }

    #[test]
    fn a_file_without_axes_is_one_scenario() {
        let got = expand(BASE, Path::new("plain.toml"), &[], None).unwrap();
        assert_eq!(names(&got), ["plain"]);
        assert!(got[0].point.is_empty());
    }

    #[test]
    fn bad_axes_name_the_file_line_and_key() {
        let text = format!("{BASE}[sweep]\nreplacement_timout = [5]\n");
        let e = expand(&text, Path::new("s.toml"), &[], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml:17:1: sweep.replacement_timout: unknown sweep key"),
            "{e}"
        );
        let text = format!("{BASE}[sweep]\nreplacement_timeout = 5\n");
        let e = expand(&text, Path::new("s.toml"), &[], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml:17:1: sweep.replacement_timeout: must be a non-empty array"),
            "{e}"
        );
        // A value the scenario refuses: told at the axis, with the value.
        let text = format!("{BASE}[sweep]\n\"fault[0].duration_s\" = [4, -1]\n");
        let e = expand(&text, Path::new("s.toml"), &[], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.toml:17:1: sweep.\"fault[0].duration_s\": at fault[0].duration_s = -1: fault[0].duration_s: must be"), "{e}");
        let e = expand(
            &format!("{BASE}[sweep]\n\"fault[3].duration_s\" = [4]\n"),
            Path::new("s.toml"),
            &[],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no [3]"), "{e}");
        assert!(parse_cli_axis("bogus=1")
            .unwrap_err()
            .contains("unknown sweep key `bogus`"));
        assert!(parse_cli_axis("replacement_timeout")
            .unwrap_err()
            .contains("KEY=V1,V2"));
        assert!(parse_cli_axis("fault[x].duration_s=1").is_err());
    }

    #[test]
    fn grids_are_bounded() {
        let values: Vec<String> = (1..=40).map(|v| v.to_string()).collect();
        let cli = [
            parse_cli_axis(&format!("replacement_timeout={}", values.join(","))).unwrap(),
            parse_cli_axis(&format!("noop_out_interval={}", values.join(","))).unwrap(),
        ];
        let e = expand(BASE, Path::new("s.toml"), &cli, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1600 points, more than 1000"), "{e}");
    }

    /// The shape of Debian's open-iscsi iscsid.conf (its defaults).
    const CONF: &str = "\
# iscsid.conf
iscsid.startup = /bin/systemctl start iscsid.socket
node.startup = manual
node.leading_login = No
node.session.timeo.replacement_timeout = 120
node.conn[0].timeo.login_timeout = 15
node.conn[0].timeo.logout_timeout = 15
node.conn[0].timeo.noop_out_interval = 5
node.conn[0].timeo.noop_out_timeout = 5
node.session.err_timeo.abort_timeout = 15
node.session.initial_login_retry_max = 8
node.session.scan = auto
discovery.sendtargets.iscsi.MaxRecvDataSegmentLength = 32768
";

    const SCENARIO: &str = "version = 1\nduration_s = 30\n[lane]\ntarget = \"tgt\"\n\
        [initiator]\nnoop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5\n\
        [[probe]]\nkind = \"blkprobe\"\ninterval_ms = 10\n\
        [[fault]]\nkind = \"blackhole\"\nstart_s = 3\nduration_s = 15\n";

    #[test]
    fn node_settings_apply_and_the_rest_is_told() {
        let conf = iscsid_conf::parse("/etc/iscsi/iscsid.conf", CONF).unwrap();
        let keys: Vec<&str> = conf.settings.iter().map(|a| a.key.as_str()).collect();
        assert!(
            keys.contains(&"node.session.timeo.replacement_timeout"),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"node.conn[0].timeo.login_timeout"),
            "{keys:?}"
        );
        let told = conf.not_applied.join("\n");
        assert!(
            told.contains("iscsid.conf:2: iscsid.startup: a daemon setting"),
            "{told}"
        );
        assert!(
            told.contains("iscsid.conf:3: node.startup: kept by the harness"),
            "{told}"
        );
        assert!(
            told.contains("node.session.scan: kept by the harness"),
            "{told}"
        );
        let got = expand(SCENARIO, Path::new("s.toml"), &conf.settings, None).unwrap();
        // One scenario, still named as the file; the conf's values apply.
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "s");
        assert!(got[0].point.is_empty());
        assert_eq!(got[0].initiator.replacement_timeout, 120);
        assert_eq!(got[0].initiator.noop_out_interval, 5);
        assert_eq!(
            got[0].initiator.extra["node.conn[0].timeo.login_timeout"],
            "15"
        );
        // A sweep of the same key still varies it.
        let mut axes = conf.settings.clone();
        axes.push(parse_cli_axis("replacement_timeout=5,20").unwrap());
        let got = expand(SCENARIO, Path::new("s.toml"), &axes, None).unwrap();
        let rts: Vec<i64> = got
            .iter()
            .map(|s| s.initiator.replacement_timeout)
            .collect();
        assert_eq!(rts, [5, 20]);
    }

    #[test]
    fn a_refused_value_is_told_at_the_conf_line() {
        let conf = iscsid_conf::parse(
            "my.conf",
            "# mine\nnode.conn[0].timeo.noop_out_interval = -3\n",
        )
        .unwrap();
        let e = expand(SCENARIO, Path::new("s.toml"), &conf.settings, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "my.conf:2:1: node.conn[0].timeo.noop_out_interval: -3 (in scenario s.toml):"
            ),
            "{e}"
        );
        assert!(
            iscsid_conf::parse("x.conf", "node.session.timeo.replacement_timeout 5\n")
                .unwrap_err()
                .contains("x.conf:1: not `key = value`")
        );
    }

    #[test]
    fn a_digit_only_chap_secret_is_accepted_and_never_shown() {
        let conf = iscsid_conf::parse(
            "digits.conf",
            "node.session.auth.authmethod = CHAP\nnode.session.auth.username = 12345\n\
             node.session.auth.password = 98765432101234\n",
        )
        .unwrap();
        let got = expand(SCENARIO, Path::new("s.toml"), &conf.settings, None).unwrap();
        assert_eq!(
            got[0].initiator.extra["node.session.auth.password"],
            "98765432101234"
        );
        assert_eq!(
            got[0].initiator.extra["node.session.auth.username"],
            "12345"
        );
        // A secret the schema refuses (too long) is refused without its value.
        let long = "7".repeat(400);
        let conf = iscsid_conf::parse(
            "long.conf",
            &format!("node.session.auth.authmethod = CHAP\nnode.session.auth.password = {long}\n"),
        )
        .unwrap();
        let e = expand(SCENARIO, Path::new("s.toml"), &conf.settings, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("long.conf:2:1: node.session.auth.password"),
            "{e}"
        );
        assert!(!e.contains("7777777"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_conf_is_not_quoted() {
        let e = iscsid_conf::parse("/etc/shadow", "root:$y$j9T$abcdefgh:19000:0:99999:7:::\n")
            .unwrap_err();
        assert!(e.contains("/etc/shadow:1: not `key = value`"), "{e}");
        assert!(!e.contains("abcdefgh"), "{e}");
    }
}
