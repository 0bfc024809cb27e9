//! The marker every object we make carries: names derived from the run id
//! and the lane (namespaces, veths, IQNs, dm devices, ...), and the checks
//! that a name is exactly of that shape. Pure: cleanup and the ledger decide
//! from these whether something is ours.

use std::net::Ipv4Addr;

/// Every namespace this harness creates starts with this.
pub const NETNS_PREFIX: &str = "iscsi-chaos-";

/// Every IQN this harness creates starts with this.
pub const IQN_PREFIX: &str = "iqn.2026-11.io.iscsi-chaos:";

/// Every veth this harness creates starts with this.
pub const VETH_PREFIX: &str = "icX";

/// Second octet of the lanes' 10.x.0.0/16.
pub const SUBNET_OCTET: u8 = 213;

/// A lane's MTU unless its scenario sets one (Ethernet's).
pub const DEFAULT_MTU: u32 = 1500;

/// Lane subnet prefix length.
pub const LANE_PREFIX_LEN: u8 = 24;

/// iSCSI's well-known port; each lane has its own address, so no clash.
pub const ISCSI_PORT: u16 = 3260;

/// Check a run id: it becomes part of namespace names and of IQNs.
pub fn check_run_id(run_id: &str) -> Result<(), String> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 64
        && run_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(format!("invalid run id {run_id:?}: use 1-64 of [a-z0-9-]"));
    }
    Ok(())
}

/// Six base-36 characters standing for the run id in veth names (15 bytes at
/// most). A hash rather than a prefix: run ids that start alike (dates) must
/// still give different veth names.
pub fn run_tag(run_id: &str) -> String {
    let mut h = run_hash(run_id);
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut tag = String::with_capacity(6);
    for _ in 0..6 {
        tag.push(digits[(h % 36) as usize] as char);
        h /= 36;
    }
    tag
}

/// Stable hash of a run id (veth tags, per-run port numbers). FNV-1a:
/// stable across builds and platforms, unlike `DefaultHasher`.
pub fn run_hash(run_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Names of everything a lane creates: the target's namespace, the
/// switch's namespace with its bridge, and two veth pairs (initiator to
/// switch, switch to target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneNames {
    pub netns: String,
    /// Root-namespace end (the initiator's side).
    pub host_veth: String,
    /// End moved into the lane's namespace (the target's side).
    pub target_veth: String,
    /// The switch's namespace.
    pub switch_netns: String,
    /// The switch's bridge.
    pub bridge: String,
    /// The switch's port facing the initiator (peer of `host_veth`).
    pub initiator_port: String,
    /// The switch's port facing the target (peer of `target_veth`).
    pub target_port: String,
}

/// Namespace names of a run all start with this.
pub fn netns_prefix_for_run(run_id: &str) -> String {
    format!("{NETNS_PREFIX}{run_id}-")
}

/// Whether `name` is a lane namespace (target's, `…-<lane>`, or switch's,
/// `…-sw<lane>`, or the switch of a further path, `…-sw<lane>p<path>`) of
/// exactly this run (run `ab` must not match run `ab-1`'s
/// `iscsi-chaos-ab-1-0`).
pub fn is_netns_of_run(name: &str, run_id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix(&netns_prefix_for_run(run_id))
        .is_some_and(|rest| match rest.strip_prefix(SWITCH_MARK) {
            None => digits(rest),
            Some(sw) => match sw.split_once(PATH_MARK) {
                None => digits(sw),
                Some((lane, path)) => digits(lane) && digits(path),
            },
        })
}

/// What sets the names of a lane's further paths apart (`p<path>`).
const PATH_MARK: char = 'p';

/// Most paths one lane may have (dm-multipath over them).
pub const MAX_PATHS: u8 = 4;

/// What sets a switch namespace's name apart from its lane's.
const SWITCH_MARK: &str = "sw";

/// Veth names of a run all start with this.
pub fn veth_prefix_for_run(run_id: &str) -> String {
    format!("{VETH_PREFIX}{}", run_tag(run_id))
}

pub fn lane_names(run_id: &str, index: u8) -> LaneNames {
    path_names(run_id, index, 0)
}

/// The names of path `path` of lane `index`: path 0 is the lane itself;
/// a further path has a switch and veths of its own (suffix `p<path>`) and
/// shares the lane's target namespace.
pub fn path_names(run_id: &str, index: u8, path: u8) -> LaneNames {
    let veth = veth_prefix_for_run(run_id);
    let p = if path == 0 {
        String::new()
    } else {
        format!("{PATH_MARK}{path}")
    };
    LaneNames {
        netns: format!("{}{index}", netns_prefix_for_run(run_id)),
        host_veth: format!("{veth}i{index}{p}"),
        target_veth: format!("{veth}t{index}{p}"),
        switch_netns: format!("{}{SWITCH_MARK}{index}{p}", netns_prefix_for_run(run_id)),
        bridge: format!("{veth}w{index}{p}"),
        initiator_port: format!("{veth}a{index}{p}"),
        target_port: format!("{veth}b{index}{p}"),
    }
}

/// Whether `name` has exactly the shape of one of our veth names
/// (`icX` + 6 base-36 + `i`|`t`|`a`|`b` + lane number, and `p` + path
/// number for a lane's further paths: initiator, target, and the switch's
/// ports facing them), so cleanup can never take someone else's interface
/// that merely starts with the same letters.
pub fn is_our_veth_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(VETH_PREFIX) else {
        return false;
    };
    if rest.len() < 8 || !rest.is_ascii() {
        return false;
    }
    let (tag, rest) = rest.split_at(6);
    let (side, num) = rest.split_at(1);
    let number = |num: &str, max: u16| {
        !num.is_empty()
            && num.len() <= 3
            && num.bytes().all(|b| b.is_ascii_digit())
            && num.parse::<u16>().is_ok_and(|n| n <= max)
    };
    let (lane, path_ok) = match num.split_once(PATH_MARK) {
        None => (num, true),
        Some((lane, path)) => (
            lane,
            number(path, u16::from(MAX_PATHS) - 1) && !path.starts_with('0'),
        ),
    };
    tag.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && matches!(side, "i" | "t" | "a" | "b")
        && number(lane, 255)
        && path_ok
}

/// (initiator address, target address) of lane `index`.
pub fn lane_addresses(index: u8) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::new(10, SUBNET_OCTET, index, 1),
        Ipv4Addr::new(10, SUBNET_OCTET, index, 2),
    )
}

pub fn in_lane_subnet(addr: Ipv4Addr, index: u8) -> bool {
    let o = addr.octets();
    o[0] == 10 && o[1] == SUBNET_OCTET && o[2] == index
}

/// Prefix of every dm device we create.
pub const DM_PREFIX: &str = "iscsi-chaos-";
/// Suffix of our dm delay devices.
pub const DM_SUFFIX: &str = "-slow";
/// The dm device name of lane `index` of `run_id`.
pub fn dm_name(run_id: &str, index: u8) -> String {
    format!("{DM_PREFIX}{run_id}-{index}{DM_SUFFIX}")
}

/// Suffix of our dm-multipath maps.
pub const MP_SUFFIX: &str = "-mp";
/// The dm-multipath map name of lane `index` of `run_id`.
pub fn mp_name(run_id: &str, index: u8) -> String {
    format!("{DM_PREFIX}{run_id}-{index}{MP_SUFFIX}")
}

/// The open-iscsi iface record of host `host` (1 or more) of lane
/// `index`: `iscsi-chaos-<tag>-<lane>-h<host>` (the run's tag: iface
/// names are short).
pub fn iface_name(run_id: &str, index: u8, host: u8) -> String {
    format!("{NETNS_PREFIX}{}-{index}-h{host}", run_tag(run_id))
}

/// Whether `name` has the shape of [`iface_name`].
pub fn is_our_iface_name(name: &str) -> bool {
    name.strip_prefix(NETNS_PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(tag, rest)| Some((tag, rest.split_once("-h")?)))
        .is_some_and(|(tag, (lane, host))| {
            tag.len() == 6
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && lane.parse::<u8>().is_ok()
                && host.parse::<u8>().is_ok_and(|h| h > 0)
        })
}

/// The initiator name of host `host` (1 or more) of lane `index` (host 0
/// is this machine's own initiator name).
pub fn host_initiator_iqn(run_id: &str, index: u8, host: u8) -> String {
    format!("{IQN_PREFIX}{run_id}-{index}.host{host}")
}

/// The run id in the `<run>-<lane>` that ends our names after their
/// prefix (an IQN after [`IQN_PREFIX`], a target namespace after
/// [`NETNS_PREFIX`], a LIO device, a dm name without its suffix). The one
/// place a run id is read back out of a name.
pub fn run_of(tail: &str) -> Option<&str> {
    tail.rsplit_once('-')
        .filter(|(run, lane)| !run.is_empty() && lane.parse::<u8>().is_ok())
        .map(|(run, _)| run)
}

/// The run id in one of our IQNs (`<IQN_PREFIX><run>-<lane>`).
pub fn run_of_iqn(iqn: &str) -> Option<&str> {
    iqn.strip_prefix(IQN_PREFIX).and_then(run_of)
}

/// The run id in one of our lane namespaces: a target's
/// (`iscsi-chaos-<run>-<lane>`) or a switch's (`…-sw<lane>`,
/// `…-sw<lane>p<path>`), exactly as [`is_netns_of_run`] takes them.
pub fn run_of_netns(name: &str) -> Option<&str> {
    let (run, _) = name.strip_prefix(NETNS_PREFIX)?.rsplit_once('-')?;
    is_netns_of_run(name, run).then_some(run)
}

/// The run id in one of our dm names (`iscsi-chaos-<run>-<lane>-slow`, or
/// `-mp` for a multipath map).
pub fn run_of_dm(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(DM_PREFIX)?;
    rest.strip_suffix(DM_SUFFIX)
        .or_else(|| rest.strip_suffix(MP_SUFFIX))
        .and_then(run_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iface_names_are_ours_and_short() {
        let name = iface_name("2026-12-07-abcdef-long-run-id", 7, 1);
        assert!(is_our_iface_name(&name), "{name}");
        assert!(name.len() <= 64);
        for foreign in [
            "default",
            "iser",
            "iscsi-chaos-abc-1-h1",
            "iscsi-chaos-abcdef-1-h0",
            "iscsi-chaos-abcdef-x-h1",
        ] {
            assert!(!is_our_iface_name(foreign), "{foreign}");
        }
    }

    #[test]
    fn names_fit_ifnamsiz() {
        let n = lane_names("20261122-0315-abcdef", 255);
        assert!(n.host_veth.len() <= 15, "{}", n.host_veth);
        assert!(n.target_veth.len() <= 15);
        assert_eq!(n.netns, "iscsi-chaos-20261122-0315-abcdef-255");
        assert!(n.host_veth.starts_with("icX"));
        assert!(n.host_veth.ends_with("i255"));
        assert!(n.target_veth.ends_with("t255"));
        assert!(is_our_veth_name(&n.host_veth));
        assert!(is_our_veth_name(&n.target_veth));
        assert!(is_our_veth_name(&n.initiator_port));
        assert!(is_our_veth_name(&n.target_port));
        assert!(n.bridge.len() <= 15);
        assert!(!is_our_veth_name(&n.bridge), "the bridge is no veth");
        assert_eq!(n.switch_netns, "iscsi-chaos-20261122-0315-abcdef-sw255");
    }

    #[test]
    fn path_names_fit_ifnamsiz_and_are_ours() {
        let n = path_names("20261122-0315-abcdef", 255, 3);
        for veth in [
            &n.host_veth,
            &n.target_veth,
            &n.initiator_port,
            &n.target_port,
        ] {
            assert!(veth.len() <= 15, "{veth}");
            assert!(is_our_veth_name(veth), "{veth}");
        }
        assert!(n.host_veth.ends_with("i255p3"));
        assert!(n.bridge.len() <= 15);
        assert_eq!(n.netns, lane_names("20261122-0315-abcdef", 255).netns);
        assert_eq!(n.switch_netns, "iscsi-chaos-20261122-0315-abcdef-sw255p3");
        assert!(is_netns_of_run(&n.switch_netns, "20261122-0315-abcdef"));
        assert_eq!(path_names("r", 1, 0), lane_names("r", 1));
        for bad in [
            "icXabc123i1p0",
            "icXabc123i1p4",
            "icXabc123i1p",
            "icXabc123i1p1p1",
        ] {
            assert!(!is_our_veth_name(bad), "{bad}");
        }
        assert!(!is_netns_of_run("iscsi-chaos-ab-sw1p", "ab"));
        assert!(!is_netns_of_run("iscsi-chaos-ab-1p1", "ab"));
    }

    #[test]
    fn run_filter_is_exact() {
        assert!(is_netns_of_run("iscsi-chaos-ab-0", "ab"));
        assert!(is_netns_of_run("iscsi-chaos-ab-12", "ab"));
        assert!(!is_netns_of_run("iscsi-chaos-ab-1-0", "ab"));
        assert!(!is_netns_of_run("iscsi-chaos-ab-", "ab"));
        assert!(!is_netns_of_run("other-ab-0", "ab"));
        assert!(is_netns_of_run("iscsi-chaos-ab-sw3", "ab"));
        assert!(!is_netns_of_run("iscsi-chaos-ab-sw", "ab"));
        assert!(!is_netns_of_run("iscsi-chaos-ab-1-sw0", "ab"));
    }

    #[test]
    fn similar_run_ids_get_different_tags() {
        assert_ne!(run_tag("20261122-a"), run_tag("20261122-b"));
        assert_eq!(run_tag("abc"), run_tag("abc"));
        assert_eq!(run_tag("abc").len(), 6);
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for n in [
            "eth0",
            "icX",
            "icXabc",
            "icXabcdefi",
            "icXabcdefx1",
            "icXabcdefi1000",
            "icXabcdefi256",
            "icXABCDEFi1",
            "veth0",
        ] {
            assert!(!is_our_veth_name(n), "{n}");
        }
        assert!(is_our_veth_name("icXabc123t0"));
    }

    #[test]
    fn run_ids_are_checked() {
        assert!(check_run_id("ab-12").is_ok());
        assert!(check_run_id("").is_err());
        assert!(check_run_id("Ab").is_err());
        assert!(check_run_id("a/b").is_err());
        assert!(check_run_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn lane_addresses_share_a_subnet() {
        let (i, t) = lane_addresses(7);
        assert_eq!(i, Ipv4Addr::new(10, 213, 7, 1));
        assert_eq!(t, Ipv4Addr::new(10, 213, 7, 2));
        assert!(in_lane_subnet(i, 7) && in_lane_subnet(t, 7));
        assert!(!in_lane_subnet(t, 8));
    }

    #[test]
    fn dm_names_carry_the_run() {
        let n = dm_name("20261122-0412-abc", 3);
        assert_eq!(n, "iscsi-chaos-20261122-0412-abc-3-slow");
        assert_eq!(run_of_dm(&n), Some("20261122-0412-abc"));
        assert_eq!(run_of_dm("iscsi-chaos-x-slow"), None);
        assert_eq!(run_of_dm("vg0-root"), None);
        assert_eq!(run_of_dm("iscsi-chaos-r-1"), None);
        let m = mp_name("20261122-0412-abc", 0);
        assert_eq!(m, "iscsi-chaos-20261122-0412-abc-0-mp");
        assert_eq!(run_of_dm(&m), Some("20261122-0412-abc"));
    }

    #[test]
    fn run_ids_come_out_of_every_name_with_a_lane_suffix() {
        assert_eq!(run_of("r1a2b-0"), Some("r1a2b"));
        assert_eq!(run_of("r-x-12"), Some("r-x"));
        assert_eq!(run_of("nolane"), None);
        assert_eq!(run_of("run-x"), None);
        assert_eq!(run_of("-0"), None);
        assert_eq!(run_of_iqn(&format!("{IQN_PREFIX}abc-9-200")), Some("abc-9"));
        assert_eq!(run_of_iqn("iqn.2003-01.org.other:abc-9-200"), None);
        let n = path_names("20261122-0412-abc", 3, 2);
        for ns in [
            lane_names("20261122-0412-abc", 3).netns,
            n.netns,
            n.switch_netns,
        ] {
            assert_eq!(run_of_netns(&ns), Some("20261122-0412-abc"), "{ns}");
        }
        assert_eq!(run_of_netns("iscsi-chaos-r-x"), None);
        assert_eq!(run_of_netns("other-r-0"), None);
    }
}
