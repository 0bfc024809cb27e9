//! A fault's options as written in its `[[fault]]` table, for the kind's own
//! parser: typed reads with spans, and the problems found (which
//! [`crate::parse`] turns into diagnostics naming file, line and field).

use std::collections::BTreeMap;
use std::ops::Range;

/// A value as TOML gave it, with its byte span in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    Str(String),
    /// Any other TOML type, by its name.
    Other(&'static str),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Float(_) => "float",
            Value::Int(_) => "integer",
            Value::Str(_) => "string",
            Value::Other(t) => t,
        }
    }
}

/// A problem was recorded in [`Options::problems`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported;

/// One problem: where (span), which option, what, and a hint.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub span: Range<usize>,
    /// The option's name (the field is `fault[i].<option>`).
    pub option: String,
    pub message: String,
    pub hint: Option<String>,
}

/// The options of one fault table (kind, start_s, duration_s and
/// direction excluded), read by its kind.
pub struct Options<'a> {
    /// The kind's name as written.
    pub kind: &'a str,
    /// Where `kind = ...` is: the span of messages about missing options.
    pub kind_span: Range<usize>,
    values: &'a BTreeMap<String, (Range<usize>, Value)>,
    pub problems: Vec<Problem>,
}

impl<'a> Options<'a> {
    pub fn new(
        kind: &'a str,
        kind_span: Range<usize>,
        values: &'a BTreeMap<String, (Range<usize>, Value)>,
    ) -> Options<'a> {
        Options {
            kind,
            kind_span,
            values,
            problems: Vec::new(),
        }
    }

    pub fn err(&mut self, span: Range<usize>, option: &str, message: String, hint: Option<String>) {
        self.problems.push(Problem {
            span,
            option: option.to_string(),
            message,
            hint,
        });
    }

    /// Whether the option was written.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The option's span, or the kind's when it is absent.
    pub fn span(&self, name: &str) -> Range<usize> {
        self.values
            .get(name)
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| self.kind_span.clone())
    }

    fn wrong_type(&mut self, name: &str, want: &str, hint: &str) {
        let (span, v) = self.values[name].clone();
        self.err(
            span,
            name,
            format!("invalid type: {}, expected {want}", v.type_name()),
            Some(hint.to_string()),
        );
    }

    /// A number (integer or float); `Err(Reported)` after a type problem.
    pub fn number(&mut self, name: &str, hint: &str) -> Result<Option<f64>, Reported> {
        match self.values.get(name) {
            None => Ok(None),
            Some((_, Value::Float(x))) => Ok(Some(*x)),
            Some((_, Value::Int(x))) => Ok(Some(*x as f64)),
            Some(_) => {
                self.wrong_type(name, "a number", hint);
                Err(Reported)
            }
        }
    }

    /// An integer; `Err(Reported)` after a type problem.
    pub fn integer(&mut self, name: &str, hint: &str) -> Result<Option<i64>, Reported> {
        match self.values.get(name) {
            None => Ok(None),
            Some((_, Value::Int(x))) => Ok(Some(*x)),
            Some(_) => {
                self.wrong_type(name, "an integer", hint);
                Err(Reported)
            }
        }
    }

    /// A string; `Err(Reported)` after a type problem.
    pub fn string(&mut self, name: &str, hint: &str) -> Result<Option<String>, Reported> {
        match self.values.get(name) {
            None => Ok(None),
            Some((_, Value::Str(s))) => Ok(Some(s.clone())),
            Some(_) => {
                self.wrong_type(name, "a string", hint);
                Err(Reported)
            }
        }
    }

    /// "kind = \"K\" needs NAME", at the kind.
    pub fn missing(&mut self, name: &str, hint: &str) {
        let message = format!("kind = \"{}\" needs {name}", self.kind);
        self.err(
            self.kind_span.clone(),
            name,
            message,
            Some(hint.to_string()),
        );
    }

    /// A required number > 0.
    pub fn need_positive(&mut self, name: &str, hint: &str) -> Option<f64> {
        match self.number(name, hint) {
            Err(Reported) => None,
            Ok(None) => {
                self.missing(name, &format!("add `{name} = ...` ({hint})"));
                None
            }
            Ok(Some(x)) if x.is_finite() && x > 0.0 => Some(x),
            Ok(Some(x)) => {
                self.err(
                    self.span(name),
                    name,
                    format!("must be > 0, got {x}"),
                    Some(hint.to_string()),
                );
                None
            }
        }
    }
}
