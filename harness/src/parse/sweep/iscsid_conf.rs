//! A real iscsid.conf (`--iscsid-conf FILE`) as node settings for every
//! scenario of a run: its `node.*` lines become settings (unnamed sweep
//! axes, [`super`]), validated like a scenario's own, and a value a
//! scenario refuses is told at the conf's line.
//!
//! What is not applied is said, not silently dropped: keys the harness
//! keeps for itself (node.startup, node.session.scan, ... with the reason),
//! keys outside the allow-list, and daemon settings (`iscsid.*`,
//! `discovery.*`), which belong to iscsid and not to a node record.

use std::path::Path;

use super::axis::{Axis, Origin};
use crate::model::settings;
use crate::parse::files::{self, ConfText};

/// An iscsid.conf's node settings, and what was not applied (one line each).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conf {
    pub settings: Vec<Axis>,
    pub not_applied: Vec<String>,
}

/// Parses iscsid.conf text (`file` names it in messages).
pub fn parse(file: &str, text: &str) -> Result<Conf, String> {
    let mut conf = Conf::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            // The line is not quoted: a file that is not an iscsid.conf
            // (a scenario may name any path) must not be shown in logs.
            return Err(format!(
                "{file}:{}: not `key = value` (the line is not shown: is this an iscsid.conf?)",
                i + 1
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        if !key.starts_with("node.") {
            conf.not_applied.push(format!(
                "{file}:{}: {key}: a daemon setting, not a node's",
                i + 1
            ));
            continue;
        }
        if let Some(r) = settings::refusal(key) {
            conf.not_applied.push(format!(
                "{file}:{}: {key}: kept by the harness: {}",
                i + 1,
                r.why
            ));
            continue;
        }
        let named = settings::NAMED.iter().any(|(k, _)| *k == key);
        if !named && settings::setting(key).is_none() {
            conf.not_applied.push(format!(
                "{file}:{}: {key}: not a setting the harness applies",
                i + 1
            ));
            continue;
        }
        let v = typed_value(key, value);
        conf.settings.retain(|a| a.key != key); // the last line of a key wins
        conf.settings.push(Axis {
            key: key.to_string(),
            values: vec![v],
            origin: Origin::Conf {
                file: file.to_string(),
                line: i + 1,
            },
            named: false,
        });
    }
    Ok(conf)
}

/// A conf value as the scenario's schema takes it: a number for the
/// settings that are numbers, text for the rest (words, and CHAP secrets,
/// which may be all digits: `98765432101234` is a legal password).
fn typed_value(key: &str, value: &str) -> toml::Value {
    let text_setting = settings::setting(key).is_some_and(|s| {
        matches!(
            s.ty,
            settings::SettingType::Word(_) | settings::SettingType::Secret
        )
    }) || settings::is_secret(key);
    match value.parse::<i64>() {
        Ok(n) if !text_setting => toml::Value::Integer(n),
        _ => toml::Value::String(value.to_string()),
    }
}

/// Parses an iscsid.conf as read (its reading's error as it is).
pub fn parse_read(conf: &ConfText) -> Result<Conf, String> {
    parse(&conf.file, conf.text.as_deref().map_err(Clone::clone)?)
}

/// Reads and parses the iscsid.conf at `path`.
pub fn read(path: &Path) -> Result<Conf, String> {
    parse_read(&files::read_conf(path))
}
