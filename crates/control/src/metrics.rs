//! Prometheus metrics of the control plane, served at `/metrics`: the process's own
//! (HTTP requests, logins…) to anyone, and the gateway's tool calls
//! ([`crate::call_metrics`], labelled with agents', servers' and tools' names) to an
//! admin or a scraper presenting `TOOLBELT_METRICS_TOKEN`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/api/v1/agents/{agent}`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub auth_failures: Counter,
    pub audit_events: Counter,
    /// argon2 runs (hashes and verifications).
    pub password_hashes: Counter,
    /// Logins refused by the throttle.
    pub login_throttled: Counter,
    /// Tool calls (the store feeds them once [`crate::AppState::new`] connects it).
    pub calls: Arc<crate::call_metrics::CallMetrics>,
}

impl Metrics {
    /// `max_series`: the cap on tool-call label combinations.
    pub fn new(max_series: usize) -> Metrics {
        let mut registry = Registry::with_prefix("toolbelt");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let auth_failures = Counter::default();
        let audit_events = Counter::default();
        let password_hashes = Counter::default();
        let login_throttled = Counter::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests with refused credentials",
            auth_failures.clone(),
        );
        registry.register(
            "audit_failure_events",
            "Failed or denied mutations recorded in the audit log",
            audit_events.clone(),
        );
        registry.register(
            "password_hashes",
            "argon2 runs (password hashes and verifications)",
            password_hashes.clone(),
        );
        registry.register(
            "login_throttled",
            "Login attempts refused by the throttle (429)",
            login_throttled.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            auth_failures,
            audit_events,
            password_hashes,
            login_throttled,
            calls: Arc::new(crate::call_metrics::CallMetrics::new(max_series)),
        }
    }

    /// The text exposition; with `calls`, the tool-call series too.
    pub fn encode(&self, calls: bool) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let _ = encode_registry(&mut out, &reg);
        if calls {
            let _ = encode_registry(&mut out, self.calls.registry());
        }
        let _ = encode_eof(&mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(crate::call_metrics::DEFAULT_MAX_SERIES)
    }
}
