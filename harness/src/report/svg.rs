//! A small SVG writer for the report's pictures: elements appended in
//! order, text escaped, every number written with one decimal so that a
//! picture is byte-for-byte the same for the same input (snapshot tests
//! compare them).
//!
//! Hand-written rather than plotters: plotters' SVG backend lays text out
//! with a font backend (fontconfig through font-kit, or an embedded TTF),
//! which makes the output depend on the fonts of the machine that drew it;
//! these pictures only need rectangles, lines, circles and text that the
//! browser lays out.

use std::fmt::Write;

/// Escapes text for an SVG text node or attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// One decimal: enough for pixels, and the same on every machine.
pub fn num(x: f64) -> String {
    let x = if x.is_finite() { x } else { 0.0 };
    let s = format!("{x:.1}");
    // "-0.0" and "0.0" are the same pixel.
    if s == "-0.0" {
        "0.0".into()
    } else {
        s
    }
}

/// Where a text sits relative to its point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// Roughly how wide `text` is at `size` px in a sans-serif font, for
/// placing labels so that they do not overlap (browsers lay out the text
/// themselves; this only has to be about right).
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.56
}

/// A picture being drawn.
#[derive(Debug)]
pub struct Svg {
    width: f64,
    height: f64,
    body: String,
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Svg {
        Svg {
            width,
            height,
            body: String::new(),
        }
    }

    /// A filled rectangle; `title`, when given, is its tooltip.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, style: &str, title: Option<&str>) {
        let attrs = format!(
            "x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {style}",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
        self.element("rect", &attrs, title);
    }

    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, style: &str) {
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {style}/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2)
        );
    }

    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, style: &str, title: Option<&str>) {
        let attrs = format!(
            "cx=\"{}\" cy=\"{}\" r=\"{}\" {style}",
            num(cx),
            num(cy),
            num(r)
        );
        self.element("circle", &attrs, title);
    }

    /// A path from points (`M x y L x y ...`), closed when `closed`.
    pub fn polyline(&mut self, points: &[(f64, f64)], closed: bool, style: &str) {
        if points.is_empty() {
            return;
        }
        let mut d = String::new();
        for (i, (x, y)) in points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{} {}",
                if i == 0 { "M" } else { " L" },
                num(*x),
                num(*y)
            );
        }
        if closed {
            d.push_str(" Z");
        }
        self.path(&d, style, None);
    }

    /// A path of SVG path data `d`.
    pub fn path(&mut self, d: &str, style: &str, title: Option<&str>) {
        self.element("path", &format!("d=\"{d}\" {style}"), title);
    }

    pub fn text(&mut self, x: f64, y: f64, size: f64, anchor: Anchor, style: &str, text: &str) {
        let _ = writeln!(
            self.body,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{}\" {style}>{}</text>",
            num(x),
            num(y),
            num(size),
            anchor.as_str(),
            escape(text)
        );
    }

    /// An empty element, or one holding its tooltip.
    fn element(&mut self, name: &str, attrs: &str, title: Option<&str>) {
        let attrs = attrs.trim_end();
        let _ = match title {
            Some(t) => writeln!(
                self.body,
                "<{name} {attrs}><title>{}</title></{name}>",
                escape(t)
            ),
            None => writeln!(self.body, "<{name} {attrs}/>"),
        };
    }

    /// The finished document; `label` is its accessible title.
    pub fn finish(self, label: &str) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" role=\"img\">\n\
             <title>{}</title>\n{}</svg>\n",
            escape(label),
            self.body,
            w = num(self.width),
            h = num(self.height),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_tooltips_are_escaped_and_elements_closed() {
        let mut s = Svg::new(100.0, 50.0);
        s.rect(1.0, 2.0, 3.0, 4.0, "fill=\"red\"", Some("a <b> & \"c\""));
        s.text(5.0, 6.0, 11.0, Anchor::Middle, "", "x < y");
        s.circle(1.0, 1.0, 2.0, "", None);
        let out = s.finish("t&t");
        assert!(out.contains(
            "<rect x=\"1.0\" y=\"2.0\" width=\"3.0\" height=\"4.0\" fill=\"red\">\
             <title>a &lt;b&gt; &amp; &quot;c&quot;</title></rect>"
        ));
        assert!(out.contains(">x &lt; y</text>"), "{out}");
        assert!(
            out.contains("<circle cx=\"1.0\" cy=\"1.0\" r=\"2.0\"/>"),
            "{out}"
        );
        assert!(out.contains("<title>t&amp;t</title>"));
    }

    #[test]
    fn numbers_have_one_decimal_and_no_negative_zero() {
        assert_eq!(num(1.23456), "1.2");
        assert_eq!(num(-0.01), "0.0");
        assert_eq!(num(f64::NAN), "0.0");
        assert_eq!(escape("\u{1}ok"), "?ok");
    }
}
