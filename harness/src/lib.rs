//! iscsi-chaos: break the link between a real iSCSI target and the real
//! open-iscsi initiator on a timeline, and measure what the disk's users see.
//!
//! The folders are the layers (see ARCHITECTURE.md). Data flows one way:
//! scenario file -> [`parse`] -> [`model`] -> [`plan`] -> [`runner`] ->
//! [`nemesis`] / probes -> [`history`] -> [`check`] -> [`report`].
//!
//! Pure (no I/O, no root; a tidy test keeps them so): `model`, `parse`,
//! `plan`, `oracle`, `check`, `report`, `wire`, `history`, `template`.
//! Kernel edges: `sys` (thin wrappers of kernel interfaces and tools),
//! `ledger` (what we made; depends on `sys` and `model` only), `env`
//! (lanes, initiator, targets, monitors), `nemesis` (carries out fault
//! steps), `runner` (one run end to end, cleanup, doctor). Beside them:
//! `lab` (`run --lab`: this harness and its inputs into the lab VM). On
//! top: `cli` (the commands; `main.rs` only parses and dispatches).

// Pure.
pub mod check;
pub mod history;
pub mod model;
pub mod oracle;
pub mod parse;
pub mod plan;
pub mod report;
pub mod template;
pub mod wire;

// Kernel edges.
pub mod env;
pub mod ledger;
pub mod nemesis;
pub mod runner;
pub mod sys;

// The lab VM, for hosts that cannot run the stack.
pub mod lab;

// The command line, on top of everything.
pub mod cli;
