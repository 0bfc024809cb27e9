//! Diagnostics: one problem in a scenario file, with where it is, and the
//! helpers that word them: closest-name hints, serde's errors turned into
//! diagnostics (the field's path found by walking the TOML document), line
//! and column of an offset, and text clipped to a bounded size.

use std::fmt;
use std::ops::Range;

// ---------------------------------------------------------------------------
// Errors.

/// One problem in a scenario file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted path of the field, e.g. `fault[1].duration_s`.
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub(super) fn new(
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
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // Not from the file's text (a command-line sweep axis).
            write!(f, "{}: {}: {}", self.file, self.field, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.column, self.field, self.message
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Why a scenario could not be loaded. Both variants are input errors
/// (exit status 2).
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Every problem found, in file order (at least one).
    Invalid(Vec<Diagnostic>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, source } => write!(f, "{path}: cannot read: {source}"),
            LoadError::Invalid(diags) => {
                for (i, d) in diags.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{d}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            LoadError::Invalid(_) => None,
        }
    }
}

impl LoadError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Read { .. } => &[],
            LoadError::Invalid(d) => d,
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers for messages.

/// Seconds without a trailing `.0` noise: 30, 4.5.
pub(super) fn fmt_s(x: f64) -> String {
    let r = (x * 1000.0).round() / 1000.0;
    format!("{r}")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// The hint for a value that must be one of `valid` (a kind, a direction,
/// an iscsiadm word): the same name in another case, or the closest valid
/// one.
pub(super) fn unknown_hint(got: &str, valid: &[&str], plural: &str) -> String {
    match valid.iter().find(|v| v.eq_ignore_ascii_case(got)) {
        Some(v) => format!("did you mean `{v}`? (case matters)"),
        None => closest_hint(got, valid, plural),
    }
}

/// `did you mean `x`?` when one valid name is close, the list otherwise.
pub(super) fn closest_hint(got: &str, valid: &[&str], what: &str) -> String {
    match closest(got, valid) {
        Some(v) => format!("did you mean `{v}`?"),
        None => format!("valid {what}: {}", valid.join(", ")),
    }
}

/// The valid name closest to `got`, when it is close. Very long input is
/// not compared (the distance is quadratic).
pub(super) fn closest<'v>(got: &str, valid: &[&'v str]) -> Option<&'v str> {
    if got.len() > MAX_COMPARED_LEN {
        return None;
    }
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(got, v), *v))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, v)| *d <= (v.len() / 3).max(2))
        .map(|(_, v)| v)
}

/// Longest input [`closest`] compares.
const MAX_COMPARED_LEN: usize = 256;

/// Text from the file as shown in a message: at most 80 characters.
pub(super) fn shorten(s: &str) -> String {
    clip(s, 80)
}

/// A key as written in a dotted path: bare when it can be, quoted otherwise.
pub(super) fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

/// Turns a toml/serde error into a diagnostic: the span gives line and
/// column, the document's tree gives the field's path, serde's message the
/// unknown key and the valid ones.
pub(super) fn serde_diagnostic(file: &str, text: &str, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let (line, column) = line_col(text, span.start);
    // Serde names Rust's types: say what they hold.
    let message = e
        .message()
        .trim()
        .replace("expected i64", "expected a whole number");
    let ticks = backticked(&message);
    let mut field = field_at(text, span.start);
    let mut hint = None;
    if message.starts_with("unknown field") {
        if let Some((got, valid)) = ticks.split_first() {
            let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
            hint = Some(if valid.is_empty() {
                "this table takes no keys".to_string()
            } else {
                closest_hint(got, &valid, "keys")
            });
        }
    } else if message.starts_with("missing field") {
        if let Some(missing) = ticks.first() {
            // The span is the table's: name the table, not a key inside it.
            field = table_with_span(text, &span).unwrap_or_default();
            field = if field.is_empty() {
                missing.clone()
            } else {
                format!("{field}.{missing}")
            };
            hint = Some(format!("add `{missing} = ...`"));
        }
    } else if message.starts_with("invalid type") {
        hint = Some(match field.rsplit('.').next().unwrap_or("") {
            f if f.ends_with("_s") => "a number of seconds".to_string(),
            f if f.starts_with("noop_out") || f == "replacement_timeout" => {
                "whole seconds, e.g. 5".to_string()
            }
            _ => "see docs/scenarios.md or `iscsi-chaos explain`".to_string(),
        });
    }
    if field.is_empty() {
        field = field_on_line(text, span.start);
    }
    clipped(Diagnostic {
        file: file.to_string(),
        line,
        column,
        field,
        message,
        hint,
    })
}

/// A diagnostic of bounded size, whatever the input echoed into it: the
/// field at most [`MAX_FIELD_LEN`] characters, message and hint at most
/// [`MAX_MESSAGE_LEN`].
pub(super) fn clipped(mut d: Diagnostic) -> Diagnostic {
    d.field = clip(&d.field, MAX_FIELD_LEN);
    d.message = clip(&d.message, MAX_MESSAGE_LEN);
    d.hint = d.hint.map(|h| clip(&h, MAX_MESSAGE_LEN));
    d
}

const MAX_FIELD_LEN: usize = 200;
const MAX_MESSAGE_LEN: usize = 1000;

/// `s` cut to `max` characters, with `...` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}...")
    }
}

/// For text that does not parse into a tree: the table header or key
/// written on the error's line, else `(document)`.
fn field_on_line(text: &str, offset: usize) -> String {
    let (line, _) = line_col(text, offset);
    let src = text.lines().nth(line - 1).unwrap_or("").trim();
    let name = if let Some(rest) = src.strip_prefix('[') {
        rest.trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim()
    } else if let Some((key, _)) = src.split_once('=') {
        key.trim()
    } else {
        ""
    };
    if name.is_empty() || name.starts_with('#') {
        "(document)".to_string()
    } else {
        name.to_string()
    }
}

/// The words between backticks in a message.
fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The dotted path of the innermost key or value containing `offset`, from
/// the document's own spans (also on a document that does not fully parse).
pub(super) fn field_at(text: &str, offset: usize) -> String {
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let mut path = String::new();
    walk_table(doc.get_ref(), offset, &mut path);
    path
}

fn walk_table(table: &toml::de::DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table {
        let ks = key.span();
        let vs = value.span();
        let in_key = ks.start <= offset && offset < ks.end.max(ks.start + 1);
        let in_value = vs.start <= offset && offset < vs.end.max(vs.start + 1);
        if in_key || in_value {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&quote_key(key.get_ref()));
            if in_value {
                walk_value(value.get_ref(), offset, path);
            }
            return true;
        }
    }
    // Tables from `[header]`s may have spans that do not cover their keys:
    // look inside them too.
    for (key, value) in table {
        let mut sub = String::new();
        if walk_value(value.get_ref(), offset, &mut sub) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&quote_key(key.get_ref()));
            path.push_str(&sub);
            return true;
        }
    }
    false
}

/// The path of the table (or array item) whose span is exactly `span`.
fn table_with_span(text: &str, span: &Range<usize>) -> Option<String> {
    fn search(value: &toml::de::DeValue<'_>, span: &Range<usize>, path: String) -> Option<String> {
        match value {
            toml::de::DeValue::Table(t) => t.iter().find_map(|(k, v)| {
                let p = if path.is_empty() {
                    quote_key(k.get_ref())
                } else {
                    format!("{path}.{}", quote_key(k.get_ref()))
                };
                if v.span() == *span && v.get_ref().is_table() {
                    return Some(p);
                }
                search(v.get_ref(), span, p)
            }),
            toml::de::DeValue::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                let p = format!("{path}[{i}]");
                if v.span() == *span && v.get_ref().is_table() {
                    return Some(p);
                }
                search(v.get_ref(), span, p)
            }),
            _ => None,
        }
    }
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let root = toml::de::DeValue::Table(doc.into_inner());
    search(&root, span, String::new())
}

/// Appends `[i]` / `.key` segments below a value; true when it found one.
fn walk_value(value: &toml::de::DeValue<'_>, offset: usize, path: &mut String) -> bool {
    match value {
        toml::de::DeValue::Table(t) => {
            let mut sub = String::new();
            if walk_table(t, offset, &mut sub) {
                path.push('.');
                path.push_str(&sub);
                true
            } else {
                false
            }
        }
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let s = item.span();
                let mut sub = String::new();
                let inside = s.start <= offset && offset < s.end.max(s.start + 1);
                if inside || walk_value(item.get_ref(), offset, &mut sub) {
                    if inside {
                        sub.clear();
                        walk_value(item.get_ref(), offset, &mut sub);
                    }
                    path.push_str(&format!("[{i}]"));
                    path.push_str(&sub);
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::tests::*;
    use crate::parse::*;

    #[test]
    fn unknown_key_names_the_closest() {
        let d = one(&GOOD.replace("duration_s = 4\n", "duraton_s = 4\n"));
        assert_eq!(d.field, "fault[0].duraton_s");
        assert_eq!(d.line, 26);
        assert_eq!(d.column, 1);
        assert_eq!(d.hint.as_deref(), Some("did you mean `duration_s`?"));
    }

    #[test]
    fn unknown_top_level_key() {
        let d = one("version = 1\nduration_s = 5\ndescripton = \"x\"\n[lane]\ntarget = \"tgt\"\n");
        assert_eq!((d.line, d.column), (3, 1));
        assert_eq!(d.field, "descripton");
        assert_eq!(d.hint.as_deref(), Some("did you mean `description`?"));
    }

    #[test]
    fn renders_file_line_column_field_and_hint() {
        let d = one(&GOOD.replace("duration_s = 2.5", "duration_s = 0"));
        assert_eq!(
            d.to_string(),
            "scenarios/x.toml:32:14: fault[1].duration_s: must be > 0, got 0 (hint: how long the fault lasts, in seconds)"
        );
    }

    #[test]
    fn missing_field_and_bad_version() {
        let d = one("version = 1\n[lane]\ntarget = \"tgt\"\n");
        assert_eq!(d.field, "duration_s");
        let d = one("[lane]\ntarget = \"tgt\"\n");
        assert_eq!(d.field, "version");
        let d = one(&GOOD.replace("start_s = 12\n", ""));
        assert_eq!((d.field.as_str(), d.line), ("fault[0].start_s", 23));
        let d = one(&GOOD.replace("target = [\"tgt\", \"lio\"]\n", ""));
        assert_eq!((d.field.as_str(), d.line), ("lane.target", 6));
        assert!(d.message.contains("missing field"));
        let d = one(&GOOD.replace("version = 1", "version = 2"));
        assert_eq!((d.field.as_str(), d.line, d.column), ("version", 2, 11));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let d = one("version = 1\nduration_s = \n");
        assert_eq!(d.line, 2);
        let d = one("version = 1\n[lane\n");
        assert_eq!(d.line, 2);
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 5), (1, 1));
    }
}
