//! Tool calls on `/metrics`: a counter per agent, server, tool and outcome, and a latency
//! histogram per server and tool. Fed by the store at the point its per-minute meter is
//! (every `tool.call` audit event, after it committed, on the audit writer's task — not
//! on the caller's), so the dashboard's charts and these series count the same calls.
//!
//! Label values are names users chose, so the number of series is capped: past
//! [`CallMetrics::max_series`] distinct (agent, toolbox, server, tool) combinations, calls
//! of a new combination are counted with every one of those labels `other` (and in
//! `toolbelt_tool_call_series_capped_total`). Combinations already admitted keep their
//! own series until the process restarts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::Mutex;
use toolbelt_store::metrics::{CallSink, Sample};

/// The label value of calls beyond the cap.
pub const OTHER: &str = "other";

/// The default cap (`TOOLBELT_METRICS_MAX_SERIES`).
pub const DEFAULT_MAX_SERIES: usize = 5000;

/// Upper bounds in seconds: 100 µs to the default call timeout (300 s), about three per
/// decade — a gateway hop is sub-millisecond, a slow tool minutes.
const BUCKETS: [f64; 19] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The agent's name (unique per owner) and id.
    pub agent: String,
    pub agent_id: String,
    pub toolbox: String,
    pub server: String,
    /// The server's own tool name.
    pub tool: String,
    /// `success`, `failure` (the tool or the server reported an error), `denied`, or the
    /// gateway's error name (`upstream_timeout`, `rate_limited`…).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub toolbox: String,
    pub server: String,
    pub tool: String,
}

/// Who a series is about, outcome aside: what the cap counts.
type Key = (String, String, String, String, String);

pub struct CallMetrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<ToolLabels, Histogram>,
    capped: Counter,
    admitted: Mutex<HashSet<Key>>,
    max_series: usize,
}

impl CallMetrics {
    pub fn new(max_series: usize) -> CallMetrics {
        let mut registry = Registry::with_prefix("toolbelt");
        let calls = Family::<CallLabels, Counter>::default();
        let latency = Family::<ToolLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(BUCKETS.iter().copied())
        });
        let capped = Counter::default();
        registry.register(
            "tool_calls",
            "Tool calls through the gateway, per agent, server, tool and outcome",
            calls.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Tool call latency at the gateway (authorization to the upstream's answer), per server and tool",
            latency.clone(),
        );
        registry.register(
            "tool_call_series_capped",
            "Tool calls counted under the label value 'other' because the series cap was reached",
            capped.clone(),
        );
        CallMetrics {
            registry,
            calls,
            latency,
            capped,
            admitted: Mutex::new(HashSet::new()),
            max_series,
        }
    }

    pub fn max_series(&self) -> usize {
        self.max_series
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether `key` has (or may now get) series of its own.
    fn admit(&self, key: Key) -> bool {
        let mut admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        if admitted.contains(&key) {
            return true;
        }
        if admitted.len() >= self.max_series {
            return false;
        }
        admitted.insert(key);
        true
    }

    /// One finished call.
    pub fn observe(&self, s: &Sample) {
        let key = (
            s.agent.clone(),
            s.agent_id.clone(),
            s.toolbox.clone(),
            s.server_name.clone(),
            s.tool.clone(),
        );
        let (agent, agent_id, toolbox, server, tool) = if self.admit(key.clone()) {
            key
        } else {
            self.capped.inc();
            let o = || OTHER.to_string();
            (o(), o(), o(), o(), o())
        };
        self.latency
            .get_or_create(&ToolLabels {
                toolbox: toolbox.clone(),
                server: server.clone(),
                tool: tool.clone(),
            })
            .observe(s.latency_us as f64 / 1e6);
        self.calls
            .get_or_create(&CallLabels {
                agent,
                agent_id,
                toolbox,
                server,
                tool,
                outcome: s.outcome.clone(),
            })
            .inc();
    }
}

impl CallSink for CallMetrics {
    fn record(&self, s: &Sample) {
        self.observe(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolbelt_model::ServerId;

    fn sample(agent: &str, tool: &str, latency_us: u64, outcome: &str) -> Sample {
        Sample {
            server: ServerId::generate(),
            tool: tool.into(),
            latency_us,
            error: outcome != "success",
            agent_id: format!("agt_{agent}"),
            agent: agent.into(),
            toolbox: "alpha".into(),
            server_name: "tools".into(),
            outcome: outcome.into(),
        }
    }

    fn text(m: &CallMetrics) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, m.registry()).unwrap();
        out
    }

    /// The value of the one line starting with `prefix`.
    fn value(text: &str, prefix: &str) -> f64 {
        let lines: Vec<_> = text.lines().filter(|l| l.starts_with(prefix)).collect();
        assert_eq!(lines.len(), 1, "{prefix} in\n{text}");
        lines[0].rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn past_the_cap_new_combinations_count_as_other_and_old_ones_keep_theirs() {
        let m = CallMetrics::new(2);
        m.observe(&sample("a", "echo", 300, "success"));
        m.observe(&sample("a", "add", 300, "success"));
        // The cap is reached: a third combination, twice, and with another outcome.
        m.observe(&sample("b", "echo", 2_000, "success"));
        m.observe(&sample("c", "sleep", 2_000, "upstream_timeout"));
        // Admitted combinations keep their own series, a new outcome included.
        m.observe(&sample("a", "echo", 300, "rate_limited"));
        let t = text(&m);
        let own = r#"toolbelt_tool_calls_total{agent="a",agent_id="agt_a",toolbox="alpha",server="tools",tool="echo""#;
        assert_eq!(value(&t, &format!(r#"{own},outcome="success"}}"#)), 1.0);
        assert_eq!(
            value(&t, &format!(r#"{own},outcome="rate_limited"}}"#)),
            1.0
        );
        let other = r#"toolbelt_tool_calls_total{agent="other",agent_id="other",toolbox="other",server="other",tool="other""#;
        assert_eq!(value(&t, &format!(r#"{other},outcome="success"}}"#)), 1.0);
        assert_eq!(
            value(&t, &format!(r#"{other},outcome="upstream_timeout"}}"#)),
            1.0
        );
        assert_eq!(value(&t, "toolbelt_tool_call_series_capped_total"), 2.0);
        assert!(
            !t.contains(r#"agent="b""#) && !t.contains(r#"tool="sleep""#),
            "{t}"
        );
        // Histograms follow the same admission: echo's own, and other's two calls.
        let h = r#"toolbelt_tool_call_duration_seconds_count{toolbox="other",server="other",tool="other"}"#;
        assert_eq!(value(&t, h), 2.0);
        let h = r#"toolbelt_tool_call_duration_seconds_count{toolbox="alpha",server="tools",tool="echo"}"#;
        assert_eq!(value(&t, h), 2.0);
        // 300 µs falls in the 0.5 ms bucket and not the 0.25 ms one.
        let b = r#"toolbelt_tool_call_duration_seconds_bucket{le="0.00025",toolbox="alpha",server="tools",tool="echo"}"#;
        assert_eq!(value(&t, b), 0.0, "{t}");
        let b = r#"toolbelt_tool_call_duration_seconds_bucket{le="0.0005",toolbox="alpha",server="tools",tool="echo"}"#;
        assert_eq!(value(&t, b), 2.0, "{t}");
    }
}
