//! `outcome.svg`: a sweep's outcome map ([`super::outcome`]) as a heatmap,
//! one grid per table. A cell's colour says what the run measured: green to
//! amber for no I/O error (amber: the longer the stall), pink to red for an
//! I/O error (red: the sooner it came), grey for a run that measured
//! nothing. A cell whose measurement disagrees with the prediction has a
//! thick black frame and a ✗; a borderline cell (the oracle called a race)
//! a dashed frame. Each cell's tooltip is its run id, measured and
//! predicted outcome.

use super::outcome_grid::{Cell, Outcome};
use super::svg::{text_width, Anchor, Svg};

const CELL_W: f64 = 200.0;
const CELL_H: f64 = 46.0;
const MARGIN: f64 = 16.0;
const TITLE_H: f64 = 24.0;
const HEAD_H: f64 = 22.0;
const LEGEND_H: f64 = 60.0;
const LEGEND_W: f64 = 820.0;

type Rgb = (f64, f64, f64);

const NO_STALL: Rgb = (200.0, 230.0, 201.0);
const LONG_STALL: Rgb = (255.0, 213.0, 79.0);
const LATE_ERROR: Rgb = (255.0, 205.0, 210.0);
const SOON_ERROR: Rgb = (229.0, 57.0, 53.0);
const NOTHING: Rgb = (224.0, 224.0, 224.0);

/// The frames of a cell that disagrees with its prediction and of a
/// borderline one: the legend shows the same.
const DISAGREES: &str = "stroke=\"#000\" stroke-width=\"3\"";
const BORDERLINE: &str = "stroke=\"#333\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"";

fn hex((r, g, b): Rgb) -> String {
    let c = |x: f64| x.round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", c(r), c(g), c(b))
}

/// The colour `t` (0..=1) of the way from `a` to `b`.
fn mix(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    (
        a.0 + (b.0 - a.0) * t,
        a.1 + (b.1 - a.1) * t,
        a.2 + (b.2 - a.2) * t,
    )
}

/// The scales' ends: the longest stall and the latest first error of the
/// whole map, so that one colour means one figure in every grid.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scale {
    max_stall_s: f64,
    max_error_s: f64,
}

impl Scale {
    fn of(o: &Outcome) -> Scale {
        let cells = o.tables.iter().flat_map(|t| &t.cells);
        let mut s = Scale {
            max_stall_s: 0.0,
            max_error_s: 0.0,
        };
        for c in cells {
            match c.first_error_s {
                Some(t) => s.max_error_s = s.max_error_s.max(t),
                None => s.max_stall_s = s.max_stall_s.max(c.max_stall_s.unwrap_or(0.0)),
            }
        }
        s
    }

    fn colour(&self, c: &Cell) -> String {
        let frac = |x: f64, max: f64| if max > 0.0 { x / max } else { 0.0 };
        hex(match (c.first_error_s, c.max_stall_s) {
            (Some(t), _) => mix(SOON_ERROR, LATE_ERROR, frac(t, self.max_error_s)),
            (None, Some(st)) => mix(NO_STALL, LONG_STALL, frac(st, self.max_stall_s)),
            (None, None) => NOTHING,
        })
    }
}

/// Cuts `text` to what fits in `width` px at `size`.
fn fit(text: &str, width: f64, size: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_string();
    }
    let keep = ((width / (size * 0.56)) as usize).saturating_sub(1);
    let mut s: String = text.chars().take(keep).collect();
    s.push('…');
    s
}

/// The heatmap of `o`.
pub fn render(o: &Outcome) -> String {
    let scale = Scale::of(o);
    let label_w = o
        .tables
        .iter()
        .flat_map(|t| &t.rows)
        .map(|r| text_width(r, 12.0))
        .fold(text_width(&o.row_axis, 12.0), f64::max)
        + 16.0;
    let columns = o.tables.iter().map(|t| t.columns.len()).max().unwrap_or(1);
    let width = (MARGIN * 2.0 + label_w + CELL_W * columns as f64).max(LEGEND_W);
    let height = MARGIN
        + o.tables
            .iter()
            .map(|t| TITLE_H + HEAD_H + CELL_H * t.rows.len() as f64 + MARGIN)
            .sum::<f64>()
        + LEGEND_H;
    let mut svg = Svg::new(width, height);
    let mut y = MARGIN;
    for t in &o.tables {
        let mut title = format!("{}: {} on {}", t.scenario, o.row_axis, t.target);
        if let Some(c) = &o.column_axis {
            title = format!("{}: {} × {c} on {}", t.scenario, o.row_axis, t.target);
        }
        for (k, v) in &t.fixed {
            title.push_str(&format!(", {k} = {v}"));
        }
        svg.text(
            MARGIN,
            y + 16.0,
            14.0,
            Anchor::Start,
            "font-weight=\"bold\"",
            &title,
        );
        y += TITLE_H;
        let x0 = MARGIN + label_w;
        svg.text(
            x0 - 8.0,
            y + 15.0,
            11.0,
            Anchor::End,
            "fill=\"#555\"",
            &format!("{} ↓", o.row_axis),
        );
        for (i, c) in t.columns.iter().enumerate() {
            svg.text(
                x0 + CELL_W * (i as f64 + 0.5),
                y + 15.0,
                12.0,
                Anchor::Middle,
                "",
                &fit(
                    if o.column_axis.is_some() {
                        c
                    } else {
                        "measured / predicted"
                    },
                    CELL_W - 8.0,
                    12.0,
                ),
            );
        }
        y += HEAD_H;
        for (r_i, r) in t.rows.iter().enumerate() {
            let cy = y + CELL_H * r_i as f64;
            svg.text(x0 - 8.0, cy + CELL_H / 2.0 + 4.0, 12.0, Anchor::End, "", r);
            for (c_i, c) in t.columns.iter().enumerate() {
                let Some(cell) = t.cells.iter().find(|x| &x.row == r && &x.column == c) else {
                    continue;
                };
                let cx = x0 + CELL_W * c_i as f64;
                draw_cell(&mut svg, &scale, cell, cx, cy);
            }
        }
        y += CELL_H * t.rows.len() as f64 + MARGIN;
    }
    legend(&mut svg, &scale, MARGIN, y);
    svg.finish("outcome map")
}

fn draw_cell(svg: &mut Svg, scale: &Scale, cell: &Cell, x: f64, y: f64) {
    let frame = if !cell.agrees {
        DISAGREES
    } else if cell.borderline {
        BORDERLINE
    } else {
        "stroke=\"#fff\" stroke-width=\"1\""
    };
    let tip = format!(
        "{}\nmeasured: {}\npredicted: {}{}",
        cell.id,
        cell.measured,
        cell.predicted,
        if cell.agrees {
            ""
        } else {
            "\ndisagrees with the prediction"
        }
    );
    svg.rect(
        x + 1.5,
        y + 1.5,
        CELL_W - 3.0,
        CELL_H - 3.0,
        &format!("fill=\"{}\" {frame}", scale.colour(cell)),
        Some(&tip),
    );
    let mark = if cell.agrees { "" } else { "✗ " };
    svg.text(
        x + CELL_W / 2.0,
        y + 19.0,
        11.0,
        Anchor::Middle,
        "",
        &fit(&format!("{mark}{}", cell.measured), CELL_W - 10.0, 11.0),
    );
    svg.text(
        x + CELL_W / 2.0,
        y + 35.0,
        9.0,
        Anchor::Middle,
        "fill=\"#444\"",
        &fit(&cell.predicted, CELL_W - 10.0, 9.0),
    );
}

fn legend(svg: &mut Svg, scale: &Scale, x: f64, y: f64) {
    let swatch = |svg: &mut Svg, x: f64, y: f64, c: Rgb, text: &str| {
        svg.rect(
            x,
            y,
            14.0,
            14.0,
            &format!("fill=\"{}\" stroke=\"#999\"", hex(c)),
            None,
        );
        svg.text(x + 20.0, y + 11.0, 11.0, Anchor::Start, "", text);
        x + 20.0 + text_width(text, 11.0) + 18.0
    };
    let mut at = x;
    at = swatch(svg, at, y, NO_STALL, "no error, no stall");
    at = swatch(
        svg,
        at,
        y,
        LONG_STALL,
        &format!("no error, stall {:.1} s", scale.max_stall_s),
    );
    at = swatch(svg, at, y, SOON_ERROR, "I/O error (lighter: later)");
    swatch(svg, at, y, NOTHING, "nothing measured");
    svg.rect(
        x,
        y + 26.0,
        14.0,
        14.0,
        &format!("fill=\"#fff\" {DISAGREES}"),
        None,
    );
    svg.text(
        x + 20.0,
        y + 37.0,
        11.0,
        Anchor::Start,
        "",
        "✗ measured ≠ predicted",
    );
    svg.rect(
        x + 190.0,
        y + 26.0,
        14.0,
        14.0,
        &format!("fill=\"#fff\" {BORDERLINE}"),
        None,
    );
    svg.text(
        x + 210.0,
        y + 37.0,
        11.0,
        Anchor::Start,
        "",
        "borderline (the oracle calls it a race)",
    );
    svg.text(
        x + 470.0,
        y + 37.0,
        11.0,
        Anchor::Start,
        "fill=\"#444\"",
        "each cell: measured, then predicted",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::report::outcome_grid::Table;

    fn cell(row: &str, column: &str, first_error_s: Option<f64>, stall: f64, agrees: bool) -> Cell {
        Cell {
            id: format!("s[{row},{column}]@tgt"),
            row: row.into(),
            column: column.into(),
            verdict: if agrees { Verdict::Pass } else { Verdict::Fail },
            measured: "m".into(),
            predicted: "p".into(),
            agrees,
            borderline: false,
            first_error_s,
            max_stall_s: Some(stall),
        }
    }

    fn map(cells: Vec<Cell>) -> Outcome {
        Outcome {
            row_axis: "len".into(),
            column_axis: Some("rt".into()),
            tables: vec![Table {
                scenario: "s".into(),
                target: "tgt".into(),
                fixed: Default::default(),
                rows: vec!["4".into(), "15".into()],
                columns: vec!["5".into(), "20".into()],
                cells,
            }],
        }
    }

    /// No error (no stall, 8 s stall), EIO at 2 s, and a disagreeing EIO at 10 s.
    fn four_cells() -> Outcome {
        map(vec![
            cell("4", "5", None, 0.0, true),
            cell("4", "20", None, 8.0, true),
            cell("15", "5", Some(2.0), 2.0, true),
            cell("15", "20", Some(10.0), 10.0, false),
        ])
    }

    #[test]
    fn colours_follow_stall_length_and_error_time_on_one_scale() {
        let o = four_cells();
        let s = Scale::of(&o);
        assert_eq!((s.max_stall_s, s.max_error_s), (8.0, 10.0));
        let c = &o.tables[0].cells;
        assert_eq!(s.colour(&c[0]), hex(NO_STALL));
        assert_eq!(s.colour(&c[1]), hex(LONG_STALL));
        assert_eq!(s.colour(&c[3]), hex(LATE_ERROR));
        // Sooner is redder.
        assert_eq!(s.colour(&c[2]), hex(mix(SOON_ERROR, LATE_ERROR, 0.2)));
        let mut nothing = cell("4", "5", None, 0.0, false);
        nothing.max_stall_s = None;
        assert_eq!(s.colour(&nothing), hex(NOTHING));
    }

    #[test]
    fn the_heatmap_is_xml_with_one_frame_per_disagreeing_cell() {
        let o = four_cells();
        let svg = render(&o);
        let doc = roxmltree::Document::parse(&svg).expect("the heatmap is XML");
        let thick = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("stroke-width") == Some("3"))
            .count();
        // The cell, and the legend's sample.
        assert_eq!(thick, 2, "{svg}");
        assert!(svg.contains("s[15,20]@tgt\nmeasured: m\npredicted: p\ndisagrees"));
        assert_eq!(svg, render(&o), "deterministic");
    }

    #[test]
    fn long_labels_are_cut_to_their_cell() {
        let s = fit(&"x".repeat(100), 50.0, 10.0);
        assert!(
            s.ends_with('…') && text_width(&s, 10.0) <= 50.0 + 10.0,
            "{s}"
        );
        assert_eq!(fit("short", 50.0, 10.0), "short");
    }
}
