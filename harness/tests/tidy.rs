//! Tidy: the folder tree is the architecture, and this keeps it so.
//!
//! - Pure folders (`model`, `parse`, `plan`, `oracle`, `check`, `report`,
//!   `wire`, and `history.rs`) import no kernel-edge folder and none of
//!   tokio, nix, rtnetlink or `std::process`.
//! - `sys` (the bottom of the kernel side) imports no other kernel-edge
//!   folder; `ledger` imports only `sys` on the kernel side.
//! - `cli` is the top: it may import everything, and nothing imports it
//!   but `main.rs`.
//! - ARCHITECTURE.md names every folder of `harness/src` in its code map.

use std::path::{Path, PathBuf};

const PURE: &[&str] = &[
    "model", "parse", "plan", "oracle", "check", "report", "wire", "history", "template",
];
const KERNEL: &[&str] = &["sys", "ledger", "env", "nemesis", "runner"];
const KERNEL_CRATES: &[&str] = &["tokio", "nix", "rtnetlink", "std::process"];
/// The top layer, and the files that may import it.
const TOP: &str = "cli";
const ABOVE_TOP: &[&str] = &["cli", "main"];

/// The top-level module a file under `src` belongs to (`model/fault/x.rs`
/// -> `model`, `history.rs` -> `history`).
fn layer(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Code lines only: comments and doc comments may name anything.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.starts_with("//"))
}

/// Whether `line` refers to module `module` of this crate.
fn uses_module(line: &str, module: &str) -> bool {
    line.contains(&format!("crate::{module}::"))
        || line.contains(&format!("crate::{module};"))
        || line.contains(&format!("crate::{module} "))
        || line.contains(&format!("crate::{{{module}"))
        || line.contains(&format!("iscsi_chaos::{module}::"))
}

/// Whether `line` refers to an external crate (or `std::process`).
fn uses_crate(line: &str, name: &str) -> bool {
    let at_start = |prefix: &str| {
        line.starts_with(&format!("use {prefix}")) || line.starts_with(&format!("pub use {prefix}"))
    };
    at_start(&format!("{name}::"))
        || at_start(&format!("{name};"))
        || line.contains(&format!(" {name}::"))
        || line.contains(&format!("({name}::"))
        || line.contains(&format!("<{name}::"))
        || line.contains(&format!("!{name}::"))
        || line.starts_with(&format!("{name}::"))
}

/// Every import that breaks the layering, as `file:line: what`.
pub fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let layer = layer(src, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        let mut forbidden_modules: Vec<&str> = if PURE.contains(&layer.as_str()) {
            KERNEL.to_vec()
        } else if layer == "sys" {
            vec!["ledger", "env", "nemesis", "runner"]
        } else if layer == "ledger" {
            vec![
                "env", "nemesis", "runner", "parse", "plan", "oracle", "check", "report",
            ]
        } else {
            Vec::new()
        };
        if !ABOVE_TOP.contains(&layer.as_str()) {
            forbidden_modules.push(TOP);
        }
        let pure = PURE.contains(&layer.as_str());
        for (n, line) in code_lines(&text) {
            for m in &forbidden_modules {
                if uses_module(line, m) {
                    found.push(format!("{}:{n}: {layer} uses {m}: {line}", file.display()));
                }
            }
            if pure {
                for c in KERNEL_CRATES {
                    if uses_crate(line, c) {
                        found.push(format!(
                            "{}:{n}: pure {layer} uses {c}: {line}",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn pure_folders_stay_pure_and_the_ledger_depends_on_sys_only() {
    let v = violations(&src());
    assert!(v.is_empty(), "layering broken:\n{}", v.join("\n"));
}

#[test]
fn the_check_catches_a_bad_import() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "oracle/mod.rs",
        "//! uses crate::sys:: in a comment only\nuse crate::model::Run;\n",
    );
    write("check/mod.rs", "use crate::env::lane::Lane;\n");
    write("report/mod.rs", "fn f() { let _ = std::process::id(); }\n");
    write("plan/x.rs", "use tokio::time::sleep;\n");
    write(
        "ledger/mod.rs",
        "use crate::sys::netns::NetNs;\nuse crate::env::lane::Lane;\n",
    );
    write("sys/mod.rs", "use crate::ledger::Ledger;\n");
    write(
        "env/mod.rs",
        "use tokio::process::Command;\nuse crate::ledger::Ledger;\n",
    );
    write("runner/x.rs", "use crate::cli::Cli;\n");
    write("cli/mod.rs", "use crate::runner::host::Host;\n");
    write("main.rs", "use iscsi_chaos::cli::Cli;\n");
    let v = violations(dir.path());
    let files: Vec<&str> = v
        .iter()
        .map(|l| {
            l.split(':')
                .next()
                .unwrap()
                .rsplit('/')
                .take(2)
                .collect::<Vec<_>>()[1]
        })
        .collect();
    assert_eq!(
        files,
        ["check", "ledger", "plan", "report", "runner", "sys"],
        "{v:#?}"
    );
}

#[test]
fn the_code_map_names_every_folder() {
    let map =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md"))
            .unwrap();
    let mut missing = Vec::new();
    for e in std::fs::read_dir(src()).unwrap().flatten() {
        if e.path().is_dir() {
            let name = format!("harness/src/{}/", e.file_name().to_string_lossy());
            if !map.contains(&name) {
                missing.push(name);
            }
        }
    }
    for r in iscsi_chaos::model::fault::KINDS {
        let name = format!("`{}`", r.name);
        if !map.contains(&name) {
            missing.push(format!("fault kind {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not mention: {missing:?}"
    );
}
