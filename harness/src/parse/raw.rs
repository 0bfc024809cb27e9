//! The raw (serde) form of a scenario file: every value we check keeps
//! its span; the section builders check the values.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

// Raw (serde) form: every value we check keeps its span.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) version: Spanned<i64>,
    #[serde(default)]
    pub(super) description: Option<Spanned<String>>,
    pub(super) duration_s: Spanned<f64>,
    #[serde(default)]
    pub(super) long: bool,
    pub(super) lane: Spanned<RawLane>,
    #[serde(default)]
    pub(super) initiator: Option<Spanned<RawInitiator>>,
    #[serde(default)]
    pub(super) probe: Vec<Spanned<RawProbe>>,
    #[serde(default)]
    pub(super) fault: Vec<Spanned<RawFault>>,
    #[serde(default)]
    pub(super) expect: Option<Spanned<RawExpect>>,
    #[serde(default)]
    pub(super) multipath: Option<Spanned<RawMultipath>>,
    #[serde(default)]
    pub(super) capture: Option<Spanned<RawCapture>>,
    #[serde(default)]
    pub(super) host: Vec<Spanned<RawHost>>,
    #[serde(default)]
    pub(super) fencing: Option<Spanned<RawFencing>>,
    /// Read by [`sweep`]; a plain load takes the scenario as written.
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) sweep: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLane {
    pub(super) target: Spanned<toml::Value>,
    #[serde(default)]
    pub(super) lun_size_mib: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) mtu: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) alone: bool,
    #[serde(default)]
    pub(super) paths: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCapture {
    #[serde(default)]
    pub(super) mode: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) snaplen: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) max_mib: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMultipath {
    #[serde(default)]
    pub(super) polling_interval: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) path_checker: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) no_path_retry: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub(super) fast_io_fail_tmo: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub(super) path_grouping_policy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) features: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInitiator {
    #[serde(default)]
    pub(super) noop_out_interval: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) noop_out_timeout: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) replacement_timeout: Option<Spanned<i64>>,
    /// A named profile ([`crate::model::profiles`]) or an iscsid.conf beside
    /// the scenario: applied by [`sweep::expand`] under the file's own keys.
    #[serde(default)]
    pub(super) profile: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) iscsid_conf: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) settings: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    pub(super) kind: Spanned<String>,
    #[serde(default)]
    pub(super) name: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) interval_ms: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) blocks: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) depth: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) fs: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) mount_options: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) xfs_eio_max_retries: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) command: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) job: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) host: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) start_s: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFencing {
    pub(super) survivor: Spanned<i64>,
    pub(super) victim: Spanned<i64>,
    #[serde(default)]
    pub(super) at_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) after_victim_stall_s: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    #[serde(default)]
    pub(super) name: Option<Spanned<String>>,
}

/// A `[[fault]]` table: its keys are checked by the common fields and the
/// kind's own options (see [`crate::model::fault`]).
pub(super) type RawFault = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// A fault table's value by key.
pub(super) fn field_of<'f>(f: &'f RawFault, name: &str) -> Option<&'f Spanned<toml::Value>> {
    f.iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    #[serde(default)]
    pub(super) first_error: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub(super) tolerance_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) max_stall_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) min_stall_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) recovered: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) max_recovery_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) max_lost_writes: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) split_brain: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) deadline_s: Option<Spanned<f64>>,
}
