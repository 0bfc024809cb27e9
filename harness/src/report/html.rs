//! `report.html`: the suite on one self-contained page. The summary table
//! (a verdict filter above it), the outcome heatmap of a sweep, then one
//! section per run: its verdict and reasons, expected against measured
//! figures, its faults, settings and timings, its timeline picture inline,
//! and links to its history and picture files beside the page.
//!
//! Invariant: the page fetches nothing: styles, script and pictures are
//! inline, and every link is a relative link to a file of the output folder
//! or an anchor of the page. The markup is well-formed XML (scripts in
//! CDATA), so tests read it with an XML parser.
//!
//! The page reports its own health for the browser check
//! (`cargo xtask browser-check`): a script error or a resource that failed
//! to load is appended to the root element's `data-errors`, and the last
//! script sets `data-ready="yes"` once the filter is wired up.

use super::events::{Reporter, RunEvent};
use super::out::OutDir;
use super::svg::escape;
use super::timeline::{self, Timelines};
use super::{heatmap, history_file, outcome, summary_row, Entry, Report, Verdict, SUMMARY_HEADER};

pub const FILE: &str = "report.html";

const VERDICTS: [Verdict; 4] = [
    Verdict::Fail,
    Verdict::Error,
    Verdict::Pass,
    Verdict::Skipped,
];

const STYLE: &str = "
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.5em;margin-bottom:.2em}
h2{font-size:1.15em;margin:0 0 .4em 0;overflow-wrap:anywhere}
#summary td:first-child{max-width:30em;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3}
.v{font-weight:bold;border-radius:3px;padding:0 .4em}
.v-pass{background:#c8e6c9}.v-fail{background:#ef9a9a}.v-error{background:#ffcc80}.v-skipped{background:#e0e0e0}
section.run{border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}
section.run.bad{border-color:#e57373}
ul.reasons li{margin:.2em 0}
ul.warnings{color:#8a5300}
figure{margin:.5em 0;overflow-x:auto}
#filter label{margin-right:1em}
.muted{color:#666}
";

/// The first script: collects what goes wrong on the page.
const CATCH_ERRORS: &str = "
window.addEventListener('error', function (e) {
  var what = e.message || ('cannot load ' + ((e.target || {}).src || (e.target || {}).href || '?'));
  var root = document.documentElement;
  root.dataset.errors = (root.dataset.errors || '') + what + '\\n';
}, true);
";

/// The last script: the verdict filter, then the health marks.
const FILTER: &str = "
(function () {
  var boxes = document.querySelectorAll('#filter input');
  function apply() {
    var shown = {};
    boxes.forEach(function (b) { shown[b.value] = b.checked; });
    document.querySelectorAll('[data-verdict]').forEach(function (el) {
      el.hidden = !shown[el.dataset.verdict];
    });
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  apply();
  var root = document.documentElement;
  performance.getEntriesByType('resource').forEach(function (r) {
    if (r.name.indexOf('file:') !== 0 && r.name.indexOf('data:') !== 0) {
      root.dataset.errors = (root.dataset.errors || '') + 'fetched ' + r.name + '\\n';
    }
  });
  root.dataset.ready = 'yes';
})();
";

/// A file of the output folder as a relative URL.
pub use super::file_href as href;

fn anchor(index: usize) -> String {
    format!("run-{index}")
}

fn verdict_badge(v: Verdict) -> String {
    format!("<span class=\"v v-{0}\">{0}</span>", v.as_str())
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "none".into(), |x| format!("{x:.2} s"))
}

fn window(w: Option<super::Window>) -> String {
    w.map_or_else(|| "-".into(), |w| format!("{:.2}–{:.2} s", w.lo, w.hi))
}

/// The run's NOP-Out interval, NOP-Out timeout and replacement_timeout,
/// as `I/N/R` ("?" where the report does not say).
fn timers(e: &Entry) -> String {
    [
        crate::model::settings::KEY_NOOP_OUT_INTERVAL,
        crate::model::settings::KEY_NOOP_OUT_TIMEOUT,
        crate::model::settings::KEY_REPLACEMENT_TIMEOUT,
    ]
    .iter()
    .map(|k| e.settings.get(*k).map_or("?", String::as_str))
    .collect::<Vec<_>>()
    .join("/")
}

fn summary_table(report: &Report) -> String {
    let mut h = String::from("<table id=\"summary\"><thead><tr>");
    for c in SUMMARY_HEADER {
        h.push_str(&format!("<th>{}</th>", escape(c)));
    }
    h.push_str(
        "<th title=\"noop_out_interval / noop_out_timeout / replacement_timeout, seconds\">I/N/R</th>",
    );
    h.push_str("</tr></thead><tbody>\n");
    for (i, e) in report.scenarios.iter().enumerate() {
        let cells = summary_row(e);
        h.push_str(&format!(
            "<tr data-verdict=\"{}\"><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td>",
            e.verdict.as_str(),
            anchor(i),
            escape(&cells[0]),
            escape(&cells[1]),
            verdict_badge(e.verdict)
        ));
        for c in &cells[3..] {
            h.push_str(&format!("<td class=\"n\">{}</td>", escape(c)));
        }
        h.push_str(&format!("<td class=\"n\">{}</td>", escape(&timers(e))));
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
    h
}

fn figures(e: &Entry) -> String {
    let x = &e.expected;
    let m = &e.measured;
    let expected_error = match x.first_error_s {
        Some(t) => format!("{t:.2} ± {:.2} s", x.tolerance_s),
        None => "none".into(),
    };
    let rows = [
        ("first I/O error", expected_error, opt(m.first_error_s)),
        ("detection", window(x.detection_s), opt(m.detection_s)),
        (
            "longest stall",
            window(x.max_stall_s),
            format!("{:.2} s", m.max_stall_s),
        ),
        ("recovered", window(x.recovery_s), opt(m.recovered_s)),
        ("I/O errors", "-".into(), m.errors.to_string()),
        (
            "acked writes lost / corrupt",
            "0 / 0".into(),
            format!(
                "{} / {} of {}",
                m.lost_writes, m.corrupt_writes, m.acked_writes
            ),
        ),
        ("operations", "-".into(), m.ops.to_string()),
    ];
    let mut h = String::from(
        "<table class=\"figures\"><tr><th></th><th>expected</th><th>measured</th></tr>",
    );
    for (what, exp, got) in rows {
        h.push_str(&format!(
            "<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(what),
            escape(&exp),
            escape(&got)
        ));
    }
    h.push_str("</table>\n");
    if !m.wire.is_empty() {
        h.push_str("<p class=\"muted\">On the wire while each fault was in place: ");
        let lines: Vec<String> = m
            .wire
            .iter()
            .map(|w| {
                format!(
                    "fault[{}]: {} SCSI commands ({} dropped by the nemesis), {} statuses ({} not GOOD), {} frames of data sent again, {} RSTs",
                    w.step,
                    w.commands,
                    w.commands_dropped,
                    w.statuses,
                    w.bad_statuses,
                    w.retransmissions,
                    w.resets
                )
            })
            .collect();
        h.push_str(&escape(&lines.join("; ")));
        h.push_str("</p>\n");
    }
    let mut notes: Vec<String> = x.notes.clone();
    if x.borderline {
        notes.push("borderline: the oracle calls this a race".into());
    }
    if x.imprecise {
        notes.push("imprecise: the model's figures are wider here".into());
    }
    if !notes.is_empty() {
        h.push_str("<p class=\"muted\">");
        h.push_str(&escape(&notes.join("; ")));
        h.push_str("</p>\n");
    }
    h
}

fn run_section(out: &OutDir, index: usize, e: &Entry) -> String {
    let bad = matches!(e.verdict, Verdict::Fail | Verdict::Error);
    let mut h = format!(
        "<section class=\"run{}\" id=\"{}\" data-verdict=\"{}\">\n<h2>{} {}</h2>\n",
        if bad { " bad" } else { "" },
        anchor(index),
        e.verdict.as_str(),
        escape(&e.id),
        verdict_badge(e.verdict)
    );
    if !e.reasons.is_empty() {
        h.push_str("<ul class=\"reasons\">");
        for r in &e.reasons {
            h.push_str(&format!("<li>{}</li>", escape(r)));
        }
        h.push_str("</ul>\n");
    }
    if !e.measured.settings_warnings.is_empty() {
        h.push_str("<ul class=\"warnings\">");
        for w in &e.measured.settings_warnings {
            h.push_str(&format!("<li>warning: {}</li>", escape(w)));
        }
        h.push_str("</ul>\n");
    }
    if !e.faults.is_empty() {
        h.push_str("<p>Faults: ");
        let faults: Vec<String> = e
            .faults
            .iter()
            .map(|f| {
                format!(
                    "<code>{}</code> at {:.1} s for {:.1} s",
                    escape(&f.label),
                    f.start_s,
                    f.duration_s
                )
            })
            .collect();
        h.push_str(&faults.join("; "));
        h.push_str("</p>\n");
    }
    h.push_str(&figures(e));
    let picture = Timelines { out: out.clone() }.draw(e);
    match &picture {
        Some(Ok(svg)) => {
            h.push_str("<figure>\n");
            h.push_str(svg);
            h.push_str("</figure>\n");
        }
        Some(Err(why)) => h.push_str(&format!(
            "<p class=\"muted\">no timeline: {}</p>\n",
            escape(why)
        )),
        None => h.push_str("<p class=\"muted\">no timeline: the run left no history</p>\n"),
    }
    let mut links = Vec::new();
    if picture.is_some() {
        let history = history_file(&e.id);
        links.push(format!("<a href=\"{}\">history</a>", href(&history)));
    }
    if matches!(picture, Some(Ok(_))) {
        links.push(format!(
            "<a href=\"{}\">timeline.svg</a>",
            href(&timeline::file(&e.id))
        ));
    }
    if !links.is_empty() {
        h.push_str(&format!("<p>{}</p>\n", links.join(" · ")));
    }
    h.push_str("<details><summary>settings (asked and the kernel's) and timings</summary><table>");
    for (k, v) in &e.settings {
        h.push_str(&format!(
            "<tr><th><code>{}</code></th><td>{}</td></tr>",
            escape(k),
            escape(v)
        ));
    }
    for (k, v) in &e.measured.effective {
        h.push_str(&format!(
            "<tr><th>kernel <code>{}</code></th><td>{}</td></tr>",
            escape(k),
            escape(v)
        ));
    }
    for (k, v) in &e.point {
        h.push_str(&format!(
            "<tr><th>sweep <code>{}</code></th><td>{}</td></tr>",
            escape(k),
            escape(v)
        ));
    }
    let t = &e.timings;
    for (k, v) in [
        ("setup", t.setup_s),
        ("timeline", t.timeline_s),
        ("teardown", t.teardown_s),
        ("fault apply latency, max", t.fault_apply_latency_max_s),
    ] {
        h.push_str(&format!(
            "<tr><th>{k}</th><td class=\"n\">{}</td></tr>",
            opt(v)
        ));
    }
    h.push_str("</table></details>\n</section>\n");
    h
}

/// The page for `report`, with the pictures drawn from the histories in
/// `out`.
pub fn page(report: &Report, out: &OutDir) -> String {
    let count = |v: Verdict| report.scenarios.iter().filter(|e| e.verdict == v).count();
    let shard = report
        .shard
        .as_ref()
        .map_or(String::new(), |s| format!(" (shard {})", escape(s)));
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width\"/>\n\
         <title>iscsi-chaos: {n} runs{shard}</title>\n\
         <script>//<![CDATA[{CATCH_ERRORS}//]]></script>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>iscsi-chaos: {n} runs{shard}</h1>\n",
        n = report.scenarios.len(),
    );
    h.push_str("<p id=\"filter\">Show: ");
    for v in VERDICTS {
        h.push_str(&format!(
            "<label><input type=\"checkbox\" value=\"{0}\" checked=\"checked\"/> {1} {0}</label>",
            v.as_str(),
            count(v)
        ));
    }
    h.push_str("</p>\n");
    h.push_str(&summary_table(report));
    if let Some(o) = outcome::outcome(report) {
        h.push_str(&format!(
            "<h2>Outcome map</h2>\n<p class=\"muted\">Rows: <code>{}</code>{}. \
             Also as <a href=\"{}\">outcome.md</a>.</p>\n<figure>\n{}</figure>\n",
            escape(&o.row_axis),
            o.column_axis.as_ref().map_or(String::new(), |c| format!(
                "; columns: <code>{}</code>",
                escape(c)
            )),
            href(outcome::MD_FILE),
            heatmap::render(&o)
        ));
    }
    for (i, e) in report.scenarios.iter().enumerate() {
        h.push_str(&run_section(out, i, e));
    }
    h.push_str(&format!(
        "<p class=\"muted\">report.json schema {} · <a href=\"{}\">report.json</a></p>\n\
         <script>//<![CDATA[{FILTER}//]]></script>\n</body>\n</html>\n",
        report.schema,
        href(super::json::FILE)
    ));
    h
}

/// Writes `report.html` when the suite ends.
pub struct Html {
    pub out: OutDir,
}

impl Reporter for Html {
    fn event(&mut self, event: &RunEvent<'_>) {
        let RunEvent::SuiteFinished { report } = event else {
            return;
        };
        self.out
            .write_or_say(FILE, page(report, &self.out).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EntryExt, Timings};

    #[test]
    fn file_names_become_relative_urls_without_a_scheme() {
        assert_eq!(
            href("s[fault0.duration_s=4,rt=5]@tgt.history.jsonl"),
            "s%5Bfault0.duration_s%3D4%2Crt%3D5%5D%40tgt.history.jsonl"
        );
        assert_eq!(href("a:b"), "a%3Ab");
        assert_eq!(href("é"), "%C3%A9");
    }

    #[test]
    fn the_page_is_well_formed_lists_every_run_and_fetches_nothing() {
        let plan = crate::plan::minimal("p<&>", &["tgt", "lio"]);
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(dir.path()).unwrap();
        let mut report = Report::default();
        for (p, v) in plan.iter().zip([Verdict::Fail, Verdict::Skipped]) {
            report.push(Entry::unchecked(
                &p.run,
                &p.prediction,
                v,
                "reason with <markup> & \"quotes\"",
                Timings::default(),
            ));
        }
        let html = page(&report, &out);
        let doc = roxmltree::Document::parse_with_options(
            &html,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .expect("well-formed");
        let rows: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("tr") && n.attribute("data-verdict").is_some())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].attribute("data-verdict"), Some("fail"));
        // The timers the run used, as I/N/R (open-iscsi's defaults here).
        let last_cell = rows[0]
            .children()
            .rev()
            .find(|n| n.has_tag_name("td"))
            .and_then(|n| n.text());
        assert_eq!(last_cell, Some("5/5/120"));
        let sections = doc
            .descendants()
            .filter(|n| n.has_tag_name("section"))
            .count();
        assert_eq!(sections, 2);
        assert!(html.contains("reason with &lt;markup&gt; &amp; &quot;quotes&quot;"));
        // Every link stays on the page or in the folder.
        for n in doc.descendants() {
            for a in ["href", "src"] {
                if let Some(v) = n.attribute(a) {
                    assert!(!v.contains("//") && !v.contains(':'), "{a}={v}");
                }
            }
        }
        assert!(doc
            .descendants()
            .all(|n| !n.has_tag_name("link") && !n.has_tag_name("img")));
        // The filter has one box per verdict, with its count.
        assert!(
            html.contains("checked=\"checked\"/> 1 fail</label>"),
            "{html}"
        );
    }

    #[test]
    fn a_run_with_a_history_gets_its_timeline_inline_and_linked() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/histories/slow-store@lio.history.jsonl"
        ))
        .unwrap();
        let plan = crate::plan::minimal("slow-store", &["tgt", "lio"]);
        let lio = &plan[1];
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(dir.path()).unwrap();
        out.write(&history_file(&lio.id), text.as_bytes()).unwrap();
        let mut report = Report::default();
        report.push(Entry::unchecked(
            &lio.run,
            &lio.prediction,
            Verdict::Pass,
            "ok",
            Timings::default(),
        ));
        let html = page(&report, &out);
        let section = &html[html.find("<section").unwrap()..];
        assert!(section.contains("<figure>\n<svg xmlns"), "{section}");
        assert!(section.contains("href=\"slow-store%40lio.history.jsonl\""));
        assert!(section.contains("href=\"slow-store%40lio.timeline.svg\""));
    }
}
