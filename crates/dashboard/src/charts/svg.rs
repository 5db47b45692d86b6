//! One line chart over time as SVG, drawn by plotters' SVG backend (no fonts loaded: text
//! is SVG `<text>` the browser sets), then made accessible: `role="img"`, a `<title>` and
//! a `<desc>` naming what it shows, referenced by `aria-labelledby`.

use plotters::prelude::*;

pub const WIDTH: u32 = 560;
pub const HEIGHT: u32 = 180;

/// The line colours, in the order lines are given; the legend's CSS classes match
/// (`key-0`, `key-1`).
pub const PALETTE: [RGBColor; 2] = [RGBColor(31, 78, 121), RGBColor(196, 89, 17)];
pub const KEY_CLASSES: [&str; 2] = ["key-0", "key-1"];

#[derive(Debug, thiserror::Error)]
#[error("chart: {0}")]
pub struct ChartError(String);

fn err(e: impl std::fmt::Display) -> ChartError {
    ChartError(e.to_string())
}

/// How a value reads on the y axis.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// Calls per minute: "12", "0.5".
    PerMinute,
    Percent,
    Millis,
    Bytes,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::PerMinute => short(v),
            Unit::Percent => format!("{} %", short(v)),
            Unit::Millis => format!("{} ms", short(v)),
            Unit::Bytes => bytes(v),
        }
    }
}

/// "12", "12.5", "0.25", "120", "12k".
fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v == v.trunc() || v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// "512 B", "12.5 MiB".
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v.max(0.0);
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 || v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A line: runs of (unix minute, value) points; a gap between runs is not bridged.
pub struct Line {
    pub segments: Vec<Vec<(i64, f64)>>,
}

/// What to draw.
pub struct Spec<'a> {
    /// The element id of the `<svg>` (`chart-calls`).
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
    /// The time axis, unix minutes, `from..to`.
    pub from: i64,
    pub to: i64,
    /// Minutes between labelled ticks.
    pub tick: i64,
    pub unit: Unit,
    pub lines: &'a [Line],
}

impl Spec<'_> {
    fn y_max(&self) -> f64 {
        let top = self
            .lines
            .iter()
            .flat_map(|l| l.segments.iter().flatten())
            .map(|p| p.1)
            .fold(0.0f64, f64::max);
        match self.unit {
            Unit::Percent if top <= 100.0 => (top * 1.15).clamp(1.0, 100.0),
            _ if top <= 0.0 => 1.0,
            _ => top * 1.15,
        }
    }

    /// Ticks on round clock times (multiples of `tick` minutes since the epoch, which is
    /// midnight UTC).
    fn ticks(&self) -> Vec<i64> {
        let t = self.tick.max(1);
        let first = self.from.div_euclid(t) * t + if self.from % t == 0 { 0 } else { t };
        (0..)
            .map(|i| first + i * t)
            .take_while(|m| *m <= self.to)
            .collect()
    }

    fn time_label(&self, m: i64) -> String {
        let Some(t) = chrono::DateTime::from_timestamp(m * 60, 0) else {
            return String::new();
        };
        if self.to - self.from > 1440 {
            t.format("%a %d").to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    }
}

/// The chart as an `<svg>` element.
pub fn render(spec: &Spec) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        let x = (spec.from..spec.to.max(spec.from + 1)).with_key_points(spec.ticks());
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(16)
            .x_label_area_size(22)
            .y_label_area_size(64)
            .build_cartesian_2d(x, 0f64..spec.y_max())
            .map_err(err)?;
        let grid = RGBColor(221, 225, 230);
        let axis_label = |m: &i64| spec.time_label(*m);
        let value_label = |v: &f64| spec.unit.format(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_labels(4)
            .max_light_lines(0)
            .bold_line_style(grid)
            .axis_style(RGBColor(169, 177, 187))
            .label_style(
                ("sans-serif", 12)
                    .into_font()
                    .color(&RGBColor(91, 102, 117)),
            )
            .x_label_formatter(&axis_label)
            .y_label_formatter(&value_label)
            .draw()
            .map_err(err)?;
        for (line, color) in spec.lines.iter().zip(PALETTE.iter().cycle()) {
            for seg in &line.segments {
                if seg.len() == 1 {
                    // A lone minute is a dot, not an invisible zero-length line.
                    let (m, v) = seg[0];
                    chart
                        .draw_series(std::iter::once(Circle::new((m, v), 2, color.filled())))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(seg.iter().copied(), color.stroke_width(2)))
                        .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(accessible(&out, spec))
}

/// `<svg …>` gains an id, `role="img"`, `aria-labelledby`, and a `<title>` and `<desc>`
/// as its first children; the fixed pixel size goes (CSS sizes it; the viewBox keeps the
/// proportions).
fn accessible(svg: &str, spec: &Spec) -> String {
    let Some(open_end) = svg.find('>') else {
        return svg.to_string();
    };
    let (open, rest) = svg.split_at(open_end);
    let open = open
        .replacen(&format!(r#"width="{WIDTH}""#), "", 1)
        .replacen(&format!(r#"height="{HEIGHT}""#), "", 1);
    let id = spec.id;
    format!(
        r#"{} id="{id}" class="chart" role="img" aria-labelledby="{id}-title {id}-desc"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>{}"#,
        open.trim_end(),
        escape(spec.title),
        escape(spec.desc),
        &rest[1..]
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(lines: &'a [Line], from: i64, to: i64) -> Spec<'a> {
        Spec {
            id: "chart-t",
            title: "Calls <per> minute",
            desc: "3 calls & more",
            from,
            to,
            tick: 10,
            unit: Unit::PerMinute,
            lines,
        }
    }

    #[test]
    fn a_chart_is_an_accessible_svg_with_its_points() {
        let lines = [Line {
            segments: vec![vec![(100, 1.0), (101, 3.0), (102, 2.0)], vec![(110, 5.0)]],
        }];
        let svg = render(&spec(&lines, 90, 150)).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains(r#"id="chart-t""#) && svg.contains(r#"role="img""#));
        assert!(svg.contains("<title id=\"chart-t-title\">Calls &lt;per&gt; minute</title>"));
        assert!(svg.contains("3 calls &amp; more"));
        assert!(svg.contains("viewBox"), "{svg}");
        assert!(svg.contains("<polyline"), "a line for the run: {svg}");
        assert!(svg.contains("<circle"), "a dot for the lone minute");
        assert!(svg.contains("01:40"), "ticks on round times: {svg}");
    }

    #[test]
    fn units_read_as_people_write_them() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(12.5 * 1024.0 * 1024.0), "12.5 MiB");
        assert_eq!(Unit::Percent.format(12.0), "12 %");
        assert_eq!(Unit::Millis.format(0.25), "0.25 ms");
        assert_eq!(Unit::PerMinute.format(20_000.0), "20k");
    }
}
