//! A hand-written SVG line plot: throughput (frames/s) against frame size, one line per
//! series (dataplane x router count), plus the generator's ceiling dashed.

use std::fmt::Write;

/// One line of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text (`kernel, 2 routers`).
    pub label: String,
    /// (frame size, frames/s) points.
    pub points: Vec<(usize, f64)>,
    /// Drawn dashed (references such as the generator's ceiling).
    pub dashed: bool,
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
pub fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

/// The SVG document. Frame sizes are spaced evenly (they are categories: 64, 512, 1518).
pub fn svg(title: &str, series: &[Series]) -> String {
    let (w, h) = (760.0, 440.0);
    let (left, right, top, bottom) = (80.0, 210.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let mut sizes: Vec<usize> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let ymax = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let x_of = |size: usize| -> f64 {
        let i = sizes.iter().position(|&s| s == size).unwrap_or(0) as f64;
        let n = sizes.len().max(2) as f64 - 1.0;
        if sizes.len() == 1 {
            left + pw / 2.0
        } else {
            left + pw * i / n
        }
    };
    let y_of = |v: f64| top + ph - ph * (v / ymax);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        left + pw / 2.0,
        esc(title)
    );
    // Grid and y labels (frames/s in thousands).
    for i in 0..=5 {
        let v = ymax * i as f64 / 5.0;
        let y = y_of(v);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            y + 4.0,
            format_k(v)
        );
    }
    for &s in &sizes {
        let x = x_of(s);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{s}</text>"##,
            top + ph,
            top + ph + 18.0
        );
    }
    let _ = writeln!(
        o,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">frame size (bytes)</text>"#,
        left + pw / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        o,
        r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">zero-loss throughput (frames/s)</text>"#,
        top + ph / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let color = if s.dashed {
            "#666"
        } else {
            PALETTE[i % PALETTE.len()]
        };
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let mut pts: Vec<(usize, f64)> = s.points.clone();
        pts.sort_by_key(|p| p.0);
        let path: Vec<String> = pts
            .iter()
            .map(|&(sz, v)| format!("{:.1},{:.1}", x_of(sz), y_of(v)))
            .collect();
        let _ = writeln!(
            o,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            path.join(" ")
        );
        for &(sz, v) in &pts {
            let _ = writeln!(
                o,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x_of(sz),
                y_of(v)
            );
        }
        let ly = top + 10.0 + 18.0 * i as f64;
        let lx = left + pw + 14.0;
        let _ = writeln!(
            o,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            esc(&s.label)
        );
    }
    o.push_str("</svg>\n");
    o
}

fn format_k(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_bounds_are_round() {
        assert_eq!(nice_ceiling(173_000.0), 200_000.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(500.0), 500.0);
        assert_eq!(nice_ceiling(501.0), 1000.0);
    }

    #[test]
    fn one_polyline_per_series_with_its_label() {
        let s = svg(
            "t <1>",
            &[
                Series {
                    label: "kernel, 1 router".into(),
                    points: vec![(1518, 1.0e5), (64, 1.5e5)],
                    dashed: false,
                },
                Series {
                    label: "generator".into(),
                    points: vec![(64, 2.0e5), (1518, 1.8e5)],
                    dashed: true,
                },
            ],
        );
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("kernel, 1 router") && s.contains("t &lt;1&gt;"));
        assert_eq!(s.matches("stroke-dasharray").count(), 2);
        // Points are drawn in frame-size order: 64 (left) first.
        let line = s.lines().find(|l| l.contains("<polyline")).unwrap();
        let xs: Vec<f64> = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"/>")
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(xs[0] < xs[1], "{xs:?}");
    }
}
