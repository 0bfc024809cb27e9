//! `iscsi-chaos predict`: what the oracle expects of each planned run,
//! without running anything: the settings that apply and where each came
//! from, the predicted detection, first error, stall and recovery, and the
//! model's reasoning (the prediction's notes).

use std::collections::BTreeMap;
use std::path::Path;

use super::ScenarioSet;
use crate::model::settings::{short_name, NAMED};
use crate::oracle::{Prediction, Window};
use crate::parse::sweep::{self, iscsid_conf, Axis, Origin};
use crate::plan::PlannedRun;

// The subcommand's help is its variant's in `Cmd`.
#[derive(clap::Args)]
pub struct PredictArgs {
    #[command(flatten)]
    set: ScenarioSet,
}

impl PredictArgs {
    pub fn exec(self) -> u8 {
        let (axes, scenarios) = match self.set.load() {
            Ok(loaded) => loaded,
            Err(code) => return code,
        };
        let mut files = BTreeMap::new();
        for (i, planned) in crate::plan::suite(&scenarios).iter().enumerate() {
            let file = &planned.run.scenario.path;
            let sources = files
                .entry(file.clone())
                .or_insert_with(|| Sources::of(Path::new(file), &axes));
            if i > 0 {
                println!();
            }
            print!("{}", describe(planned, sources));
        }
        0
    }
}

/// Where a scenario's settings may come from, highest first: the command
/// line's sweeps, the file's `[sweep]`, `--iscsid-conf`, the file's own
/// `[initiator]`, its profile or iscsid.conf.
struct Sources {
    /// Each axis that sets a node key (the key as given), with its origin.
    axes: Vec<(String, Origin, bool)>,
    /// Node keys the file's `[initiator]` sets itself.
    own: Vec<String>,
    /// The file's profile or iscsid.conf settings.
    conf: Vec<Axis>,
}

impl Sources {
    fn of(path: &Path, cli: &[Axis]) -> Sources {
        let text = crate::parse::files::read_scenario(path).unwrap_or_default();
        let file = path.display().to_string();
        let doc: toml::Table = text.parse().unwrap_or_default();
        let initiator = doc.get("initiator").and_then(toml::Value::as_table);
        let own = NAMED
            .iter()
            .filter(|(_, field)| {
                let short = field.strip_prefix("initiator.").unwrap_or(field);
                initiator.is_some_and(|i| i.contains_key(short))
            })
            .map(|(node, _)| node.to_string())
            .chain(
                initiator
                    .and_then(|i| i.get("settings"))
                    .and_then(toml::Value::as_table)
                    .into_iter()
                    .flat_map(|t| t.keys().cloned()),
            )
            .collect();
        let profile = initiator
            .and_then(|i| i.get("profile"))
            .and_then(toml::Value::as_str);
        let conf = match profile {
            Some(name) => crate::model::profiles::profile(name)
                .and_then(|c| iscsid_conf::parse(&format!("profile {name}"), c).ok()),
            None => crate::parse::files::named_conf(path, &text)
                .and_then(|c| iscsid_conf::parse_read(&c).ok()),
        }
        .map(|c| c.settings)
        .unwrap_or_default();
        let file_axes = sweep::file_axes(&file, &text).unwrap_or_default();
        // Highest first: what a later axis of the expansion overrides.
        let (settings, sweeps): (Vec<&Axis>, Vec<&Axis>) = cli.iter().partition(|a| !a.named);
        let axes = sweeps
            .into_iter()
            .chain(&file_axes)
            .chain(settings)
            .map(|a| (a.key.clone(), a.origin.clone(), a.named))
            .collect();
        Sources { axes, own, conf }
    }

    /// Where `node_key`'s value came from, in a few words.
    fn origin(&self, node_key: &str) -> String {
        let same = |key: &str| node_of(key) == node_key;
        if let Some((_, origin, named)) = self.axes.iter().find(|(k, _, _)| same(k)) {
            return origin_words(origin, *named);
        }
        if self.own.iter().any(|k| k == node_key) {
            return "file".into();
        }
        if let Some(a) = self.conf.iter().find(|a| same(&a.key)) {
            return origin_words(&a.origin, false);
        }
        "default".into()
    }
}

/// The node key an axis key sets (`replacement_timeout` →
/// `node.session.timeo.replacement_timeout`).
fn node_of(key: &str) -> &str {
    NAMED
        .iter()
        .find(|(_, field)| field.strip_prefix("initiator.") == Some(key))
        .map_or(key, |(node, _)| node)
}

fn origin_words(origin: &Origin, named: bool) -> String {
    match origin {
        Origin::File { line, .. } => format!("[sweep] line {line}"),
        Origin::Cli { option } if named => option.to_string(),
        Origin::Cli { option } => format!("{option} (fixed)"),
        Origin::Conf { file, line } => format!("{file}:{line}"),
    }
}

fn window(w: Window) -> String {
    let (lo, hi) = (format!("{:.1}", w.lo), format!("{:.1}", w.hi));
    if lo == hi {
        format!("{lo} s")
    } else {
        format!("{lo}-{hi} s")
    }
}

/// A run's settings and prediction, as `predict` prints it.
fn describe(planned: &PlannedRun, sources: &Sources) -> String {
    let mut out = format!("{}\n", planned.id);
    let scenario = &planned.run.scenario;
    for (i, (key, value)) in scenario.initiator.redacted_settings().iter().enumerate() {
        let label = if i == 0 { "settings:" } else { "" };
        out.push_str(&format!(
            "  {label:<10}{} = {value} ({})\n",
            short_name(key),
            sources.origin(key)
        ));
    }
    for fault in &scenario.faults {
        out.push_str(&format!(
            "  fault:    {} from {} s\n",
            fault.label(),
            fault.start_s
        ));
    }
    if let Some(why) = planned.run.unsupported() {
        out.push_str(&format!("  skipped:  {why}\n"));
        return out;
    }
    out.push_str(&prediction_lines(&planned.prediction));
    out
}

/// The prediction in words: detection, first error, stall, recovery, why.
fn prediction_lines(p: &Prediction) -> String {
    let detection = p.detection_s.map_or("none".into(), |w| {
        format!("{} after the outage starts", window(w))
    });
    let error = match p.first_error_s {
        None => "none: I/O rides through".to_string(),
        Some(e) => format!(
            "at {e:.1} s ± {:.1}{}{}",
            p.tolerance_s,
            if p.borderline {
                " (a race: no error is accepted too)"
            } else {
                ""
            },
            if p.imprecise {
                " (imprecise: NOP-Outs off)"
            } else {
                ""
            }
        ),
    };
    let mut out = format!("  detection:   {detection}\n  first error: {error}\n");
    if let Some(w) = p.max_stall_s {
        out.push_str(&format!("  stall:       up to {}\n", window(w)));
    }
    if let Some(w) = p.recovery_s {
        out.push_str(&format!(
            "  recovery:    {} after the last outage ends\n",
            window(w)
        ));
    }
    for note in &p.notes {
        out.push_str(&format!("  why:         {note}\n"));
    }
    out
}
