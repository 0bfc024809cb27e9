//! A sweep's axes: a key and its values, from the file's `[sweep]` table,
//! the command line (`--sweep KEY=V1,V2`) or an iscsid.conf's settings, and
//! the path into the TOML document each key stands for.

use crate::model::settings;
use crate::parse::diag::{line_col, quote_key, Diagnostic};

/// Where an axis was given.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// In the file's `[sweep]` table, at this line and column.
    File { line: usize, column: usize },
    /// On the command line, by this option (`--sweep`, `--set`, `--vary`;
    /// its diagnostics have line 0: no place in the file).
    Cli { option: &'static str },
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
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// The named settings as axis keys: (node key, short name), from the
/// model's list ([`settings::NAMED`]): `replacement_timeout` stands for
/// `initiator.replacement_timeout`.
fn named() -> impl Iterator<Item = (&'static str, &'static str)> {
    settings::NAMED.iter().map(|(key, field)| {
        let short = field.strip_prefix("initiator.").unwrap_or(field);
        (*key, short)
    })
}

/// Where a dotted axis key may lead into the file (`duration_s`,
/// `lane.lun_size_mib`, `expect.max_stall_s`).
pub const PATH_ROOTS: &[&str] = &["duration_s", "lane", "initiator", "expect", "description"];

/// The document path an axis key stands for.
pub(super) fn resolve(key: &str) -> Result<Vec<Seg>, String> {
    let k = |s: &str| Seg::Key(s.to_string());
    if key == "target" {
        return Ok(vec![k("lane"), k("target")]);
    }
    if named().any(|(_, short)| short == key) {
        return Ok(vec![k("initiator"), k(key)]);
    }
    if key.starts_with("node.") {
        // The three settings with short names are written as those; every
        // other node key goes to [initiator.settings] (its allow-list
        // applies there).
        let short = named()
            .find(|(node, _)| *node == key)
            .map(|(_, short)| short);
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
    if parts.iter().any(|p| p.is_empty()) || !PATH_ROOTS.contains(&parts[0]) {
        return Err(format!(
            "unknown sweep key `{key}`: use target, {}, an iscsiadm node key (node.…), \
             fault[N].field, or a path such as duration_s or lane.lun_size_mib",
            named()
                .map(|(_, short)| short)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(parts.into_iter().map(k).collect())
}

/// Writes `value` at `path` in `doc`, making tables on the way.
pub(super) fn set(doc: &mut toml::Table, path: &[Seg], value: toml::Value) -> Result<(), String> {
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
pub(super) fn id_key(key: &str) -> String {
    key.replace(['[', ']'], "")
}

/// Why a sweep may not take `key`: a secret's values would name run ids,
/// history files and report points (the message never shows a value).
fn refuse_secret(key: &str) -> Result<(), String> {
    if settings::is_secret(key) {
        return Err(format!(
            "`{key}` is a secret: a sweep names its values in run ids, file names and reports, \
             so it cannot be swept; set it once in [initiator.settings] or an iscsid.conf"
        ));
    }
    Ok(())
}

/// A command-line axis: `KEY=V1,V2,...`; each value is read as TOML (a
/// number, a boolean) or else taken as a string.
pub fn parse_cli_axis(spec: &str) -> Result<Axis, String> {
    parse_option_axis("--sweep", spec)
}

/// [`parse_cli_axis`] given by `option` (`--set`, `--vary`), which its
/// messages name.
pub fn parse_option_axis(option: &'static str, spec: &str) -> Result<Axis, String> {
    let (key, values) = spec
        .split_once('=')
        .ok_or_else(|| format!("{option} {spec}: write KEY=V1,V2,..."))?;
    let key = key.trim();
    refuse_secret(key).map_err(|e| format!("{option} {key}=…: {e}"))?;
    resolve(key).map_err(|e| format!("{option} {spec}: {e}"))?;
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
        return Err(format!("{option} {spec}: give at least one value"));
    }
    Ok(Axis {
        key: key.to_string(),
        values,
        origin: Origin::Cli { option },
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
    let at = |span: std::ops::Range<usize>| line_col(text, span.start);
    let toml::de::DeValue::Table(table) = sweep.get_ref() else {
        let (line, column) = at(sweep.span());
        diags.push(Diagnostic::new(
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
        let field = format!("sweep.{}", quote_key(&name));
        if let Err(e) = refuse_secret(&name).and_then(|()| resolve(&name).map(drop)) {
            diags.push(Diagnostic::new(file, line, column, &field, e, None));
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
            None => diags.push(Diagnostic::new(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_an_axis_and_its_value_is_never_shown() {
        let e = parse_cli_axis("node.session.auth.password=Hunter2Secret,x").unwrap_err();
        assert!(e.contains("is a secret"), "{e}");
        assert!(!e.contains("Hunter2Secret"), "{e}");
        let text =
            "version = 1\n[sweep]\n\"node.session.auth.password_in\" = [\"Hunter2Secret\"]\n";
        let d = file_axes("s.toml", text).unwrap_err();
        assert_eq!(
            (d[0].line, d[0].field.as_str()),
            (3, "sweep.\"node.session.auth.password_in\"")
        );
        assert!(!d[0].to_string().contains("Hunter2Secret"), "{}", d[0]);
        // Not secrets: still axes.
        assert!(parse_cli_axis("replacement_timeout=5,10").is_ok());
    }
}
