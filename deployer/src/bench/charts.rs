//! Charts as standalone SVG: axes, ticks, one mark per data point, a legend. No font
//! files (text is SVG text in a generic family) and no plotting library: the charts are
//! few and simple, and every mark stays addressable (`class="point"`, `class="cold"`)
//! so tests can count them.

use std::fmt::Write;

pub const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// One circle per point; `cold` points are drawn hollow and larger.
    Points,
    Line,
    /// A step line (counts over time).
    Steps,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub mark: Mark,
    pub points: Vec<(f64, f64)>,
    /// Per point: whether it is a cold start (only for `Mark::Points`).
    pub cold: Vec<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Vertical guides (batch starts), with a label.
    pub guides: Vec<(f64, String)>,
}

const W: f64 = 900.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 56.0;
/// The legend's width, from the right edge of the plot.
const LEGEND: f64 = 300.0;
/// The plot area's width and height, inside the margins.
const PW: f64 = W - LEFT - RIGHT;
const PH: f64 = H - TOP - BOTTOM;

/// About five round ticks covering `lo..=hi`.
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut t = first;
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The data range a chart shows, and how it maps onto the plot area.
struct Frame {
    x0: f64,
    x1: f64,
    y1: f64,
}

impl Frame {
    /// A range covering every point and guide, from zero, with a little headroom.
    fn fit(chart: &Chart) -> Frame {
        let all = chart.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for &(x, y) in all {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        for (x, _) in &chart.guides {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let x0 = x0.min(0.0);
        // A little room on the right, so the last points are not on the frame.
        let x1 = x1 + (x1 - x0) * 0.03;
        let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.08 };
        Frame { x0, x1, y1 }
    }

    fn sx(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * PW
    }

    fn sy(&self, y: f64) -> f64 {
        TOP + PH - (y / self.y1) * PH
    }
}

impl Chart {
    pub fn svg(&self) -> String {
        let f = Frame::fit(self);
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = write!(
            o,
            r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
            W / 2.0,
            escape(&self.title)
        );
        self.axes(&mut o, &f);
        self.guides(&mut o, &f);
        for s in &self.series {
            match s.mark {
                Mark::Points => points(&mut o, &f, s),
                Mark::Line | Mark::Steps => line(&mut o, &f, s),
            }
        }
        self.legend(&mut o);
        o.push_str("</svg>\n");
        o
    }

    /// The grid with its tick labels, the two axes and their labels.
    fn axes(&self, o: &mut String, f: &Frame) {
        for t in ticks(0.0, f.y1) {
            let y = f.sy(t);
            let _ = write!(
                o,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        for t in ticks(f.x0, f.x1) {
            let x = f.sx(t);
            let _ = write!(
                o,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#f0f0f0"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                TOP + PH,
                TOP + PH + 18.0,
                fmt_tick(t)
            );
        }
        let _ = write!(
            o,
            r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#333"/><line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#333"/>"##,
            TOP + PH,
            W - RIGHT,
            TOP + PH,
            TOP + PH
        );
        let _ = write!(
            o,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + PW / 2.0,
            H - 12.0,
            escape(&self.x_label)
        );
        let _ = write!(
            o,
            r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + PH / 2.0,
            escape(&self.y_label)
        );
    }

    fn guides(&self, o: &mut String, f: &Frame) {
        for (x, label) in &self.guides {
            let x = f.sx(*x);
            let _ = write!(
                o,
                r##"<line class="guide" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#999" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#666">{}</text>"##,
                TOP + PH,
                x + 3.0,
                TOP + PH - 6.0,
                escape(label)
            );
        }
    }

    /// One swatch per series, then the cold-start mark when any point is cold.
    fn legend(&self, o: &mut String) {
        let lx = W - RIGHT - LEGEND;
        let mut ly = TOP + 8.0;
        for s in &self.series {
            let _ = write!(
                o,
                r#"<rect x="{lx}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{}" y="{:.1}">{}</text>"#,
                ly - 10.0,
                s.color,
                lx + 18.0,
                ly,
                escape(&s.name)
            );
            ly += 18.0;
        }
        if self.series.iter().any(|s| s.cold.iter().any(|c| *c)) {
            let _ = write!(
                o,
                r##"<circle cx="{}" cy="{:.1}" r="6" fill="none" stroke="#333" stroke-width="2"/><text x="{}" y="{:.1}">cold start (first request of a process)</text>"##,
                lx + 6.0,
                ly - 4.0,
                lx + 18.0,
                ly
            );
        }
    }
}

/// A circle per point: cold ones hollow and larger.
fn points(o: &mut String, f: &Frame, s: &Series) {
    for (i, &(x, y)) in s.points.iter().enumerate() {
        if s.cold.get(i).copied().unwrap_or(false) {
            let _ = write!(
                o,
                r#"<circle class="cold" cx="{:.1}" cy="{:.1}" r="6" fill="none" stroke="{}" stroke-width="2"/>"#,
                f.sx(x),
                f.sy(y),
                s.color
            );
        } else {
            let _ = write!(
                o,
                r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3" fill="{}" fill-opacity="0.75"/>"#,
                f.sx(x),
                f.sy(y),
                s.color
            );
        }
    }
}

/// One path through the points; a step line holds each value until the next point.
fn line(o: &mut String, f: &Frame, s: &Series) {
    let mut d = String::new();
    let mut last_y = None;
    for (i, &(x, y)) in s.points.iter().enumerate() {
        let cmd = if i == 0 { 'M' } else { 'L' };
        if s.mark == Mark::Steps
            && let Some(ly) = last_y
        {
            let _ = write!(d, "L{:.1},{:.1} ", f.sx(x), f.sy(ly));
        }
        let _ = write!(d, "{cmd}{:.1},{:.1} ", f.sx(x), f.sy(y));
        last_y = Some(y);
    }
    let _ = write!(
        o,
        r#"<path class="line" d="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
        d.trim_end(),
        s.color
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            ticks(0.0, 1200.0),
            vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0]
        );
        let t = ticks(0.0, 0.37);
        assert!(t.len() >= 3 && t[0] == 0.0 && *t.last().unwrap() <= 0.37);
    }

    #[test]
    fn one_circle_per_point_and_cold_ones_marked() {
        let chart = Chart {
            title: "a <b> & c".into(),
            series: vec![Series {
                name: "serverless".into(),
                color: COLORS[0],
                mark: Mark::Points,
                points: vec![(0.0, 900.0), (1.0, 100.0), (2.0, 110.0)],
                cold: vec![true, false, false],
            }],
            ..Chart::default()
        };
        let svg = chart.svg();
        assert_eq!(svg.matches(r#"<circle class="point""#).count(), 2);
        assert_eq!(svg.matches(r#"<circle class="cold""#).count(), 1);
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
