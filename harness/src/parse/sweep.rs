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

use super::{Diagnostic, LoadError};
use crate::model::Scenario;

/// Most points one scenario may expand to.
pub const MAX_POINTS: usize = 1000;

/// Where an axis was given.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// In the file's `[sweep]` table, at this line and column.
    File { line: usize, column: usize },
    /// On the command line (its diagnostics have line 0: no place in the
    /// file).
    Cli,
    /// A setting of an iscsid.conf (`--iscsid-conf`), at this line.
    Conf { file: String, line: usize },
}

/// One axis of a sweep: a key and the values it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
    pub origin: Origin,
    /// Whether the axis names its points (a sweep's) or only sets a value
    /// (an iscsid.conf's setting: the same for every point).
    pub named: bool,
}

/// One step of a path into the TOML document.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

const SHORT_INITIATOR: &[&str] = &[
    "noop_out_interval",
    "noop_out_timeout",
    "replacement_timeout",
];

/// The document path an axis key stands for.
fn resolve(key: &str) -> Result<Vec<Seg>, String> {
    let k = |s: &str| Seg::Key(s.to_string());
    if key == "target" {
        return Ok(vec![k("lane"), k("target")]);
    }
    if SHORT_INITIATOR.contains(&key) {
        return Ok(vec![k("initiator"), k(key)]);
    }
    if key.starts_with("node.") {
        // The three settings with short names are written as those; every
        // other node key goes to [initiator.settings] (its allow-list
        // applies there).
        let short = match key {
            "node.session.timeo.replacement_timeout" => Some("replacement_timeout"),
            "node.conn[0].timeo.noop_out_interval" => Some("noop_out_interval"),
            "node.conn[0].timeo.noop_out_timeout" => Some("noop_out_timeout"),
            _ => None,
        };
        return Ok(match short {
            Some(s) => vec![k("initiator"), k(s)],
            None => vec![k("initiator"), k("settings"), k(key)],
        });
    }
    if let Some(rest) = key.strip_prefix("fault[") {
        let (n, field) = rest
            .split_once("].")
            .ok_or_else(|| format!("`{key}`: write a fault parameter as fault[N].field"))?;
        let n: usize = n
            .parse()
            .map_err(|_| format!("`{key}`: the fault's index must be a number"))?;
        if field.is_empty() || field.contains('.') {
            return Err(format!(
                "`{key}`: write a fault parameter as fault[N].field"
            ));
        }
        return Ok(vec![k("fault"), Seg::Index(n), k(field)]);
    }
    let parts: Vec<&str> = key.split('.').collect();
    let top = ["duration_s", "lane", "initiator", "expect", "description"];
    if parts.iter().any(|p| p.is_empty()) || !top.contains(&parts[0]) {
        return Err(format!(
            "unknown sweep key `{key}`: use target, {}, an iscsiadm node key (node.…), \
             fault[N].field, or a path such as duration_s or lane.lun_size_mib",
            SHORT_INITIATOR.join(", ")
        ));
    }
    Ok(parts.into_iter().map(k).collect())
}

/// Writes `value` at `path` in `doc`, making tables on the way.
fn set(doc: &mut toml::Table, path: &[Seg], value: toml::Value) -> Result<(), String> {
    let (Seg::Key(first), rest) = (&path[0], &path[1..]) else {
        return Err("a path starts with a key".into());
    };
    if rest.is_empty() {
        doc.insert(first.clone(), value);
        return Ok(());
    }
    let next = doc.entry(first.clone()).or_insert_with(|| match rest[0] {
        Seg::Key(_) => toml::Value::Table(toml::Table::new()),
        Seg::Index(_) => toml::Value::Array(Vec::new()),
    });
    match (next, &rest[0]) {
        (toml::Value::Table(t), Seg::Key(_)) => set(t, rest, value),
        (toml::Value::Array(a), Seg::Index(i)) => {
            let len = a.len();
            let Some(toml::Value::Table(t)) = a.get_mut(*i) else {
                return Err(format!("the file has {len} `[[{first}]]`, no [{i}]"));
            };
            set(t, &rest[1..], value)
        }
        _ => Err(format!("`{first}` is not a table here")),
    }
}

/// A value as it reads in a run id (strings without quotes).
pub fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An axis key as it reads in a run id (`fault[0].x` → `fault0.x`).
fn id_key(key: &str) -> String {
    key.replace(['[', ']'], "")
}

/// A command-line axis: `KEY=V1,V2,...`; each value is read as TOML (a
/// number, a boolean) or else taken as a string.
pub fn parse_cli_axis(spec: &str) -> Result<Axis, String> {
    let (key, values) = spec
        .split_once('=')
        .ok_or_else(|| format!("--sweep {spec}: write KEY=V1,V2,..."))?;
    let key = key.trim();
    resolve(key).map_err(|e| format!("--sweep {spec}: {e}"))?;
    let values: Vec<toml::Value> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            format!("v = {v}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(v.to_string()))
        })
        .collect();
    if values.is_empty() {
        return Err(format!("--sweep {spec}: give at least one value"));
    }
    Ok(Axis {
        key: key.to_string(),
        values,
        origin: Origin::Cli,
        named: true,
    })
}

/// The axes of the file's `[sweep]` table (problems as diagnostics).
pub fn file_axes(file: &str, text: &str) -> Result<Vec<Axis>, Vec<Diagnostic>> {
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let Some((_, sweep)) = doc
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == "sweep")
    else {
        return Ok(Vec::new());
    };
    let mut diags = Vec::new();
    let mut axes = Vec::new();
    let at = |span: std::ops::Range<usize>| super::line_col(text, span.start);
    let toml::de::DeValue::Table(table) = sweep.get_ref() else {
        let (line, column) = at(sweep.span());
        diags.push(diag(
            file,
            line,
            column,
            "sweep",
            "must be a table: `[sweep]` with one array per key".into(),
            None,
        ));
        return Err(diags);
    };
    for (key, value) in table {
        let (line, column) = at(key.span());
        let name = key.get_ref().to_string();
        let field = format!("sweep.{}", super::quote_key(&name));
        if let Err(e) = resolve(&name) {
            diags.push(diag(file, line, column, &field, e, None));
            continue;
        }
        let values: Option<Vec<toml::Value>> = match text.get(value.span()) {
            Some(src) => format!("v = {src}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v")),
            None => None,
        }
        .and_then(|v| match v {
            toml::Value::Array(a) if !a.is_empty() => Some(a),
            _ => None,
        });
        match values {
            Some(values) => axes.push(Axis {
                key: name,
                values,
                origin: Origin::File { line, column },
                named: true,
            }),
            None => diags.push(diag(
                file,
                line,
                column,
                &field,
                "must be a non-empty array of values".into(),
                Some("e.g. `replacement_timeout = [5, 15, 120]`".into()),
            )),
        }
    }
    if diags.is_empty() {
        Ok(axes)
    } else {
        Err(diags)
    }
}

fn diag(
    file: &str,
    line: usize,
    column: usize,
    field: &str,
    message: String,
    hint: Option<String>,
) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        field: field.to_string(),
        message,
        hint,
    }
}

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
/// (a file without either is the one scenario it describes).
pub fn expand(text: &str, path: &Path, cli: &[Axis]) -> Result<Vec<Scenario>, LoadError> {
    let file = path.display().to_string();
    let mut axes = file_axes(&file, text).map_err(LoadError::Invalid)?;
    // The scenario's own profile or iscsid.conf goes under everything else.
    let own_conf = scenario_conf(&file, text, path)?;
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
            Origin::Cli | Origin::Conf { .. } => (0, 0),
        };
        return Err(LoadError::Invalid(vec![diag(
            &file,
            line,
            column,
            "sweep",
            format!("{} points, more than {MAX_POINTS}", points.len()),
            Some("sweep fewer values, or split the sweep over files".into()),
        )]));
    }
    let mut doc: toml::Table = text.parse().map_err(|_| {
        LoadError::Invalid(vec![diag(
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
/// (a path relative to the scenario's folder), as unnamed axes: each one
/// the file does not set itself (its own keys override the profile).
fn scenario_conf(file: &str, text: &str, path: &Path) -> Result<Vec<Axis>, LoadError> {
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
        super::iscsid_conf::parse(&format!("profile {name}"), conf)
    } else if let Some(conf_path) = super::files::iscsid_conf_of(path, text) {
        super::iscsid_conf::read(&conf_path)
    } else {
        return Ok(Vec::new());
    };
    let conf = conf.map_err(|e| {
        let (line, column) = at("iscsid_conf");
        LoadError::Invalid(vec![diag(
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
    let at = format!("at {} = {}: {message}", axis.key, shown(value));
    match &axis.origin {
        Origin::File { line, column } => diag(
            file,
            *line,
            *column,
            &format!("sweep.{}", super::quote_key(&axis.key)),
            at,
            None,
        ),
        Origin::Cli => diag(file, 0, 0, &format!("--sweep {}", axis.key), at, None),
        // Told at the iscsid.conf's line, naming the scenario it broke.
        Origin::Conf { file: conf, line } => diag(
            conf,
            *line,
            1,
            &axis.key,
            format!("{} (in scenario {file}): {message}", shown(value)),
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
        let got = expand(&text, Path::new("dir/long.toml"), &[]).unwrap();
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
        let got = expand(text, Path::new("p.toml"), &[]).unwrap();
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
        let conf = crate::parse::iscsid_conf::parse(
            "my.conf",
            "node.session.timeo.replacement_timeout = 40\n",
        )
        .unwrap();
        let got = expand(text, Path::new("p.toml"), &conf.settings).unwrap();
        assert_eq!(got[0].initiator.replacement_timeout, 40);
        assert_eq!(got[0].initiator.noop_out_timeout, 10);
    }

    #[test]
    fn a_bad_profile_or_conf_is_told_at_its_line() {
        let text = "version = 1\nduration_s = 30\n[lane]\ntarget = \"tgt\"\n\
                    [initiator]\nprofile = \"multipth\"\n";
        let d = match expand(text, Path::new("p.toml"), &[]) {
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
        let d = match expand(text, &scenario, &[]) {
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
        let got = expand(text, &scenario, &[]).unwrap();
        assert_eq!(got[0].initiator.noop_out_interval, 3);
        // A conf that is not there names the scenario's key.
        let text = text.replace("site.conf", "gone.conf");
        let d = match expand(&text, &scenario, &[]) {
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
        let got = expand(&text, Path::new("s.toml"), &cli).unwrap();
        assert_eq!(got.len(), 3, "{:?}", names(&got));
        assert_eq!(got[2].initiator.replacement_timeout, 3);
        assert_eq!(got[2].lane.targets, [crate::model::TargetKind::Lio]);
        assert_eq!(
            got[0].name,
            "s[node.session.timeo.replacement_timeout=1,target=lio]"
        );
        // Other node keys go to [initiator.settings] and its allow-list.
        let cli = [parse_cli_axis("node.session.err_timeo.abort_timeout=7,9").unwrap()];
        let got = expand(BASE, Path::new("s.toml"), &cli).unwrap();
        assert_eq!(
            got[1].initiator.extra["node.session.err_timeo.abort_timeout"],
            "9"
        );
    }

    #[test]
    fn a_file_without_axes_is_one_scenario() {
        let got = expand(BASE, Path::new("plain.toml"), &[]).unwrap();
        assert_eq!(names(&got), ["plain"]);
        assert!(got[0].point.is_empty());
    }

    #[test]
    fn bad_axes_name_the_file_line_and_key() {
        let text = format!("{BASE}[sweep]\nreplacement_timout = [5]\n");
        let e = expand(&text, Path::new("s.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml:17:1: sweep.replacement_timout: unknown sweep key"),
            "{e}"
        );
        let text = format!("{BASE}[sweep]\nreplacement_timeout = 5\n");
        let e = expand(&text, Path::new("s.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml:17:1: sweep.replacement_timeout: must be a non-empty array"),
            "{e}"
        );
        // A value the scenario refuses: told at the axis, with the value.
        let text = format!("{BASE}[sweep]\n\"fault[0].duration_s\" = [4, -1]\n");
        let e = expand(&text, Path::new("s.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.toml:17:1: sweep.\"fault[0].duration_s\": at fault[0].duration_s = -1: fault[0].duration_s: must be"), "{e}");
        let e = expand(
            &format!("{BASE}[sweep]\n\"fault[3].duration_s\" = [4]\n"),
            Path::new("s.toml"),
            &[],
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
        let e = expand(BASE, Path::new("s.toml"), &cli)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1600 points, more than 1000"), "{e}");
    }
}
