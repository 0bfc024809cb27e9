//! Firewall faults, with nftables, in the lane's namespace (the target's
//! side of the link):
//! - reset: every packet to the portal is answered with a TCP RST (`reject
//!   with tcp reset` on the input hook), so the initiator's live connection
//!   is reset at once and its reconnects are refused while the rule is in
//!   place;
//! - oversize drop: packets longer than a hop's MTU are dropped silently both
//!   ways (input and output hooks), as a switch port with a smaller MTU
//!   would; the hosts keep their (jumbo) link MTU, so TCP keeps sending
//!   large segments, also on new connections.
//!
//! A fault installs one table, [`TABLE`]; its rules count what they matched:
//! the proof that the fault touched packets.
//!
//! Invariant: we only ever add and delete our own table, and only in a
//! lane's namespace (which holds nothing else of anyone's); the namespace's
//! removal takes the table with it, so a killed run leaves no rule behind.
//! nft is driven through its text and JSON interfaces (`nft -f -`,
//! `nft -j list`), run in a child switched into the namespace.

use std::io::Write;
use std::net::SocketAddrV4;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::ledger::{Ledger, Object};
use crate::netns::NetNs;

/// Our table's family and name in the lane's namespace.
pub const TABLE: &str = "inet iscsi_chaos";

/// What a firewall fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Answer every packet to the portal with a TCP RST.
    Reset,
    /// Drop packets longer than this many bytes (IP length), both ways.
    DropOversize { mtu: u32 },
}

impl Rule {
    /// The name used in history entries.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Reset => "reset",
            Rule::DropOversize { .. } => "drop_oversize",
        }
    }
}

/// The nft script that puts `rule` in place for the target at `portal`.
/// (`reset` is an nft keyword: the chains are named after the hooks.)
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
            "input",
            &format!(
                "ip daddr {} tcp dport {} counter reject with tcp reset",
                portal.ip(),
                portal.port()
            ),
        ),
        Rule::DropOversize { mtu } => {
            let statement = format!("meta length > {mtu} counter drop");
            chain("input", &statement) + &chain("output", &statement)
        }
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

/// Runs `nft ARGS` (the script `stdin` on its standard input) in `ns`.
fn nft_in(ns: &NetNs, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut cmd = Command::new("nft");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ns.enter_on_exec(&mut cmd);
    let mut child = cmd
        .spawn()
        .context("running nft (install nftables for reset faults)")?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().context("nft's stdin")?;
        pipe.write_all(text.as_bytes())
            .context("writing nft's script")?;
    }
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        bail!(
            "nft {} in {}: {}: {}",
            args.join(" "),
            ns.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn table_words() -> (&'static str, &'static str) {
    TABLE.split_once(' ').unwrap_or(("inet", TABLE))
}

/// Whether our table exists in namespace `netns` (for the ledger).
pub fn table_exists(netns: &str) -> bool {
    let (family, name) = table_words();
    NetNs::open(netns).is_ok_and(|ns| nft_in(&ns, &["list", "table", family, name], None).is_ok())
}

/// Deletes our table in namespace `netns` (for the ledger).
pub fn delete_table(netns: &str) -> Result<()> {
    let (family, name) = table_words();
    nft_in(
        &NetNs::open(netns)?,
        &["delete", "table", family, name],
        None,
    )
    .map(drop)
}

/// The firewall fault of one lane: in place or not.
pub struct Firewall {
    ns: NetNs,
    portal: SocketAddrV4,
    installed: Option<Rule>,
    ledger: Ledger,
    /// Whether our table is written down in the ledger yet.
    recorded: bool,
}

impl Firewall {
    pub fn new(ns: NetNs, portal: SocketAddrV4, ledger: Ledger) -> Firewall {
        Firewall {
            ns,
            portal,
            installed: None,
            ledger,
            recorded: false,
        }
    }

    fn nft(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        nft_in(&self.ns, args, stdin)
    }

    /// Puts `rule` in place and removes it again before any session exists:
    /// the kernel loads nf_tables' modules on a rule's first use, which
    /// takes seconds under emulation and would delay the fault itself.
    pub fn warm_up(&mut self, rule: Rule) -> Result<()> {
        self.install(rule)?;
        self.remove()
    }

    /// Puts `rule` in place (one at a time: faults do not overlap).
    pub fn install(&mut self, rule: Rule) -> Result<()> {
        if let Some(other) = self.installed {
            bail!("the {} rule is still in place", other.name());
        }
        if !self.recorded {
            self.ledger.record(Object::FirewallTable {
                netns: self.ns.name().to_string(),
            })?;
            self.recorded = true;
        }
        self.nft(&["-f", "-"], Some(&ruleset(rule, self.portal)))?;
        self.installed = Some(rule);
        Ok(())
    }

    /// Packets the rule in place has matched so far.
    pub fn matched(&self) -> Result<u64> {
        let (family, name) = table_words();
        counted_packets(&self.nft(&["-j", "list", "table", family, name], None)?)
    }

    pub fn installed(&self) -> Option<Rule> {
        self.installed
    }

    /// Removes the rule in place: deletes our table. Idempotent.
    pub fn remove(&mut self) -> Result<()> {
        if self.installed.is_none() {
            return Ok(());
        }
        let (family, name) = table_words();
        self.nft(&["delete", "table", family, name], None)?;
        self.installed = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_rejects_only_the_portal_with_a_reset() {
        let text = ruleset(Rule::Reset, "10.213.3.2:3260".parse().unwrap());
        assert!(text.starts_with("table inet iscsi_chaos {"));
        assert!(text.contains("ip daddr 10.213.3.2 tcp dport 3260 counter reject with tcp reset"));
        assert!(text.contains("hook input"));
        assert!(!text.contains("hook output"));
        // Never a flush, never another table.
        assert!(!text.contains("flush"));
        assert_eq!(text.matches("table ").count(), 1);
    }

    #[test]
    fn oversize_drop_is_both_ways() {
        let text = ruleset(
            Rule::DropOversize { mtu: 1500 },
            "10.213.3.2:3260".parse().unwrap(),
        );
        assert_eq!(text.matches("meta length > 1500 counter drop").count(), 2);
        assert!(text.contains("hook input") && text.contains("hook output"));
        assert!(!text.contains("chain reset"), "`reset` is an nft keyword");
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
