//! `cargo xtask browser-check`: opens a `report.html` in headless Chromium
//! (Debian's `chromium`) and fails when the page is broken:
//! - a console message (the page logs nothing when all is well, and
//!   Chromium writes script errors to the console);
//! - the page's own health marks (see the harness's `report/html.rs`):
//!   `data-errors` set (a script error or a resource that did not load),
//!   or `data-ready` missing (its last script never ran);
//! - a link or source that leaves the output folder (`http:`, `//host`),
//!   or names a file that is not there.
//!
//! Then it takes a screenshot of the page (`report.png` beside it), for a
//! person to look at.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args)]
pub struct BrowserArgs {
    /// The report.html, or the output folder that holds it.
    #[arg(default_value = "target/chaos-out")]
    pub report: PathBuf,
    /// Where the screenshot goes (default: report.png beside the page).
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
}

const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

fn browser() -> Result<String> {
    for b in BROWSERS {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return Ok(b.to_string());
        }
    }
    bail!("no headless browser found (tried {BROWSERS:?}); install one: apt-get install --no-install-recommends chromium")
}

/// Runs the browser on `url` with `extra` flags, killing it after a minute;
/// returns (stdout, stderr).
fn chromium(bin: &str, profile: &Path, url: &str, extra: &[String]) -> Result<(String, String)> {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            // Nothing resolves: a fetch from the network fails on the page.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    // Read both pipes while it runs: a page's DOM is larger than a pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    while child.try_wait()?.is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{bin} did not finish with {url} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    ))
}

/// The values of `attr="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&needle) {
        rest = &rest[i + needle.len()..];
        if let Some(end) = rest.find('"') {
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

/// What is wrong with the links of the page in `dir`: one line each.
pub fn link_problems(html: &str, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for attr in ["href", "src"] {
        for v in attribute_values(html, attr) {
            if let Some(id) = v.strip_prefix('#') {
                if !html.contains(&format!(" id=\"{id}\"")) {
                    problems.push(format!("{attr}=\"{v}\": no element has that id"));
                }
                continue;
            }
            if v.contains("//") || v.contains(':') {
                problems.push(format!("{attr}=\"{v}\" leaves the output folder"));
                continue;
            }
            let file = iscsi_chaos_formats::report::file_of_href(v);
            if !dir.join(&file).is_file() {
                problems.push(format!(
                    "{attr}=\"{v}\": {file} is not in {}",
                    dir.display()
                ));
            }
        }
    }
    problems
}

/// What the browser said is wrong: console lines, the page's health marks.
pub fn browser_problems(dom: &str, stderr: &str) -> Vec<String> {
    let mut problems: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(|l| format!("console: {}", l.trim()))
        .collect();
    if let Some(v) = attribute_values(dom, "data-errors").first() {
        problems.push(format!("the page reported errors: {}", v.trim()));
    }
    if !dom.contains(" data-ready=\"yes\"") {
        problems.push("the page's last script did not run (no data-ready)".into());
    }
    problems
}

pub fn check(args: &BrowserArgs) -> Result<i32> {
    let page = if args.report.is_dir() {
        args.report.join("report.html")
    } else {
        args.report.clone()
    };
    let page = page
        .canonicalize()
        .with_context(|| format!("{}: no report page here", page.display()))?;
    let dir = page.parent().unwrap_or(Path::new("/")).to_path_buf();
    let html = std::fs::read_to_string(&page).with_context(|| page.display().to_string())?;
    let bin = browser()?;
    let profile = std::env::temp_dir().join(format!("xtask-chromium-{}", std::process::id()));
    let url = format!("file://{}", page.display());
    let result = (|| {
        let (dom, stderr) = chromium(&bin, &profile, &url, &["--dump-dom".into()])?;
        let mut problems = link_problems(&html, &dir);
        problems.extend(browser_problems(&dom, &stderr));
        let shot = args
            .screenshot
            .clone()
            .unwrap_or_else(|| dir.join("report.png"));
        chromium(
            &bin,
            &profile,
            &url,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,2400".into(),
                "--hide-scrollbars".into(),
            ],
        )?;
        Ok::<_, anyhow::Error>((problems, shot))
    })();
    let _ = std::fs::remove_dir_all(&profile);
    let (problems, shot) = result?;
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("xtask: {}: {p}", page.display());
        }
        bail!("{}: {} problem(s) in {bin}", page.display(), problems.len());
    }
    eprintln!(
        "xtask: {} opens in {bin} without errors; screenshot {}",
        page.display(),
        shot.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_must_stay_in_the_folder_and_name_files_that_are_there() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("a@b.history.jsonl"), "").unwrap();
        let html = "<a href=\"a%40b.history.jsonl\">h</a><a href=\"#run-0\">r</a>\
                    <section id=\"run-0\"></section><a href=\"#run-9\">x</a>\
                    <img src=\"https://cdn.example/x.png\"/><a href=\"gone.svg\">g</a>";
        let p = link_problems(html, &dir);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(p[0].contains("#run-9"));
        assert!(p[1].contains("gone.svg"));
        assert!(p[2].contains("leaves the output folder"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn console_lines_and_the_pages_marks_are_problems() {
        let ok = "<html lang=\"en\" data-ready=\"yes\"><body></body></html>";
        assert!(browser_problems(ok, "[1:1:INFO:foo] nothing\n").is_empty());
        let p = browser_problems(
            "<html data-errors=\"cannot load x.png\n\">",
            "[1:1:1204/1:INFO:CONSOLE:1] \"Uncaught ReferenceError\", source: file:///r.html (1)\n",
        );
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(p[0].starts_with("console:"));
        assert!(p[1].contains("cannot load x.png"));
    }

    #[test]
    fn percent_escapes_decode_to_the_file_name() {
        use iscsi_chaos_formats::report::{file_href, file_of_href};
        assert_eq!(file_of_href("s%5Ba%3D1%5D%40tgt"), "s[a=1]@tgt");
        assert_eq!(file_of_href("100%"), "100%");
        // What the page writes, the check reads back.
        let id = "s[fault0.duration_s=4,rt=5]@tgt.history.jsonl";
        assert_eq!(file_of_href(&file_href(id)), id);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "xtask-browser-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
