//! Prometheus metrics of the control plane, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;

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
}

impl Metrics {
    pub fn new() -> Metrics {
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
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
