//! The in-process side of call metrics: every finished tool call is observed here (its
//! audit event, as the store appends it), aggregated per minute, server and tool into a
//! log-bucket latency histogram — bounded memory whatever the call rate — and turned into
//! [`CallMinute`] rows (calls, errors, p50, p99) by the flush.

use super::CallMinute;
use std::collections::HashMap;
use std::sync::Mutex;
use toolbelt_model::ServerId;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, Outcome};

/// Bucket `i` holds latencies up to `BASE_US * GROWTH^i`; the last one everything above.
const BUCKETS: usize = 96;
const BASE_US: f64 = 10.0;
const GROWTH: f64 = 1.2;

/// A latency histogram: about ±10 % resolution from 10 µs to hours.
#[derive(Clone)]
struct Histogram {
    counts: [u32; BUCKETS],
    total: u64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: [0; BUCKETS],
            total: 0,
        }
    }

    fn bucket(us: u64) -> usize {
        if (us as f64) <= BASE_US {
            return 0;
        }
        let i = ((us as f64) / BASE_US).ln() / GROWTH.ln();
        (i.ceil() as usize).min(BUCKETS - 1)
    }

    fn upper_us(i: usize) -> u64 {
        (BASE_US * GROWTH.powi(i as i32)).round() as u64
    }

    fn add(&mut self, us: u64) {
        let b = Self::bucket(us);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.total += 1;
    }

    /// The upper edge of the bucket holding the `q` quantile (0 < q ≤ 1).
    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Self::upper_us(i);
            }
        }
        Self::upper_us(BUCKETS - 1)
    }
}

struct Cell {
    latency: Histogram,
    errors: u64,
}

type Key = (i64, ServerId, String);

/// One finished call, as the meter (and any [`CallSink`]) needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub server: ServerId,
    pub tool: String,
    pub latency_us: u64,
    pub error: bool,
    /// The names a sink labels the call with (from the event's detail; empty when an
    /// older event lacks them).
    pub agent_id: String,
    pub agent: String,
    pub toolbox: String,
    pub server_name: String,
    /// `success`, the error's name from the gateway's table (`upstream_timeout`,
    /// `rate_limited`…), else the audit outcome (`failure`, `denied`).
    pub outcome: String,
}

/// Another consumer of every finished call, fed at the same point as the [`Meter`]
/// (after the call's audit event committed): the Prometheus exposition.
pub trait CallSink: Send + Sync {
    fn record(&self, s: &Sample);
}

/// Calls of this process, per minute, server and tool, not yet final.
#[derive(Default)]
pub struct Meter {
    cells: Mutex<HashMap<Key, Cell>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Meter")
    }
}

impl Meter {
    /// One finished call at `at_ms` (unix milliseconds).
    pub fn observe(&self, at_ms: i64, server: &ServerId, tool: &str, latency_us: u64, error: bool) {
        let key = (at_ms.div_euclid(60_000), server.clone(), tool.to_string());
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let cell = cells.entry(key).or_insert_with(|| Cell {
            latency: Histogram::new(),
            errors: 0,
        });
        cell.latency.add(latency_us);
        cell.errors += u64::from(error);
    }

    /// A `tool.call` audit event as the gateway writes it (`detail.server`,
    /// `detail.upstream_tool`, `detail.latency_us`) as a sample; calls that reached no
    /// server (an unknown tool) and other events are not server metrics.
    pub fn sample_of(ev: &NewAuditEvent) -> Option<Sample> {
        if ev.action != AuditAction::ToolCall {
            return None;
        }
        let d = &ev.detail;
        let server = ServerId::parse(d["server"].as_str()?)?;
        let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
        let outcome = match (d["error_kind"].as_str(), ev.outcome) {
            (_, Outcome::Success) => "success".to_string(),
            (Some(kind), _) => kind.to_string(),
            (None, o) => o.as_str().to_string(),
        };
        Some(Sample {
            server,
            tool: d["upstream_tool"].as_str()?.to_string(),
            latency_us: d["latency_us"].as_u64().unwrap_or(0),
            error: ev.outcome != Outcome::Success,
            agent_id: ev.actor_id.clone().unwrap_or_default(),
            agent: text("agent_name"),
            toolbox: text("toolbox"),
            server_name: text("server_name"),
            outcome,
        })
    }

    pub fn record(&self, at_ms: i64, s: &Sample) {
        self.observe(at_ms, &s.server, &s.tool, s.latency_us, s.error);
    }

    /// Every minute held, as rows; minutes before `current_minute` are final and leave
    /// memory, the current one stays (and is written again, whole, next time).
    pub fn drain(&self, current_minute: i64) -> Vec<CallMinute> {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let rows = cells
            .iter()
            .map(|((minute, server, tool), c)| CallMinute {
                minute: *minute,
                server_id: server.clone(),
                tool: tool.clone(),
                calls: c.latency.total,
                errors: c.errors,
                p50_us: c.latency.quantile(0.5),
                p99_us: c.latency.quantile(0.99),
            })
            .collect();
        cells.retain(|(minute, _, _), _| *minute >= current_minute);
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_within_a_bucket_of_the_truth() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.add(us * 100); // 100 µs … 100 ms, uniform
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((50_000.0..=60_000.0).contains(&p50), "p50 {p50}");
        assert!((99_000.0..=119_000.0).contains(&p99), "p99 {p99}");
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }

    #[test]
    fn minutes_are_kept_until_final_and_errors_counted() {
        let m = Meter::default();
        let s = ServerId::generate();
        m.observe(60_000 * 10 + 5, &s, "echo", 900, false);
        m.observe(60_000 * 10 + 9, &s, "echo", 1100, true);
        m.observe(60_000 * 11, &s, "echo", 500, false);
        let mut rows = m.drain(11);
        rows.sort_by_key(|r| r.minute);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].minute, rows[0].calls, rows[0].errors), (10, 2, 1));
        assert_eq!((rows[1].minute, rows[1].calls), (11, 1));
        let again = m.drain(12);
        assert_eq!(
            again.len(),
            1,
            "minute 10 left memory; 11 was written once more"
        );
        assert_eq!(again[0].minute, 11);
        assert!(m.drain(12).is_empty());
    }
}
