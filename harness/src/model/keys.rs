//! The spec of one key of a scenario file, as data: its type, unit,
//! default, range and meaning. A fault kind's options
//! ([`crate::model::fault::Registration::options`]) and the sections' keys
//! (`crate::parse::schema`) are written this way, so the parser's key lists
//! and the generated reference (`docs/scenarios.md`, `iscsi-chaos explain`)
//! come from one place; the bounds name the constants the checks use.

/// The values a key takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// Any value of its type.
    Any,
    /// A whole number from `min` to `max`.
    Int { min: i64, max: i64 },
    /// A number up to `max`, from `min` (excluded when `min_open`).
    Num { min: f64, min_open: bool, max: f64 },
    /// One of these words.
    Words(&'static [&'static str]),
    /// One of these words, or a whole number from `min` to `max`.
    WordsOrInt {
        words: &'static [&'static str],
        min: i64,
        max: i64,
    },
    /// Said in words.
    Text(&'static str),
}

impl Bound {
    /// The range as the reference shows it: `1 to 1048576`, `> 0, at most
    /// 36000`, `"tgt", "lio"`.
    pub fn render(&self) -> String {
        match self {
            Bound::Any => String::new(),
            Bound::Int { min, max } if min == max => format!("{min}"),
            Bound::Int { min, max } => format!("{min} to {max}"),
            Bound::Num {
                min,
                min_open: true,
                max,
            } => format!("> {min}, at most {max}"),
            Bound::Num { min, max, .. } => format!("{min} to {max}"),
            Bound::Words(words) => words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(", "),
            Bound::WordsOrInt { words, min, max } => {
                format!("{}, or {min} to {max}", Bound::Words(words).render())
            }
            Bound::Text(t) => t.to_string(),
        }
    }
}

/// What a key's default reads as when the key must be given.
pub const REQUIRED: &str = "required";

/// One key of a table of a scenario file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeySpec {
    pub key: &'static str,
    /// TOML type: "integer", "number" (integer or float), "string", ...
    pub ty: &'static str,
    /// Unit of a number ("s", "ms", "MiB"), or empty.
    pub unit: &'static str,
    /// The value when absent ([`REQUIRED`] when it must be given, empty
    /// when absence means "not set").
    pub default: &'static str,
    pub bound: Bound,
    /// What it does, one sentence or two.
    pub meaning: &'static str,
}

impl KeySpec {
    /// A key with no unit, default or bound yet (filled in with struct
    /// update syntax).
    pub const fn new(key: &'static str, ty: &'static str, meaning: &'static str) -> KeySpec {
        KeySpec {
            key,
            ty,
            unit: "",
            default: "",
            bound: Bound::Any,
            meaning,
        }
    }

    pub fn is_required(&self) -> bool {
        self.default == REQUIRED
    }
}

/// The names of `specs`, in order.
pub fn names(specs: &[KeySpec]) -> Vec<&'static str> {
    specs.iter().map(|s| s.key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_render_for_people() {
        assert_eq!(Bound::Int { min: 1, max: 4 }.render(), "1 to 4");
        let open = Bound::Num {
            min: 0.0,
            min_open: true,
            max: 36000.0,
        };
        assert_eq!(open.render(), "> 0, at most 36000");
        assert_eq!(Bound::Words(&["a", "b"]).render(), "\"a\", \"b\"");
        assert_eq!(Bound::Any.render(), "");
        let either = Bound::WordsOrInt {
            words: &["off"],
            min: 1,
            max: 9,
        };
        assert_eq!(either.render(), "\"off\", or 1 to 9");
    }
}
