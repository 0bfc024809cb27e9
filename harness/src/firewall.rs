//! Firewall faults: TCP resets from the target's end, with nftables.
//!
//! A reset fault installs one table, [`TABLE`], inside the lane's own
//! namespace: every packet to the portal is answered with a TCP RST
//! (`reject with tcp reset` on the input hook), so the initiator's live
//! connection is reset at once and its reconnects are refused until the
//! table is deleted. The rule counts what it rejected: the proof that the
//! fault touched packets.
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

use crate::netns::NetNs;

/// Our table's family and name in the lane's namespace.
pub const TABLE: &str = "inet iscsi_chaos";

/// The nft script that makes the target's end reset every connection to
/// `portal` (and refuse new ones).
pub fn reset_ruleset(portal: SocketAddrV4) -> String {
    format!(
        "table {TABLE} {{\n\
         \tchain reset {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n\
         \t\tip daddr {} tcp dport {} counter reject with tcp reset\n\
         \t}}\n\
         }}\n",
        portal.ip(),
        portal.port()
    )
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

/// The reset rule of one lane: in place or not.
pub struct Firewall {
    ns: NetNs,
    portal: SocketAddrV4,
    installed: bool,
}

impl Firewall {
    pub fn new(ns: NetNs, portal: SocketAddrV4) -> Firewall {
        Firewall {
            ns,
            portal,
            installed: false,
        }
    }

    fn nft(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut cmd = Command::new("nft");
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.ns.enter_on_exec(&mut cmd);
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
                self.ns.name(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts resetting connections to the portal.
    pub fn reset_on(&mut self) -> Result<()> {
        if self.installed {
            return Ok(());
        }
        self.nft(&["-f", "-"], Some(&reset_ruleset(self.portal)))?;
        self.installed = true;
        Ok(())
    }

    /// Packets the reset rule has answered with RST so far.
    pub fn resets(&self) -> Result<u64> {
        let (family, name) = TABLE.split_once(' ').unwrap_or(("inet", TABLE));
        counted_packets(&self.nft(&["-j", "list", "table", family, name], None)?)
    }

    /// Stops resetting: deletes our table. Idempotent.
    pub fn reset_off(&mut self) -> Result<()> {
        if !self.installed {
            return Ok(());
        }
        let (family, name) = TABLE.split_once(' ').unwrap_or(("inet", TABLE));
        self.nft(&["delete", "table", family, name], None)?;
        self.installed = false;
        Ok(())
    }

    pub fn is_on(&self) -> bool {
        self.installed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_rejects_only_the_portal_with_a_reset() {
        let text = reset_ruleset("10.213.3.2:3260".parse().unwrap());
        assert!(text.starts_with("table inet iscsi_chaos {"));
        assert!(text.contains("ip daddr 10.213.3.2 tcp dport 3260 counter reject with tcp reset"));
        assert!(text.contains("hook input"));
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
