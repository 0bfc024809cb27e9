//! The initiator settings a scenario may give in `[initiator.settings]`:
//! an allow-list of open-iscsi node keys (iscsid.conf names), each with its
//! type and range, the keys refused with a reason, and which values are
//! secrets. The one place that decides what a setting is; the parser checks
//! values against it and the report redacts by it.

/// What a secret's value reads as in reports and messages.
pub const REDACTED: &str = "(redacted)";

/// open-iscsi's default `node.session.initial_login_retry_max` (iscsid.conf).
pub const DEFAULT_INITIAL_LOGIN_RETRY_MAX: u32 = 8;

/// open-iscsi's default `node.conn[0].timeo.login_timeout` (iscsid.conf).
pub const DEFAULT_LOGIN_TIMEOUT: u32 = 15;

/// Longest a login may wait before iscsiadm gives up:
/// `login_timeout × (initial_login_retry_max + 1)`. Open-iscsi's own
/// defaults (15 s × 9 attempts) are the cap: a scenario may wait less, never
/// more, so the run's setup (and each relogin) ends in bounded time.
pub const MAX_LOGIN_WAIT_S: u64 = 135;

/// Upper bound of `login_timeout` alone (with at least one retry, the
/// product stays under [`MAX_LOGIN_WAIT_S`] only up to 67 s anyway).
pub const MAX_LOGIN_TIMEOUT_S: i64 = 60;

/// Upper bound of `logout_timeout`: below the runner's 30 s bound on the
/// wind-down's logout, with slack for iscsiadm itself.
pub const MAX_LOGOUT_TIMEOUT_S: i64 = 25;

/// Upper bound of the named timers (`noop_out_interval`, `noop_out_timeout`,
/// `replacement_timeout`): a day, the root-on-iSCSI setting (86400). No
/// deadline of a run is derived from these (the run's own `duration_s` and
/// `deadline_s` bound it); a timer beyond the run is "never" to the oracle.
pub const MAX_TIMER_S: i64 = 86400;

/// Longest CHAP name or secret (open-iscsi's `AUTH_STR_MAX_LEN` is 256,
/// with the terminating NUL).
pub const MAX_SECRET_LEN: usize = 255;

/// How a setting's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    /// Whole seconds from `min` to `max`.
    Seconds { min: i64, max: i64 },
    /// A whole number from `min` to `max`; `zero`: 0 is allowed too (a
    /// special value); `pow2`: a power of two.
    Int {
        min: i64,
        max: i64,
        zero: bool,
        pow2: bool,
    },
    /// One of these words, compared exactly (iscsiadm's `strcmp`).
    Word(&'static [&'static str]),
    /// CHAP text: 1 to [`MAX_SECRET_LEN`] printable ASCII characters. Its
    /// value is never shown.
    Secret,
}

/// One allowed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The iscsiadm node key, e.g. `node.conn[0].timeo.login_timeout`.
    pub key: &'static str,
    pub ty: SettingType,
    /// What it is, for hints.
    pub what: &'static str,
}

impl Setting {
    pub fn is_secret(&self) -> bool {
        self.ty == SettingType::Secret
    }
}

pub const DIGESTS: &[&str] = &["None", "CRC32C", "CRC32C,None", "None,CRC32C"];
pub const NO_YES: &[&str] = &["No", "Yes"];
pub const AUTH_METHODS: &[&str] = &["None", "CHAP"];

pub const KEY_FIRST_BURST: &str = "node.session.iscsi.FirstBurstLength";
pub const KEY_MAX_BURST: &str = "node.session.iscsi.MaxBurstLength";
/// open-iscsi's defaults of the two (iscsid.conf).
pub const DEFAULT_FIRST_BURST: u32 = 262_144;
pub const DEFAULT_MAX_BURST: u32 = 16_776_192;

/// RFC 7143's range of the burst and segment lengths: 512 to 2^24 - 1.
const LEN_MIN: i64 = 512;
const LEN_MAX: i64 = (1 << 24) - 1;

const fn secs(key: &'static str, min: i64, max: i64, what: &'static str) -> Setting {
    Setting {
        key,
        ty: SettingType::Seconds { min, max },
        what,
    }
}

const fn int(key: &'static str, min: i64, max: i64, what: &'static str) -> Setting {
    Setting {
        key,
        ty: SettingType::Int {
            min,
            max,
            zero: false,
            pow2: false,
        },
        what,
    }
}

const fn word(key: &'static str, valid: &'static [&'static str], what: &'static str) -> Setting {
    Setting {
        key,
        ty: SettingType::Word(valid),
        what,
    }
}

const fn secret(key: &'static str, what: &'static str) -> Setting {
    Setting {
        key,
        ty: SettingType::Secret,
        what,
    }
}

/// Every key `[initiator.settings]` takes (the three named timers are
/// fields of `[initiator]`, see [`NAMED`]).
pub const SETTINGS: &[Setting] = &[
    // Timers (whole seconds). login_timeout also enters MAX_LOGIN_WAIT_S.
    secs(
        KEY_LOGIN_TIMEOUT,
        1,
        MAX_LOGIN_TIMEOUT_S,
        "seconds one login attempt may take",
    ),
    secs(
        "node.conn[0].timeo.logout_timeout",
        1,
        MAX_LOGOUT_TIMEOUT_S,
        "seconds a logout may take",
    ),
    secs(
        "node.conn[0].timeo.auth_timeout",
        0,
        120,
        "seconds the authentication may take",
    ),
    secs(
        KEY_ABORT_TIMEOUT,
        0,
        120,
        "seconds the SCSI error handler waits for an abort",
    ),
    secs(
        "node.session.err_timeo.lu_reset_timeout",
        0,
        120,
        "seconds it waits for a LUN reset",
    ),
    secs(
        "node.session.err_timeo.tgt_reset_timeout",
        0,
        120,
        "seconds it waits for a target reset",
    ),
    secs(
        "node.session.err_timeo.host_reset_timeout",
        0,
        120,
        "seconds it waits for a host reset",
    ),
    // Counts.
    int(
        KEY_INITIAL_LOGIN_RETRY_MAX,
        1,
        64,
        "login retries before iscsiadm gives up",
    ),
    int(
        "node.session.queue_depth",
        1,
        1024,
        "the device's queue depth (iscsid.conf: 1 to 1024)",
    ),
    Setting {
        key: "node.session.cmds_max",
        ty: SettingType::Int {
            min: 2,
            max: 2048,
            zero: false,
            pow2: true,
        },
        what: "commands the session queues (iscsid.conf: a power of 2 from 2 to 2048)",
    },
    // Negotiation (RFC 7143 keys).
    word("node.session.iscsi.InitialR2T", NO_YES, "No or Yes"),
    word("node.session.iscsi.ImmediateData", NO_YES, "No or Yes"),
    word("node.session.iscsi.FastAbort", NO_YES, "No or Yes"),
    int(
        KEY_FIRST_BURST,
        LEN_MIN,
        LEN_MAX,
        "bytes of unsolicited data, 512 to 2^24 - 1",
    ),
    int(
        KEY_MAX_BURST,
        LEN_MIN,
        LEN_MAX,
        "bytes per data sequence, 512 to 2^24 - 1",
    ),
    int(
        "node.conn[0].iscsi.MaxRecvDataSegmentLength",
        LEN_MIN,
        LEN_MAX,
        "bytes per PDU the initiator receives, 512 to 2^24 - 1",
    ),
    Setting {
        key: "node.conn[0].iscsi.MaxXmitDataSegmentLength",
        ty: SettingType::Int {
            min: LEN_MIN,
            max: LEN_MAX,
            zero: true,
            pow2: false,
        },
        what: "bytes per PDU the initiator sends, 512 to 2^24 - 1 (0: the target's)",
    },
    word("node.conn[0].iscsi.HeaderDigest", DIGESTS, "a digest list"),
    word("node.conn[0].iscsi.DataDigest", DIGESTS, "a digest list"),
    word("node.conn[0].iscsi.IFMarker", NO_YES, "No or Yes"),
    word("node.conn[0].iscsi.OFMarker", NO_YES, "No or Yes"),
    // CHAP.
    word("node.session.auth.authmethod", AUTH_METHODS, "None or CHAP"),
    secret("node.session.auth.username", "the CHAP name"),
    secret("node.session.auth.password", "the CHAP secret"),
    secret(
        "node.session.auth.username_in",
        "the target's CHAP name (mutual CHAP)",
    ),
    secret(
        "node.session.auth.password_in",
        "the target's CHAP secret (mutual CHAP)",
    ),
];

/// iscsiadm node keys of the three settings the schema names, and of the
/// settings the model reads (`Initiator`).
pub const KEY_NOOP_OUT_INTERVAL: &str = "node.conn[0].timeo.noop_out_interval";
pub const KEY_NOOP_OUT_TIMEOUT: &str = "node.conn[0].timeo.noop_out_timeout";
pub const KEY_REPLACEMENT_TIMEOUT: &str = "node.session.timeo.replacement_timeout";
pub const KEY_LOGIN_TIMEOUT: &str = "node.conn[0].timeo.login_timeout";
pub const KEY_ABORT_TIMEOUT: &str = "node.session.err_timeo.abort_timeout";
pub const KEY_INITIAL_LOGIN_RETRY_MAX: &str = "node.session.initial_login_retry_max";

/// Node keys the schema names as `[initiator]` fields: setting them in
/// `[initiator.settings]` too would make the value ambiguous.
pub const NAMED: &[(&str, &str)] = &[
    (KEY_NOOP_OUT_INTERVAL, "initiator.noop_out_interval"),
    (KEY_NOOP_OUT_TIMEOUT, "initiator.noop_out_timeout"),
    (KEY_REPLACEMENT_TIMEOUT, "initiator.replacement_timeout"),
];

/// A node key as people write it: the `[initiator]` field's name for the
/// named settings (`replacement_timeout`), else the key itself.
pub fn short_name(key: &str) -> &str {
    NAMED
        .iter()
        .find(|(node, _)| *node == key)
        .map_or(key, |(_, field)| {
            field.strip_prefix("initiator.").unwrap_or(field)
        })
}

/// A key (or a family of keys) refused because setting it would reach
/// beyond the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The key, or a prefix when it ends with `.`.
    pub key: &'static str,
    pub why: &'static str,
}

pub const REFUSED: &[Refusal] = &[
    Refusal {
        key: "node.startup",
        why: "the harness keeps its node record at node.startup = manual: a record left behind must never log in at boot",
    },
    Refusal {
        key: "node.conn[0].startup",
        why: "the harness keeps its node record at manual startup: a record left behind must never log in at boot",
    },
    Refusal {
        key: "iface.",
        why: "iface settings bind the session to another network interface, outside the run's lane",
    },
    Refusal {
        key: "node.session.scan",
        why: "the harness finds the session's disk through the kernel's LUN scan; turning it off leaves no disk",
    },
    Refusal {
        key: "node.session.nr_sessions",
        why: "a run has exactly one session per portal (one per path of its lane)",
    },
    Refusal {
        key: "node.name",
        why: "the target's name is chosen per run (it carries the run's marker)",
    },
    Refusal {
        key: "node.tpgt",
        why: "the target portal group is the run's own",
    },
    Refusal {
        key: "node.conn[0].address",
        why: "the portal is the run's lane address",
    },
    Refusal {
        key: "node.conn[0].port",
        why: "the portal is the run's lane address",
    },
    Refusal {
        key: "node.discovery_address",
        why: "the node record is made without discovery",
    },
    Refusal {
        key: "node.discovery_port",
        why: "the node record is made without discovery",
    },
    Refusal {
        key: "node.discovery_type",
        why: "the node record is made without discovery",
    },
    Refusal {
        key: "node.transport_name",
        why: "the session runs over iscsi_tcp on the lane",
    },
];

/// The allowed setting `key`, if it is one.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Why `key` is refused, if it is.
pub fn refusal(key: &str) -> Option<&'static Refusal> {
    REFUSED.iter().find(|r| {
        if r.key.ends_with('.') {
            key.starts_with(r.key)
        } else {
            key == r.key
        }
    })
}

/// Whether the value of iscsiadm key `key` is a secret (a CHAP name or
/// secret). Keys the allow-list does not know are secret when they are
/// `*.auth.*` (fail closed).
pub fn is_secret(key: &str) -> bool {
    match setting(key) {
        Some(s) => s.is_secret(),
        None => key.contains(".auth."),
    }
}

/// `value` as it may be shown for `key`: [`REDACTED`] for a secret.
pub fn redacted<'v>(key: &str, value: &'v str) -> &'v str {
    if is_secret(key) {
        REDACTED
    } else {
        value
    }
}

/// Every key a scenario may name in `[initiator.settings]` or as a named
/// field, for closest-name hints.
pub fn known_keys() -> Vec<&'static str> {
    SETTINGS
        .iter()
        .map(|s| s.key)
        .chain(NAMED.iter().map(|(k, _)| *k))
        .collect()
}

/// Total seconds a login may wait: `login_timeout × (retries + 1)`.
pub fn login_wait_s(login_timeout: u32, initial_login_retry_max: u32) -> u64 {
    u64::from(login_timeout).saturating_mul(u64::from(initial_login_retry_max) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_listed_once_and_never_both_allowed_and_refused() {
        let mut keys = known_keys();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
        for k in keys {
            assert!(refusal(k).is_none(), "{k}");
            assert!(k.starts_with("node."), "{k}");
        }
    }

    #[test]
    fn dangerous_keys_are_refused() {
        assert!(refusal("node.startup").unwrap().why.contains("boot"));
        assert!(refusal("iface.net_ifacename")
            .unwrap()
            .why
            .contains("interface"));
        assert!(refusal("iface.iscsi_ifacename").is_some());
        assert!(refusal("node.session.scan").is_some());
        assert!(refusal("node.conn[0].timeo.login_timeout").is_none());
        // A prefix entry needs the dot: "iface" alone is just unknown.
        assert!(refusal("iface").is_none());
    }

    #[test]
    fn the_allow_list_decides_what_is_secret() {
        for k in [
            "node.session.auth.username",
            "node.session.auth.password",
            "node.session.auth.username_in",
            "node.session.auth.password_in",
            // Unknown auth keys fail closed.
            "node.session.auth.chap_algs",
            "discovery.sendtargets.auth.password",
        ] {
            assert!(is_secret(k), "{k}");
            assert_eq!(redacted(k, "hunter2"), REDACTED);
        }
        assert!(!is_secret("node.session.auth.authmethod"));
        assert!(!is_secret(KEY_LOGIN_TIMEOUT));
        assert_eq!(redacted(KEY_LOGIN_TIMEOUT, "5"), "5");
    }

    #[test]
    fn login_wait_is_the_product_and_defaults_fit_the_cap() {
        assert_eq!(login_wait_s(5, 2), 15);
        assert_eq!(
            login_wait_s(DEFAULT_LOGIN_TIMEOUT, DEFAULT_INITIAL_LOGIN_RETRY_MAX),
            MAX_LOGIN_WAIT_S
        );
        assert_eq!(
            login_wait_s(u32::MAX, u32::MAX),
            u64::from(u32::MAX) * (u64::from(u32::MAX) + 1)
        );
    }
}
