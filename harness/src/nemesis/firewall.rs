//! Firewall faults, with nftables, in the lane's switch (a bridge table):
//! - reset: every packet to the portal is answered with a TCP RST (`reject
//!   with tcp reset` on the bridge's prerouting hook, sent back from the
//!   portal's address), so the initiator's live connection is reset at once
//!   and its reconnects are refused while the rule is in place; the target
//!   sees none of those packets.
//!
//! The rule used to sit on the input hook of the target's own namespace.
//! Beside other lanes that soft-locked the lab's kernel (`watchdog: BUG:
//! soft lockup ... [tgtd]`, bookworm, TCG), as an MTU fault on the same
//! hooks had once in 22 serial runs before it moved to the switch; so
//! reset runs went alone. In the switch they share the host.
//!
//! A fault installs one table, [`TABLE`]; its rules count what they matched:
//! the proof that the fault touched packets.
//!
//! Invariant: we only ever add and delete our own table, and only in a
//! lane's switch namespace (which holds nothing else of anyone's); the namespace's
//! removal takes the table with it, so a killed run leaves no rule behind.
//! nft is driven through its text and JSON interfaces (`nft -f -`,
//! `nft -j list`), run in a child switched into the namespace.

use std::net::SocketAddrV4;

use anyhow::{bail, Result};

use crate::ledger::{Ledger, Object};
use crate::sys::netns::NetNs;
use crate::sys::nft::{nft_in, table_words};
pub use crate::wire::nft::*;

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
