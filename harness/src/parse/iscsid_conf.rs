//! A real iscsid.conf (`--iscsid-conf FILE`) as node settings for every
//! scenario of a run: its `node.*` lines become settings (unnamed sweep
//! axes, [`super::sweep`]), validated like a scenario's own, and a value a
//! scenario refuses is told at the conf's line.
//!
//! What is not applied is said, not silently dropped: keys the harness
//! keeps for itself (node.startup, node.session.scan, ... with the reason),
//! keys outside the allow-list, and daemon settings (`iscsid.*`,
//! `discovery.*`), which belong to iscsid and not to a node record.

use std::path::Path;

use super::sweep::{Axis, Origin};
use crate::model::settings;

/// Most bytes of an iscsid.conf read (Debian's is about 12 KiB).
pub const MAX_CONF_BYTES: u64 = 1 << 20;

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
            return Err(format!("{file}:{}: not `key = value`: {line}", i + 1));
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
        // Numbers stay numbers (the schema's integer settings); the rest
        // are strings, as iscsiadm takes them.
        let v = value
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(value.to_string()));
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

/// Reads and parses the iscsid.conf at `path`.
pub fn read(path: &Path) -> Result<Conf, String> {
    let file = path.display().to_string();
    let text = super::read_capped(path, MAX_CONF_BYTES).map_err(|e| format!("{file}: {e}"))?;
    parse(&file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let conf = parse("/etc/iscsi/iscsid.conf", CONF).unwrap();
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
        let got =
            super::super::sweep::expand(SCENARIO, Path::new("s.toml"), &conf.settings).unwrap();
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
        axes.push(super::super::sweep::parse_cli_axis("replacement_timeout=5,20").unwrap());
        let got = super::super::sweep::expand(SCENARIO, Path::new("s.toml"), &axes).unwrap();
        let rts: Vec<i64> = got
            .iter()
            .map(|s| s.initiator.replacement_timeout)
            .collect();
        assert_eq!(rts, [5, 20]);
    }

    #[test]
    fn a_refused_value_is_told_at_the_conf_line() {
        let conf = parse(
            "my.conf",
            "# mine\nnode.conn[0].timeo.noop_out_interval = -3\n",
        )
        .unwrap();
        let e = super::super::sweep::expand(SCENARIO, Path::new("s.toml"), &conf.settings)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "my.conf:2:1: node.conn[0].timeo.noop_out_interval: -3 (in scenario s.toml):"
            ),
            "{e}"
        );
        assert!(
            parse("x.conf", "node.session.timeo.replacement_timeout 5\n")
                .unwrap_err()
                .contains("x.conf:1: not `key = value`")
        );
    }
}
