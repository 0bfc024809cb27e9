//! dm-multipath over a lane's paths, as data: the scenario's `[multipath]`
//! settings, the multipath.conf the harness writes from them (ours alone:
//! every device but our map's WWID blacklisted), and the dm table status
//! it reads back. Pure.
//!
//! Facts this rests on (multipath-tools 0.9.4 and 0.11, read from its
//! sources): multipathd writes `fast_io_fail_tmo` into each iSCSI
//! session's `recovery_tmo` whenever it sets the map up
//! (`sysfs_set_session_tmo`); per-array built-ins (LIO-ORG: no_path_retry
//! 12, ALUA) lose only to `overrides`, so the scenario's values go there;
//! `no_path_retry N` stops queueing `N * polling_interval + 1` s after the
//! last path failed (`enter_recovery_mode`); without udev the WWID comes
//! from sysfs only with `uid_attribute ""`.

use std::fmt::Write as _;

/// What happens to I/O when every path is down (`no_path_retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPathRetry {
    /// Queue until a path returns (the application may hang).
    Queue,
    /// Fail I/O as soon as the last path fails.
    Fail,
    /// Queue for this many polling intervals, then fail.
    Polls(u32),
}

impl NoPathRetry {
    pub fn as_config(self) -> String {
        match self {
            NoPathRetry::Queue => "queue".into(),
            NoPathRetry::Fail => "fail".into(),
            NoPathRetry::Polls(n) => n.to_string(),
        }
    }
}

/// How the map groups its paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// All paths in one group, I/O spread over them (round-robin).
    Multibus,
    /// One path per group: I/O on one path, the next on failure.
    Failover,
}

impl Grouping {
    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Multibus => "multibus",
            Grouping::Failover => "failover",
        }
    }
}

/// The path checker multipathd polls paths with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    Tur,
    Directio,
}

impl Checker {
    pub fn as_str(self) -> &'static str {
        match self {
            Checker::Tur => "tur",
            Checker::Directio => "directio",
        }
    }
}

/// A scenario's `[multipath]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Multipath {
    /// Seconds between path checks (multipath-tools' default 5).
    pub polling_interval: u32,
    pub path_checker: Checker,
    pub no_path_retry: NoPathRetry,
    /// Written into each session's recovery_tmo; `None`: "off" (the
    /// session keeps iscsid's replacement_timeout).
    pub fast_io_fail_tmo: Option<u32>,
    pub grouping: Grouping,
    /// The map's `features` (`"1 retain_attached_hw_handler"`), as
    /// multipath.conf takes them; queueing is `no_path_retry`'s (which
    /// multipath-tools lets win over `queue_if_no_path` here).
    pub features: Option<String>,
}

/// Whether `f` is a multipath `features` value: a count, then that many
/// words of letters, digits and `_`.
pub fn valid_features(f: &str) -> bool {
    let mut words = f.split_whitespace();
    let Some(n) = words.next().and_then(|n| n.parse::<usize>().ok()) else {
        return false;
    };
    let rest: Vec<&str> = words.collect();
    rest.len() == n
        && rest
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// multipath-tools' defaults: polling 5 s, fast_io_fail 5 s, no queueing.
impl Default for Multipath {
    fn default() -> Self {
        Multipath {
            polling_interval: 5,
            path_checker: Checker::Tur,
            no_path_retry: NoPathRetry::Fail,
            fast_io_fail_tmo: Some(5),
            grouping: Grouping::Multibus,
            features: None,
        }
    }
}

/// Bounds of the numbers in `[multipath]`.
pub const MAX_POLLING_INTERVAL_S: u32 = 60;
pub const MAX_FAST_IO_FAIL_TMO_S: u32 = 600;
pub const MAX_NO_PATH_RETRY: u32 = 1000;

impl Multipath {
    /// The recovery_tmo multipathd will give each session: its
    /// fast_io_fail_tmo, or the session's own when that is off.
    pub fn effective_recovery_tmo(&self, replacement_timeout: i64) -> i64 {
        match self.fast_io_fail_tmo {
            Some(f) => i64::from(f),
            None => replacement_timeout,
        }
    }

    /// The multipath.conf for one map: WWID `wwid` named `alias`, every
    /// other device blacklisted, the scenario's values in `overrides` (they
    /// beat the built-in hardware table).
    pub fn config(&self, wwid: &str, alias: &str) -> String {
        let fast = self
            .fast_io_fail_tmo
            .map_or("off".to_string(), |f| f.to_string());
        let mut c = String::new();
        let _ = writeln!(c, "# Written by iscsi-chaos for map {alias} only.");
        let _ = writeln!(c, "defaults {{");
        let _ = writeln!(c, "\tpolling_interval {}", self.polling_interval);
        let _ = writeln!(c, "\tfind_multipaths no");
        let _ = writeln!(c, "\tuser_friendly_names no");
        // The WWID from sysfs (VPD page 0x83): no udev database needed.
        let _ = writeln!(c, "\tuid_attribute \"\"");
        // Without udev the map's uevent never comes: do not wait 30 s.
        let _ = writeln!(c, "\tmissing_uev_wait_timeout 1");
        let _ = writeln!(c, "}}");
        let _ = writeln!(c, "blacklist {{\n\twwid \".*\"\n}}");
        let _ = writeln!(c, "blacklist_exceptions {{\n\twwid \"^{wwid}$\"\n}}");
        let _ = writeln!(c, "overrides {{");
        let _ = writeln!(c, "\tpath_checker {}", self.path_checker.as_str());
        let _ = writeln!(c, "\tdetect_checker no");
        let _ = writeln!(c, "\tdetect_prio no");
        let _ = writeln!(c, "\tprio const");
        let _ = writeln!(c, "\tpath_grouping_policy {}", self.grouping.as_str());
        let _ = writeln!(c, "\tfailback immediate");
        let _ = writeln!(c, "\tno_path_retry {}", self.no_path_retry.as_config());
        let _ = writeln!(c, "\tfast_io_fail_tmo {fast}");
        if let Some(f) = &self.features {
            let _ = writeln!(c, "\tfeatures \"{f}\"");
        }
        let _ = writeln!(c, "}}");
        let _ = writeln!(
            c,
            "multipaths {{\n\tmultipath {{\n\t\twwid \"{wwid}\"\n\t\talias \"{alias}\"\n\t}}\n}}"
        );
        c
    }
}

/// multipath's WWID of a SCSI disk from its sysfs `device/wwid`
/// (`naa.6001405…` → `36001405…`, `eui.…` → `2…`): the designator type
/// digit multipath puts first, then the identifier. Other forms (t10 vendor
/// ids, with spaces) are not taken.
pub fn wwid_of_sysfs(sysfs_wwid: &str) -> Option<String> {
    let s = sysfs_wwid.trim();
    let (digit, rest) = if let Some(r) = s.strip_prefix("naa.") {
        ('3', r)
    } else if let Some(r) = s.strip_prefix("eui.") {
        ('2', r)
    } else {
        return None;
    };
    let ok = !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| format!("{digit}{}", rest.to_ascii_lowercase()))
}

/// multipath's WWID from a disk's VPD page 0x83 (sysfs `device/vpd_pg83`,
/// raw): the logical unit's best designator, NAA first (as `3` + hex),
/// then EUI-64 (`2` + hex) (libmultipath `parse_vpd_pg83`, binary
/// designators only).
pub fn wwid_of_vpd83(page: &[u8]) -> Option<String> {
    if page.len() < 4 || page[1] != 0x83 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([page[2], page[3]]));
    let body = page.get(4..4 + len.min(page.len() - 4))?;
    let mut best: Option<(u8, String)> = None;
    let mut at = 0;
    while at + 4 <= body.len() {
        let code_set = body[at] & 0x0f;
        let association = (body[at + 1] >> 4) & 0x03;
        let kind = body[at + 1] & 0x0f;
        let dlen = usize::from(body[at + 3]);
        let Some(id) = body.get(at + 4..at + 4 + dlen) else {
            break;
        };
        at += 4 + dlen;
        // Binary designators of the logical unit itself.
        if association != 0 || code_set != 1 || id.is_empty() {
            continue;
        }
        let (rank, digit) = match kind {
            3 => (2, '3'),
            2 => (1, '2'),
            _ => continue,
        };
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            best = Some((rank, format!("{digit}{hex}")));
        }
    }
    best.map(|(_, w)| w)
}

/// One path of a multipath map as the dm table's status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStatus {
    /// `major:minor` of the path's disk.
    pub device: String,
    /// `A` (active) or `F` (failed).
    pub active: bool,
    /// How often the kernel failed it.
    pub fail_count: u32,
}

/// A multipath map's status (`dmsetup status MAP`): whether I/O queues
/// with no path, and each path's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapStatus {
    /// A `queue_if_no_path` feature word (a table line, `dmsetup table`).
    pub queue_if_no_path: bool,
    /// The status's first feature (`dmsetup status`): I/O is being queued
    /// now (no usable path).
    pub queue_io: bool,
    pub paths: Vec<PathStatus>,
}

impl MapStatus {
    /// How many paths are active.
    pub fn active(&self) -> usize {
        self.paths.iter().filter(|p| p.active).count()
    }
}

/// Parses one `dmsetup status` line of a multipath target:
/// `0 <len> multipath <#feat> <feat>… <#hwh> <hwh>… <#pg> <init pg>
/// [<pg state> <#ps args> <#paths> <#path args> [<dev> <A|F> <fails> <ps args>…]…]…`
/// (drivers/md/dm-mpath.c `multipath_status`).
pub fn parse_map_status(line: &str) -> Option<MapStatus> {
    let mut w = line.split_whitespace();
    let _start = w.next()?;
    let _len = w.next()?;
    if w.next()? != "multipath" {
        return None;
    }
    let nfeat: usize = w.next()?.parse().ok()?;
    let mut status = MapStatus::default();
    for k in 0..nfeat {
        // A table's features are words; a status's are "<queue_io>
        // <pg_init_count>".
        match w.next()? {
            "queue_if_no_path" => status.queue_if_no_path = true,
            "1" if k == 0 => status.queue_io = true,
            _ => {}
        }
    }
    let nhw: usize = w.next()?.parse().ok()?;
    for _ in 0..nhw {
        w.next()?;
    }
    let npg: usize = w.next()?.parse().ok()?;
    let _init_pg = w.next()?;
    for _ in 0..npg {
        let _pg_state = w.next()?;
        let nps: usize = w.next()?.parse().ok()?;
        for _ in 0..nps {
            w.next()?;
        }
        let npaths: usize = w.next()?.parse().ok()?;
        let npath_args: usize = w.next()?.parse().ok()?;
        for _ in 0..npaths {
            let device = w.next()?.to_string();
            let active = match w.next()? {
                "A" => true,
                "F" => false,
                _ => return None,
            };
            let fail_count = w.next()?.parse().ok()?;
            for _ in 0..npath_args {
                w.next()?;
            }
            status.paths.push(PathStatus {
                device,
                active,
                fail_count,
            });
        }
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_blacklists_all_but_our_wwid_and_overrides_the_hwtable() {
        let m = Multipath {
            no_path_retry: NoPathRetry::Polls(3),
            fast_io_fail_tmo: None,
            ..Multipath::default()
        };
        let c = m.config("36001405abc", "iscsi-chaos-r-0-mp");
        assert!(c.contains("blacklist {\n\twwid \".*\"\n}"), "{c}");
        assert!(c.contains("wwid \"^36001405abc$\""), "{c}");
        let overrides = c.split("overrides {").nth(1).unwrap();
        assert!(overrides.contains("no_path_retry 3"), "{c}");
        assert!(overrides.contains("fast_io_fail_tmo off"), "{c}");
        assert!(overrides.contains("path_grouping_policy multibus"), "{c}");
        assert!(c.contains("alias \"iscsi-chaos-r-0-mp\""), "{c}");
        // Balanced braces: multipath.conf is a nest of sections.
        assert_eq!(c.matches('{').count(), c.matches('}').count());
        assert_eq!(m.effective_recovery_tmo(120), 120);
        assert_eq!(Multipath::default().effective_recovery_tmo(120), 5);
    }

    #[test]
    fn features_are_a_count_and_words() {
        assert!(valid_features("0"));
        assert!(valid_features("1 queue_if_no_path"));
        assert!(valid_features("2 pg_init_retries 50"));
        assert!(!valid_features("2 queue_if_no_path"));
        assert!(!valid_features("1 \"x\""));
        assert!(!valid_features("queue_if_no_path"));
        let m = Multipath {
            features: Some("1 retain_attached_hw_handler".into()),
            ..Multipath::default()
        };
        assert!(m
            .config("3a", "m")
            .contains("\tfeatures \"1 retain_attached_hw_handler\"\n"));
    }

    #[test]
    fn wwids_take_multipaths_form() {
        assert_eq!(
            wwid_of_sysfs("naa.6001405E4C1A7D5C\n").as_deref(),
            Some("36001405e4c1a7d5c")
        );
        assert_eq!(wwid_of_sysfs("eui.0011").as_deref(), Some("20011"));
        assert_eq!(wwid_of_sysfs("t10.IET     VIRTUAL-DISK"), None);
        assert_eq!(wwid_of_sysfs("naa.xyz"), None);
        assert_eq!(wwid_of_sysfs("naa."), None);
    }

    #[test]
    fn vpd_page_83_gives_the_naa_designator() {
        // A T10 vendor id (ASCII, type 1), then an NAA (binary, type 3).
        let mut page = vec![0x00, 0x83, 0x00, 0x00];
        page.extend([0x02, 0x01, 0x00, 0x04, b'L', b'I', b'O', b' ']);
        page.extend([0x01, 0x03, 0x00, 0x04, 0x60, 0x01, 0x40, 0x5a]);
        let n = (page.len() - 4) as u16;
        page[2..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(wwid_of_vpd83(&page).as_deref(), Some("36001405a"));
        assert_eq!(wwid_of_vpd83(&page[..6]), None);
        assert_eq!(wwid_of_vpd83(&[0, 0x80, 0, 0]), None);
    }

    #[test]
    fn map_status_is_parsed() {
        // Two paths in one group (multibus), one failed.
        let line = "0 131072 multipath 2 0 0 0 1 1 A 0 2 2 8:16 A 0 0 1 8:32 F 1 0 1";
        let s = parse_map_status(line).unwrap();
        assert!(!s.queue_io);
        assert_eq!(s.paths.len(), 2);
        assert!(s.paths[0].active && !s.paths[1].active);
        assert_eq!(s.paths[1].fail_count, 1);
        assert_eq!(s.active(), 1);
        // Failover grouping: two groups of one path.
        // Both failed, queueing.
        let line = "0 131072 multipath 2 1 0 0 2 1 A 0 1 2 8:16 F 1 0 1 E 0 1 2 8:32 F 2 0 1";
        let s = parse_map_status(line).unwrap();
        assert!(s.queue_io);
        assert_eq!(s.active(), 0);
        assert_eq!(parse_map_status("0 8 linear 8:0 0"), None);
        assert_eq!(parse_map_status("0 8 multipath 1"), None);
    }
}
