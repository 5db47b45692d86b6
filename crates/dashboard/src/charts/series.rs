//! The store's per-minute rows as the figures a page shows: bucketed to the range's
//! resolution, with the summary sentence each chart carries and an empty state that says
//! what to do next.
//!
//! Calls are counted in every bucket (a minute without a row had no calls: zero); rates
//! and latencies only where there were calls, and resources only where a sample came, so
//! a gap is drawn as a gap rather than as a fall to zero.

use super::svg::{self, KEY_CLASSES, Line, Spec, Unit};
use super::{Figure, Range};
use std::collections::BTreeMap;
use toolbelt_store::metrics::{CallPoint, ResourcePoint};

/// The minutes a chart covers and how they are grouped.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub range: Range,
    /// The first minute shown (unix minutes).
    pub from: i64,
    /// The current minute (shown, still filling).
    pub to: i64,
}

impl Window {
    pub fn new(range: Range, now: i64) -> Window {
        Window {
            range,
            from: now - range.minutes() + 1,
            to: now,
        }
    }

    /// The first minute of the range, as the store's queries take it.
    pub fn since(&self) -> i64 {
        self.from
    }

    fn bucket(&self) -> i64 {
        self.range.bucket()
    }

    /// The start of the bucket holding minute `m`.
    fn bucket_of(&self, m: i64) -> i64 {
        self.from + (m - self.from).div_euclid(self.bucket()) * self.bucket()
    }

    fn starts(&self) -> impl Iterator<Item = i64> + '_ {
        (0..)
            .map(|i| self.from + i * self.bucket())
            .take_while(|m| *m <= self.to)
    }
}

/// Points in runs of adjacent buckets.
fn runs(w: &Window, points: impl IntoIterator<Item = (i64, f64)>) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    for p in points {
        match out.last_mut() {
            Some(run) if run.last().is_some_and(|l| p.0 - l.0 == w.bucket()) => run.push(p),
            _ => out.push(vec![p]),
        }
    }
    out
}

#[derive(Default, Clone, Copy)]
struct Calls {
    calls: u64,
    errors: u64,
    /// Σ p50 × calls, for the call-weighted p50.
    p50_weighted: f64,
    p99_us: u64,
}

fn hhmm(minute: i64) -> String {
    chrono::DateTime::from_timestamp(minute * 60, 0)
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

fn figure(
    id: &'static str,
    title: String,
    w: &Window,
    unit: Unit,
    lines: Vec<Line>,
    names: &[&'static str],
    summary: String,
) -> Figure {
    let element = format!("chart-{id}");
    let spec = Spec {
        id: &element,
        title: &title,
        desc: &summary,
        from: w.from,
        to: w.to,
        tick: w.range.tick(),
        unit,
        lines: &lines,
    };
    let (svg, empty) = match svg::render(&spec) {
        Ok(s) => (s, None),
        Err(e) => {
            tracing::error!(error = %e, chart = id, "a chart failed to render");
            (
                String::new(),
                Some("This chart could not be drawn; the error is in the server's log.".into()),
            )
        }
    };
    Figure {
        id,
        title,
        svg,
        summary,
        keys: names.iter().copied().zip(KEY_CLASSES).collect(),
        empty,
    }
}

fn nothing(id: &'static str, title: String, why: String) -> Figure {
    Figure {
        id,
        title,
        svg: String::new(),
        summary: String::new(),
        keys: Vec::new(),
        empty: Some(why),
    }
}

/// Calls per minute, error rate and p50/p99 latency of a server's calls.
pub fn call_figures(w: &Window, points: &[CallPoint]) -> Vec<Figure> {
    let phrase = w.range.phrase();
    let mut buckets: BTreeMap<i64, Calls> = w.starts().map(|m| (m, Calls::default())).collect();
    let (mut total, mut errors, mut weighted, mut p99) = (0u64, 0u64, 0f64, 0u64);
    let mut peak: Option<&CallPoint> = None;
    for p in points
        .iter()
        .filter(|p| p.minute >= w.from && p.minute <= w.to)
    {
        let b = buckets.entry(w.bucket_of(p.minute)).or_default();
        b.calls += p.calls;
        b.errors += p.errors;
        b.p50_weighted += p.p50_us as f64 * p.calls as f64;
        b.p99_us = b.p99_us.max(p.p99_us);
        total += p.calls;
        errors += p.errors;
        weighted += p.p50_us as f64 * p.calls as f64;
        p99 = p99.max(p.p99_us);
        if peak.is_none_or(|k| p.calls > k.calls) {
            peak = Some(p);
        }
    }
    let (calls_t, errors_t, latency_t) = (
        "Calls per minute".to_string(),
        "Error rate".to_string(),
        "Latency p50 / p99".to_string(),
    );
    let Some(peak) = peak.filter(|_| total > 0) else {
        return vec![
            nothing(
                "calls",
                calls_t,
                format!(
                    "No calls in {phrase}. Grant an agent this server on its agent page and call one of its tools through /mcp; the chart fills within seconds."
                ),
            ),
            nothing(
                "errors",
                errors_t,
                format!("No calls in {phrase}, so no errors to rate."),
            ),
            nothing(
                "latency",
                latency_t,
                format!("No calls in {phrase}, so no latency to show."),
            ),
        ];
    };
    let per_min = w.bucket() as f64;
    let calls = Line {
        segments: vec![
            buckets
                .iter()
                .map(|(m, b)| (*m, b.calls as f64 / per_min))
                .collect(),
        ],
    };
    let with_calls = || buckets.iter().filter(|(_, b)| b.calls > 0);
    let rate = Line {
        segments: runs(
            w,
            with_calls().map(|(m, b)| (*m, 100.0 * b.errors as f64 / b.calls as f64)),
        ),
    };
    let p50 = Line {
        segments: runs(
            w,
            with_calls().map(|(m, b)| (*m, b.p50_weighted / b.calls as f64 / 1000.0)),
        ),
    };
    let p99_line = Line {
        segments: runs(w, with_calls().map(|(m, b)| (*m, b.p99_us as f64 / 1000.0))),
    };
    let s = |n: u64, one: &str, many: &str| {
        if n == 1 {
            one.to_string()
        } else {
            many.to_string()
        }
    };
    let mean_p50 = weighted / total as f64 / 1000.0;
    vec![
        figure(
            "calls",
            calls_t,
            w,
            Unit::PerMinute,
            vec![calls],
            &[],
            format!(
                "{total} {} in {phrase}; the busiest minute had {} ({} UTC).",
                s(total, "call", "calls"),
                peak.calls,
                hhmm(peak.minute)
            ),
        ),
        figure(
            "errors",
            errors_t,
            w,
            Unit::Percent,
            vec![rate],
            &[],
            format!(
                "{errors} {} in {total} {} ({:.1} %) in {phrase}.",
                s(errors, "error", "errors"),
                s(total, "call", "calls"),
                100.0 * errors as f64 / total as f64
            ),
        ),
        figure(
            "latency",
            latency_t,
            w,
            Unit::Millis,
            vec![p50, p99_line],
            &["p50", "p99"],
            format!(
                "p50 {:.1} ms (weighted by calls), p99 {:.1} ms (the slowest minute's) in {phrase}.",
                mean_p50,
                p99 as f64 / 1000.0
            ),
        ),
    ]
}

/// Who the resources are of, for the empty states.
#[derive(Debug, Clone, Copy)]
pub enum Of {
    Server,
    Toolbox,
}

/// CPU and memory of a server or toolbox.
pub fn resource_figures(w: &Window, points: &[ResourcePoint], of: Of) -> Vec<Figure> {
    let phrase = w.range.phrase();
    let mut cpu: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    let mut mem: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    let mut last_cpu = None;
    let mut last_mem = None;
    for p in points
        .iter()
        .filter(|p| p.minute >= w.from && p.minute <= w.to)
    {
        let b = w.bucket_of(p.minute);
        if let Some(c) = p.cpu_percent {
            let e = cpu.entry(b).or_default();
            *e = (e.0 + c, e.1 + 1);
            last_cpu = Some(c);
        }
        if let Some(m) = p.memory_bytes {
            let e = mem.entry(b).or_default();
            *e = (e.0 + m as f64, e.1 + 1);
            last_mem = Some(m as f64);
        }
    }
    let why = |what: &str| match of {
        Of::Server => format!(
            "No {what} samples in {phrase}. The toolbox reports them with its heartbeats while the server runs (the process runtime measures memory only); start the server to see them."
        ),
        Of::Toolbox => format!(
            "No {what} samples in {phrase}. They come with the toolbox's heartbeats: run the join command on a machine (or start `toolbelt up`) and they appear within a minute."
        ),
    };
    let mean = |m: &BTreeMap<i64, (f64, u32)>| -> Vec<(i64, f64)> {
        m.iter()
            .map(|(k, (s, n))| (*k, s / f64::from(*n)))
            .collect()
    };
    let peak = |v: &[(i64, f64)]| v.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let mut out = Vec::new();
    let cpu_points = mean(&cpu);
    match last_cpu {
        None => out.push(nothing("cpu", "CPU".into(), why("CPU"))),
        Some(last) => {
            let summary = format!(
                "CPU {} latest, at most {} in {phrase}.",
                Unit::Percent.format(last),
                Unit::Percent.format(peak(&cpu_points))
            );
            let line = Line {
                segments: runs(w, cpu_points),
            };
            out.push(figure(
                "cpu",
                "CPU".into(),
                w,
                Unit::Percent,
                vec![line],
                &[],
                summary,
            ));
        }
    }
    let mem_points = mean(&mem);
    match last_mem {
        None => out.push(nothing("memory", "Memory".into(), why("memory"))),
        Some(last) => {
            let summary = format!(
                "Memory {} latest, at most {} in {phrase}.",
                svg::bytes(last),
                svg::bytes(peak(&mem_points))
            );
            let line = Line {
                segments: runs(w, mem_points),
            };
            out.push(figure(
                "memory",
                "Memory".into(),
                w,
                Unit::Bytes,
                vec![line],
                &[],
                summary,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(minute: i64, calls: u64, errors: u64) -> CallPoint {
        CallPoint {
            minute,
            calls,
            errors,
            p50_us: 1_000,
            p99_us: 4_000,
        }
    }

    #[test]
    fn calls_are_summed_and_minutes_without_calls_count_zero() {
        let now = 1_000_000;
        let w = Window::new(Range::Hour, now);
        let f = call_figures(&w, &[call(now - 3, 4, 1), call(now, 1, 0)]);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|f| f.empty.is_none()));
        assert!(
            f[0].summary.starts_with("5 calls in the last hour"),
            "{}",
            f[0].summary
        );
        assert!(
            f[1].summary.starts_with("1 error in 5 calls (20.0 %)"),
            "{}",
            f[1].summary
        );
        assert!(f[2].summary.contains("p99 4.0 ms"), "{}", f[2].summary);
        // 60 minutes drawn as one line; rates only where calls were: two dots.
        let data_lines = |svg: &str| svg.matches(r##"stroke="#1F4E79""##).count();
        assert_eq!(data_lines(&f[0].svg), 1, "{}", f[0].svg);
        assert_eq!(f[1].svg.matches("<circle").count(), 2);
        assert_eq!(f[2].keys, vec![("p50", "key-0"), ("p99", "key-1")]);
    }

    #[test]
    fn nothing_to_draw_says_what_to_do() {
        let w = Window::new(Range::Day, 1_000_000);
        let f = call_figures(&w, &[call(1_000_000 - 2000, 3, 0)]);
        assert!(
            f.iter().all(|f| f.svg.is_empty() && f.empty.is_some()),
            "outside the range"
        );
        assert!(f[0].empty.as_deref().unwrap().contains("/mcp"));
        let r = resource_figures(&w, &[], Of::Toolbox);
        assert!(r[0].empty.as_deref().unwrap().contains("join command"));
    }

    #[test]
    fn a_week_of_minutes_is_bucketed_and_rendered_in_bounded_size() {
        let now = 29_000_000;
        let w = Window::new(Range::Week, now);
        let points: Vec<CallPoint> = (w.from..=now)
            .map(|m| call(m, (m % 17) as u64 + 1, u64::from(m % 5 == 0)))
            .collect();
        let res: Vec<ResourcePoint> = (w.from..=now)
            .map(|m| ResourcePoint {
                minute: m,
                cpu_percent: Some((m % 90) as f64),
                memory_bytes: Some(50_000_000 + (m % 1000) as u64 * 1000),
            })
            .collect();
        assert_eq!(points.len(), 10_080);
        let t = std::time::Instant::now();
        let calls = call_figures(&w, &points);
        let took_calls = t.elapsed();
        let t = std::time::Instant::now();
        let one = resource_figures(&w, &res, Of::Server);
        let took_res = t.elapsed();
        let bytes: usize = calls.iter().chain(&one).map(|f| f.svg.len()).sum();
        // One chart alone, straight from 10,080 points (no bucketing): what it would cost.
        let raw = Line {
            segments: vec![points.iter().map(|p| (p.minute, p.calls as f64)).collect()],
        };
        let lines = [raw];
        let spec = Spec {
            id: "chart-raw",
            title: "raw",
            desc: "raw",
            from: w.from,
            to: w.to,
            tick: w.range.tick(),
            unit: Unit::PerMinute,
            lines: &lines,
        };
        let t = std::time::Instant::now();
        let raw_svg = svg::render(&spec).unwrap();
        let took_raw = t.elapsed();
        eprintln!(
            "charts over 7 days of per-minute points (10,080): calls+errors+latency {took_calls:?}, cpu+memory {took_res:?}, \
             5 charts {bytes} bytes of SVG; one chart of all 10,080 points unbucketed: {took_raw:?}, {} bytes",
            raw_svg.len()
        );
        for f in calls.iter().chain(&one) {
            assert!(f.empty.is_none(), "{}", f.id);
            // 360 buckets of 28 minutes: each point is "x,y " — far under the raw size.
            assert!(f.svg.len() < 20_000, "{}: {} bytes", f.id, f.svg.len());
        }
        assert!(calls[0].summary.contains("in the last 7 days"));
    }
}
