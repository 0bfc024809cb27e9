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
//! - No two files of a crate import each other, directly or through
//!   others (every crate of the workspace).

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

/// Writes `text` at `rel` below `dir`, making the folders on the way.
fn write_file(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn the_check_catches_a_bad_import() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| write_file(dir.path(), rel, text);
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

// ---------------------------------------------------------------------------
// No import circles between files.
//
// Each file's references to other files of its crate (`use crate::…`,
// `super::…`, `self::…`, `<lib name>::…`, a child module's name, in `use`
// statements and inline paths alike) are resolved to the file that defines
// the module they name: `crate::model::fault::netem::MAX_DELAY_MS` names
// `model/fault/netem.rs`, `crate::model::{Direction, NetemSpec}` names
// `model/mod.rs`. A file may use itself; `mod x;` declarations are not
// references; neither are the crate roots (`lib.rs`, `main.rs`: they
// declare and re-export), nor the edges between a folder's `mod.rs` and
// the files below it (see `facade_and_below`).

use std::collections::{BTreeMap, BTreeSet};

/// Which file each file refers to, as paths relative to `src`.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module path of a file (`model/fault/netem.rs` -> `[model, fault,
/// netem]`, `model/mod.rs` -> `[model]`); crate roots have an empty one.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    match parts.last().map(String::as_str) {
        Some("mod") => {
            parts.pop();
        }
        Some("lib" | "main") if parts.len() == 1 => parts.clear(),
        _ if parts.first().map(String::as_str) == Some("bin") => parts.clear(),
        _ => {}
    }
    parts
}

/// The file of module `path` among `files`, if it is one.
fn file_of(files: &BTreeSet<String>, path: &[String]) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let base = path.join("/");
    [format!("{base}.rs"), format!("{base}/mod.rs")]
        .into_iter()
        .find(|f| files.contains(f))
}

/// Whether one of `a`, `b` is a folder's `mod.rs` and the other a file
/// below that folder: a `mod.rs` holds and re-exports what its children
/// share, so those edges run both ways by design and are not counted.
fn facade_and_below(a: &str, b: &str) -> bool {
    let below = |m: &str, f: &str| {
        m.strip_suffix("mod.rs")
            .is_some_and(|dir| !dir.is_empty() && f.starts_with(dir))
    };
    below(a, b) || below(b, a)
}

/// `a::{b, c::{d as e, self}}` -> `a::b`, `a::c::d`, `a::c`.
fn expand_use(tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap().trim();
        let path = path.strip_suffix("::self").unwrap_or(path);
        if !path.is_empty() {
            out.push(path.replace(' ', ""));
        }
        return;
    };
    let head = tree[..open].trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        expand_use(&format!("{head}{part}"), out);
    }
}

/// Paths (`a::b::c`) written inline in `code`, starting at a word that is
/// `crate`, `super`, the crate's own name or one of `children`.
fn inline_paths(code: &str, roots: &[&str], children: &[String]) -> Vec<String> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let at_start = i == 0 || !(word(bytes[i - 1]) || bytes[i - 1] == ':');
        if !(at_start && word(bytes[i])) {
            i += 1;
            continue;
        }
        let mut j = i;
        loop {
            while j < bytes.len() && word(bytes[j]) {
                j += 1;
            }
            let more = j + 2 < bytes.len() && bytes[j] == ':' && bytes[j + 1] == ':';
            if more && word(bytes[j + 2]) {
                j += 2;
            } else {
                break;
            }
        }
        let path: String = bytes[i..j].iter().collect();
        let first = path.split("::").next().unwrap();
        if path.contains("::") && (roots.contains(&first) || children.iter().any(|c| c == first)) {
            out.push(path);
        }
        i = j.max(i + 1);
    }
    out
}

/// Strips string and char literals and `//` comments from a line, keeping
/// braces that are code.
fn code_only(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '\'' if matches!(chars.clone().nth(1), Some('\'')) => {
                chars.next();
                chars.next();
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// The module graph between the files under `src`; `lib_name` is how other
/// crates (and the binaries) name this crate's library.
fn module_graph(src: &Path, lib_name: &str) -> Graph {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    let files: BTreeSet<String> = paths
        .iter()
        .map(|p| p.strip_prefix(src).unwrap().to_string_lossy().into_owned())
        .collect();
    let mut graph = Graph::new();
    for rel in &files {
        let text = std::fs::read_to_string(src.join(rel)).unwrap();
        let file_module = module_path(rel);
        // Inline modules (`mod tests {`) open a level below the file's.
        let mut inline: Vec<(String, i32)> = Vec::new();
        let mut depth = 0i32;
        let mut statement = String::new();
        let edges = graph.entry(rel.clone()).or_default();
        for raw in text.lines() {
            let line = code_only(raw.trim());
            let mut module = file_module.clone();
            module.extend(inline.iter().map(|(m, _)| m.clone()));
            let children: Vec<String> = files
                .iter()
                .filter_map(|f| {
                    let m = module_path(f);
                    (m.len() == module.len() + 1 && m.starts_with(&module))
                        .then(|| m.last().unwrap().clone())
                })
                .collect();
            let words: Vec<&str> = line.split_whitespace().collect();
            let declares_mod = words
                .iter()
                .position(|w| *w == "mod")
                .is_some_and(|i| words[..i].iter().all(|w| w.starts_with("pub")));
            let mut paths = Vec::new();
            let starts_use = words
                .iter()
                .position(|w| *w == "use")
                .is_some_and(|i| words[..i].iter().all(|w| w.starts_with("pub")));
            if starts_use || !statement.is_empty() {
                statement.push(' ');
                statement.push_str(&line);
                if let Some(end) = statement.find(';') {
                    let body = statement[..end].trim();
                    let body = &body[body.find("use ").unwrap() + 4..];
                    let mut used = Vec::new();
                    expand_use(body, &mut used);
                    paths.extend(used.into_iter().filter(|p| p.contains("::")));
                    statement.clear();
                }
            } else if !declares_mod {
                paths.extend(inline_paths(
                    &line,
                    &["crate", "super", lib_name],
                    &children,
                ));
            }
            for path in paths {
                let mut segs: Vec<&str> = path.split("::").collect();
                let mut base: Vec<String> = match segs[0] {
                    "crate" => Vec::new(),
                    s if s == lib_name => Vec::new(),
                    "self" => module.clone(),
                    "super" => module.clone(),
                    s if children.iter().any(|c| c == s) => {
                        segs.insert(0, "self");
                        module.clone()
                    }
                    _ => continue,
                };
                let mut rest = &segs[1..];
                if segs[0] == "super" {
                    base.pop();
                    while rest.first() == Some(&"super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                }
                let target = (0..=rest.len()).rev().find_map(|k| {
                    let mut m = base.clone();
                    m.extend(rest[..k].iter().map(|s| s.to_string()));
                    file_of(&files, &m)
                });
                if let Some(t) = target.filter(|t| t != rel && !facade_and_below(rel, t)) {
                    edges.insert(t);
                }
            }
            // Keep track of inline modules by their braces.
            if declares_mod && line.ends_with('{') {
                let name = words[words.iter().position(|w| *w == "mod").unwrap() + 1];
                inline.push((name.trim_end_matches('{').to_string(), depth));
            }
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            while inline.last().is_some_and(|(_, d)| depth <= *d) {
                inline.pop();
            }
        }
    }
    graph
}

/// Every cycle of `graph`, each as `a.rs -> b.rs -> a.rs`, starting at its
/// smallest file: for each file on a cycle, the shortest cycle through it.
fn cycles(graph: &Graph) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        // Breadth first from `start` back to it.
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.as_str()]);
        let mut closing = None;
        'search: while let Some(at) = queue.pop_front() {
            for next in graph.get(at).into_iter().flatten() {
                if next == start {
                    closing = Some(at);
                    break 'search;
                }
                if !came_from.contains_key(next.as_str()) {
                    came_from.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        let Some(mut at) = closing else {
            continue;
        };
        let mut cycle = vec![at];
        while at != start {
            at = came_from[at];
            cycle.push(at);
        }
        cycle.reverse();
        let smallest = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap();
        cycle.rotate_left(smallest);
        cycle.push(cycle[0]);
        found.insert(cycle.join(" -> "));
    }
    found
}

/// The workspace's crates: folder and library name.
const CRATES: &[(&str, &str)] = &[
    ("harness", "iscsi_chaos"),
    ("lab", "iscsi_chaos_lab"),
    ("formats", "iscsi_chaos_formats"),
    ("guest-probes", "guest_probes"),
    ("xtask", "xtask"),
];

#[test]
fn no_two_files_import_each_other_even_through_others() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for (dir, lib) in CRATES {
        let cycles = cycles(&module_graph(&root.join(dir).join("src"), lib));
        found.extend(cycles.into_iter().map(|c| format!("{dir}/src: {c}")));
    }
    assert!(
        found.is_empty(),
        "files that import each other (move the shared item to the file it belongs to):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cycle_finder_sees_imports_of_every_shape() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| write_file(dir.path(), rel, text);
    write(
        "lib.rs",
        "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\n",
    );
    // a -> b and a -> c by a `use` group over several lines.
    write(
        "a.rs",
        "pub struct A;\nuse crate::{\n    b::B,\n    c,\n};\n",
    );
    // b -> c/y.rs by an inline path; c/y.rs -> a through `super::super`.
    write("b.rs", "pub struct B;\nfn f() { crate::c::y::g() }\n");
    write(
        "c/y.rs",
        "use super::*;\nuse super::super::a::A;\npub fn g() {}\n",
    );
    // c/mod.rs -> a by the crate's own name; its child is not counted.
    write(
        "c/mod.rs",
        "pub mod y;\nuse mine::a as z;\nfn h() { y::g() }\n",
    );
    // d uses itself only; e names a only in a comment and a string.
    write(
        "d.rs",
        "use self::inner::Z;\nmod inner { pub struct Z; }\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    );
    write(
        "e.rs",
        "// use crate::a;\nconst S: &str = \"crate::a::A\";\n",
    );
    let graph = module_graph(dir.path(), "mine");
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(graph["a.rs"], set(&["b.rs", "c/mod.rs"]), "{graph:#?}");
    assert_eq!(graph["b.rs"], set(&["c/y.rs"]), "{graph:#?}");
    assert_eq!(graph["c/y.rs"], set(&["a.rs"]), "{graph:#?}");
    assert_eq!(graph["c/mod.rs"], set(&["a.rs"]), "{graph:#?}");
    assert!(
        graph["d.rs"].is_empty() && graph["e.rs"].is_empty(),
        "{graph:#?}"
    );
    assert_eq!(
        cycles(&graph),
        set(&["a.rs -> b.rs -> c/y.rs -> a.rs", "a.rs -> c/mod.rs -> a.rs"])
    );
    let two = Graph::from([
        ("p.rs".to_string(), set(&["q.rs"])),
        ("q.rs".to_string(), set(&["p.rs"])),
    ]);
    assert_eq!(cycles(&two), set(&["p.rs -> q.rs -> p.rs"]));
}
