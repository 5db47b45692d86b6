//! Charts of the metrics history (`toolbelt_store::metrics`), rendered on the server as
//! SVG by plotters ([`svg`]) from series built here ([`series`]) over a time range the
//! page picks with `?range=` ([`Range`]).
//!
//! A chart never carries more points than it has pixels: long ranges are bucketed
//! (7 days of minutes → 360 buckets of 28 minutes), so a week's chart costs what an
//! hour's does, in render time and in page bytes.

pub mod series;
pub mod svg;

/// The time a chart covers, chosen by a plain link (`?range=6h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    #[default]
    Hour,
    SixHours,
    Day,
    Week,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Hour, Range::SixHours, Range::Day, Range::Week];

    /// `1h`, `6h`, `24h` or `7d`; anything else is the default (an hour).
    pub fn parse(s: Option<&str>) -> Range {
        match s {
            Some("6h") => Range::SixHours,
            Some("24h") => Range::Day,
            Some("7d") => Range::Week,
            _ => Range::Hour,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::SixHours => "6h",
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }

    /// How the summaries say it: "the last hour".
    pub fn phrase(self) -> &'static str {
        match self {
            Range::Hour => "the last hour",
            Range::SixHours => "the last 6 hours",
            Range::Day => "the last 24 hours",
            Range::Week => "the last 7 days",
        }
    }

    pub fn minutes(self) -> i64 {
        match self {
            Range::Hour => 60,
            Range::SixHours => 360,
            Range::Day => 1440,
            Range::Week => 7 * 1440,
        }
    }

    /// Minutes per point: at most 360 points whatever the range.
    pub fn bucket(self) -> i64 {
        (self.minutes() / 360).max(1)
    }

    /// Minutes between labelled ticks on the time axis (on round clock times).
    pub fn tick(self) -> i64 {
        match self {
            Range::Hour => 10,
            Range::SixHours => 60,
            Range::Day => 240,
            Range::Week => 1440,
        }
    }
}

/// One chart as a page shows it: the SVG, or what to do when there is nothing to draw.
pub struct Figure {
    /// `calls`, `errors`, `latency`, `cpu`, `memory`: element ids are `chart-<id>`,
    /// `chart-<id>-summary`, `chart-<id>-empty`.
    pub id: &'static str,
    pub title: String,
    /// The SVG markup (ours, escaped where it carries text); empty when `empty` is set.
    pub svg: String,
    /// One sentence a screen reader (and the browser test) reads instead of the picture.
    pub summary: String,
    /// The lines drawn, for the legend: (name, CSS class of its colour).
    pub keys: Vec<(&'static str, &'static str)>,
    /// When there is nothing to draw: what to do next.
    pub empty: Option<String>,
}
