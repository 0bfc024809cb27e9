//! The scenario reference, generated from the registrations themselves:
//! the sections' keys ([`super::schema`]), the `[initiator.settings]`
//! allow-list ([`crate::model::settings`]), the sweep's axis keys, every
//! fault kind's registration ([`crate::model::fault::KINDS`]: its doc,
//! options, needs and reach) and the profiles
//! ([`crate::model::profiles`]). `docs/scenarios.md` is [`markdown`]
//! (a test keeps the committed file equal to it); `iscsi-chaos explain`
//! prints its parts.

use super::diag::closest;
use super::files::MAX_SCENARIO_BYTES;
use super::schema::{Section, SECTIONS};
use crate::model::fault::{Reach, Registration, KINDS, MAX_PULSES, MIN_STEP_S};
use crate::model::keys::{Bound, KeySpec};
use crate::model::needs::Requirement;
use crate::model::settings::{self, SettingType, MAX_LOGIN_WAIT_S, MAX_SECRET_LEN};
use crate::model::{profiles, DEFAULT_PROBE_INTERVAL_MS};

/// How to regenerate the committed reference.
pub const REGENERATE: &str = "UPDATE_DOCS=1 cargo test -p iscsi-chaos --lib parse::reference";

/// A Markdown table cell: pipes escaped, lines joined.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// A key's default as shown: `64`, `required`, or `-` when absence means
/// "not set".
fn default_of(k: &KeySpec) -> String {
    match k.default {
        "" => "-".into(),
        d => d.into(),
    }
}

/// One table of keys: key | type | unit | default | range | meaning.
fn keys_table(keys: &[KeySpec]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                format!("`{}`", k.key),
                k.ty.into(),
                k.unit.into(),
                default_of(k),
                k.bound.render(),
                k.meaning.into(),
            ]
        })
        .collect();
    table(
        &["key", "type", "unit", "default", "range", "meaning"],
        &rows,
    )
}

/// A section's heading as shown: `[lane]`, or "Top level".
fn title(s: &Section) -> &'static str {
    if s.table.is_empty() {
        "Top level"
    } else {
        s.table
    }
}

fn section(s: &Section) -> String {
    format!("### {}\n\n{}\n\n{}", title(s), s.doc, keys_table(s.keys))
}

fn setting_range(ty: SettingType) -> (&'static str, &'static str, String) {
    match ty {
        SettingType::Seconds { min, max } => ("integer", "s", format!("{min} to {max}")),
        SettingType::Int {
            min,
            max,
            zero,
            pow2,
        } => {
            let mut r = format!("{min} to {max}");
            if pow2 {
                r = format!("a power of 2, {r}");
            }
            if zero {
                r = format!("0 or {r}");
            }
            ("integer", "", r)
        }
        SettingType::Word(words) => ("string", "", Bound::Words(words).render()),
        SettingType::Secret => (
            "string",
            "",
            format!(
                "1 to {MAX_SECRET_LEN} printable ASCII characters, no spaces; secret: never shown"
            ),
        ),
    }
}

fn settings_section() -> String {
    let rows: Vec<Vec<String>> = settings::SETTINGS
        .iter()
        .map(|s| {
            let (ty, unit, range) = setting_range(s.ty);
            vec![
                format!("`{}`", s.key),
                ty.into(),
                unit.into(),
                range,
                s.what.into(),
            ]
        })
        .collect();
    let named: Vec<String> = settings::NAMED
        .iter()
        .map(|(key, field)| format!("`{key}` (`{field}`)"))
        .collect();
    let refused: Vec<String> = settings::REFUSED
        .iter()
        .map(|r| {
            let key = if r.key.ends_with('.') {
                format!("`{}*`", r.key)
            } else {
                format!("`{}`", r.key)
            };
            format!("- {key}: {}\n", r.why)
        })
        .collect();
    format!(
        "### [initiator.settings]\n\n\
         iscsiadm node keys (iscsid.conf names, quoted: `\"node.session.queue_depth\" = 64`), \
         from this allow-list only; numbers as integers (or strings of digits), words compared \
         exactly. A login may wait `login_timeout × (initial_login_retry_max + 1)` <= \
         {MAX_LOGIN_WAIT_S} s, and FirstBurstLength <= MaxBurstLength.\n\n{}\n\
         Set by the `[initiator]` fields instead: {}.\n\n\
         Refused, with the reason:\n\n{}\n\
         Any other key is unknown (the closest allowed one is named).\n",
        table(&["key", "type", "unit", "range", "meaning"], &rows),
        named.join(", "),
        refused.concat(),
    )
}

fn sweep_section() -> String {
    let short: Vec<String> = settings::NAMED
        .iter()
        .map(|(_, f)| format!("`{}`", f.trim_start_matches("initiator.")))
        .collect();
    let roots: Vec<String> = super::sweep::PATH_ROOTS
        .iter()
        .map(|r| format!("`{r}`"))
        .collect();
    let rows = vec![
        vec!["`target`".into(), "`[lane] target`".into()],
        vec![short.join(", "), "the `[initiator]` field".into()],
        vec![
            "`node.…` (quoted)".into(),
            "an iscsiadm node key: the named three as their `[initiator]` field, any other in `[initiator.settings]` (its allow-list applies)".into(),
        ],
        vec!["`fault[N].field`".into(), "a field of the N-th `[[fault]]` (from 0)".into()],
        vec![
            format!("a dotted path from {}", roots.join(", ")),
            "that key of the file, e.g. `lane.lun_size_mib`, `expect.max_stall_s`".into(),
        ],
    ];
    format!(
        "### [sweep]\n\n\
         One array of values per key; the scenario runs once per point of the grid (at most {} \
         points), each point the file with the values written in and checked like any file, \
         named `stem[key=value,...]`. `--sweep KEY=V1,V2` adds (or replaces) an axis from the \
         command line.\n\n{}",
        super::sweep::MAX_POINTS,
        table(&["key", "stands for"], &rows)
    )
}

fn requirement(r: &Requirement) -> String {
    match r {
        Requirement::Root => "root".into(),
        Requirement::Module(m) => format!("kernel module `{m}`"),
        Requirement::Tool { name, package } => format!("`{name}` (package {package})"),
        Requirement::Configfs => "configfs".into(),
        Requirement::LioPrFolder => "LIO's reservation folder (`/var/target/pr`)".into(),
    }
}

/// Where a kind acts, for people.
fn reach(r: Reach) -> &'static str {
    match r {
        Reach::Fabric => "the fabric: on a lane of several paths, `path = N` aims it at one path",
        Reach::Portal => {
            "one portal of the target: not on a lane of several paths yet; takes no `path`"
        }
        Reach::Target => "the whole target: takes no `path`",
    }
}

/// The entry of one fault kind, as in `docs/scenarios.md` and `iscsi-chaos
/// explain KIND`.
pub fn kind_entry(r: &Registration) -> String {
    let direction = match r.whole_link {
        None => "takes `direction`".to_string(),
        Some(why) => format!("no `direction`: {why}"),
    };
    let needs = if r.needs.is_empty() {
        "nothing beyond every run's needs".to_string()
    } else {
        r.needs
            .iter()
            .map(requirement)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let options = if r.options.is_empty() {
        "No options beyond the common fields.\n".to_string()
    } else {
        keys_table(r.options)
    };
    format!(
        "### {}\n\n{}\n\n- Direction: {direction}.\n- Acts on: {}.\n- Needs: {needs}.\n\n{options}",
        r.name,
        r.doc,
        reach(r.reach)
    )
}

fn profiles_section() -> String {
    let mut out = String::from(
        "## Profiles\n\n`[initiator] profile = \"NAME\"` or `--iscsid-conf profiles/NAME.conf`: \
         the settings people are told to use, shipped in `profiles/` (each file cites its source).\n\n",
    );
    for (name, text) in profiles::PROFILES {
        let settings: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let about = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim())
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!(
            "### {name}\n\n{about}\n\n```\n{}\n```\n\n",
            settings.join("\n")
        ));
    }
    out
}

/// The first sentence of `text`.
fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(i) => &text[..=i],
        None => text,
    }
}

/// `iscsi-chaos explain` without a kind: the fault kinds (one line each)
/// and the sections.
pub fn index() -> String {
    let width = KINDS.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::from("Fault kinds (`iscsi-chaos explain KIND` for one):\n");
    for r in KINDS {
        out.push_str(&format!(
            "  {:<width$}  {}\n",
            r.name,
            first_sentence(r.doc)
        ));
    }
    out.push_str("\nSections of a scenario file:\n");
    let tables = SECTIONS
        .iter()
        .map(title)
        .chain(["[initiator.settings]", "[sweep]"]);
    for t in tables {
        out.push_str(&format!("  {t}\n"));
    }
    out.push_str("\nThe whole reference: docs/scenarios.md\n");
    out
}

/// `iscsi-chaos explain KIND`: its entry, or the message naming the
/// closest kind.
pub fn explain(kind: &str) -> Result<String, String> {
    match KINDS.iter().find(|r| r.name == kind) {
        Some(r) => Ok(kind_entry(r)),
        None => {
            let names: Vec<&str> = KINDS.iter().map(|r| r.name).collect();
            Err(match closest(kind, &names) {
                Some(c) => format!("unknown fault kind `{kind}`: did you mean `{c}`?"),
                None => format!("unknown fault kind `{kind}`: one of {}", names.join(", ")),
            })
        }
    }
}

/// The whole reference: `docs/scenarios.md`.
pub fn markdown() -> String {
    let mut out = format!(
        "<!-- Generated by harness/src/parse/reference.rs from the parser's own tables: \
         do not edit. Regenerate with `{REGENERATE}`. -->\n\n\
         # Scenario reference\n\n\
         A scenario is a TOML file (`version = 1`), one per scenario, named by its file stem. \
         Times are in seconds (integers or floats) unless a key's unit says otherwise. \
         `iscsi-chaos explain` lists the fault kinds; `iscsi-chaos explain KIND` prints one \
         entry of this page. Problems are reported as \
         `file:line:column: field: message (hint: ...)`. Only a regular file of at most \
         {} MiB is read. A fault, a pulse and the gap between pulses last at least \
         {MIN_STEP_S} s; a scenario has at most {MAX_PULSES} pulses.\n\n\
         Contents: [Sections](#sections), [Fault kinds](#fault-kinds), [Profiles](#profiles).\n\n\
         ## Sections\n\n",
        MAX_SCENARIO_BYTES / (1024 * 1024)
    );
    for s in SECTIONS {
        out.push_str(&section(s));
        out.push('\n');
        if s.table == "[[probe]]" {
            out.push_str(&format!(
                "Without `[[probe]]`, a run has one blkprobe every {DEFAULT_PROBE_INTERVAL_MS} ms.\n\n"
            ));
        }
        if s.table == "[initiator]" {
            out.push_str(&settings_section());
            out.push('\n');
        }
    }
    out.push_str(&sweep_section());
    out.push_str(
        "\n## Fault kinds\n\n\
         Each `[[fault]]` names one with `kind`; the common fields above apply to all.\n\n",
    );
    for r in KINDS {
        out.push_str(&kind_entry(r));
        out.push('\n');
    }
    out.push_str(&profiles_section());
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests;
