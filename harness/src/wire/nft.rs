//! nftables text and JSON for firewall faults: the ruleset a fault puts in
//! place ([`ruleset`]) and the packet count read back ([`counted_packets`]).
//! Pure: [`crate::sys::nft`] runs nft.

use std::net::SocketAddrV4;

use anyhow::{Context, Result};

/// Our table's family and name in the lane's switch namespace: a bridge
/// table, which sees the frames the switch forwards.
pub const TABLE: &str = "bridge iscsi_chaos";

/// What a firewall fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Answer every packet to the portal with a TCP RST.
    Reset,
}

impl Rule {
    /// The name used in history entries.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Reset => "reset",
        }
    }
}

/// The nft script that puts `rule` in place for the target at `portal`, in
/// the switch. (`reset` is an nft keyword: the chains are named after the
/// hooks.) A bridge's `reject` is allowed on prerouting: the switch answers
/// a frame to the portal with a RST from the portal's address, sent back
/// out of the port the frame came in on, and drops the frame; the target
/// sees nothing, as when its own input hook rejected it.
pub fn ruleset(rule: Rule, portal: SocketAddrV4) -> String {
    let chain = |hook: &str, statement: &str| {
        format!(
            "\tchain {hook}_hook {{\n\
             \t\ttype filter hook {hook} priority filter; policy accept;\n\
             \t\t{statement}\n\
             \t}}\n"
        )
    };
    let chains = match rule {
        Rule::Reset => chain(
            "prerouting",
            &format!(
                "ip daddr {} tcp dport {} counter reject with tcp reset",
                portal.ip(),
                portal.port()
            ),
        ),
    };
    format!("table {TABLE} {{\n{chains}}}\n")
}

/// Sum of the packet counters of every rule in `nft -j list table` output.
pub fn counted_packets(json: &str) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(json).context("parsing nft's JSON")?;
    let items = v
        .get("nftables")
        .and_then(|n| n.as_array())
        .context("nft's JSON has no `nftables` list")?;
    let mut total = 0;
    for item in items {
        let Some(exprs) = item.pointer("/rule/expr").and_then(|e| e.as_array()) else {
            continue;
        };
        for e in exprs {
            if let Some(p) = e.pointer("/counter/packets").and_then(|p| p.as_u64()) {
                total += p;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_rejects_only_the_portal_with_a_reset() {
        let text = ruleset(Rule::Reset, "10.213.3.2:3260".parse().unwrap());
        assert!(text.starts_with("table bridge iscsi_chaos {"));
        assert!(text.contains("ip daddr 10.213.3.2 tcp dport 3260 counter reject with tcp reset"));
        assert!(text.contains("hook prerouting"));
        assert!(!text.contains("hook input") && !text.contains("hook output"));
        // Never a flush, never another table.
        assert!(!text.contains("flush"));
        assert_eq!(text.matches("table ").count(), 1);
    }

    #[test]
    fn counters_are_summed_over_rules() {
        // The shape of `nft -j list table inet iscsi_chaos` (nftables 1.0.6).
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
          {"table": {"family": "inet", "name": "iscsi_chaos", "handle": 1}},
          {"chain": {"family": "inet", "table": "iscsi_chaos", "name": "reset", "handle": 1,
             "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
          {"rule": {"family": "inet", "table": "iscsi_chaos", "chain": "reset", "handle": 2,
             "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 3260}},
                      {"counter": {"packets": 7, "bytes": 420}},
                      {"reject": {"type": "tcp reset"}}]}},
          {"rule": {"family": "inet", "table": "iscsi_chaos", "chain": "reset", "handle": 3,
             "expr": [{"counter": {"packets": 2, "bytes": 80}}]}}]}"#;
        assert_eq!(counted_packets(json).unwrap(), 9);
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(counted_packets("not json").is_err());
        assert!(counted_packets("{}").is_err());
    }
}
