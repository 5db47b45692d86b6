//! OpenTelemetry traces over OTLP/HTTP (protobuf), off unless `TOOLBELT_OTLP_ENDPOINT`
//! names a collector. One span per hop of a tool call — the gateway's request, the call,
//! its upstream request, the DTMA's bridge — linked by W3C `traceparent`: an agent's
//! incoming one is honoured, and every upstream request carries ours.
//!
//! Spans carry names (agent, server, tool) and outcomes, never arguments or results.
//! Everything here is a no-op costing one atomic load while tracing is off. Spans are
//! batched by the SDK's processor (its own thread) and posted by [`Exporter`] through a
//! client of [`crate::http`] on the runtime that started tracing.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use prost::Message;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use opentelemetry::Context as TraceContext;
pub use opentelemetry::KeyValue as Attribute;
pub use opentelemetry::trace::SpanKind as Kind;

static ON: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are recorded (a collector is configured in this process).
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error("TOOLBELT_OTLP_ENDPOINT: {0} is not an http(s) URL")]
    Endpoint(String),
    #[error("TOOLBELT_OTLP_ENDPOINT: {0}")]
    Client(String),
}

/// The URL spans are posted to: `endpoint` as given when it ends in `/v1/traces`, else
/// with it appended (as `OTEL_EXPORTER_OTLP_ENDPOINT` is read).
pub fn traces_url(endpoint: &str) -> Result<String, OtelError> {
    let e = endpoint.trim();
    let parsed = url::Url::parse(e).map_err(|_| OtelError::Endpoint(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(OtelError::Endpoint(e.to_string()));
    }
    Ok(if e.trim_end_matches('/').ends_with("/v1/traces") {
        e.to_string()
    } else {
        format!("{}/v1/traces", e.trim_end_matches('/'))
    })
}

/// Starts exporting this process's spans to `endpoint` as `service` (the first call in a
/// process wins: `toolbelt up` runs the control plane and a DTMA in one). Must be called
/// within a Tokio runtime, which carries the exports.
pub fn init(
    endpoint: &str,
    service: &'static str,
    outbound: &crate::http::Outbound,
) -> Result<(), OtelError> {
    if PROVIDER.get().is_some() {
        return Ok(());
    }
    let url = traces_url(endpoint)?;
    let http = outbound
        .builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| OtelError::Client(crate::http::describe(&e)))?;
    let exporter = Exporter {
        url,
        http,
        runtime: tokio::runtime::Handle::current(),
        resource: Default::default(),
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    if PROVIDER.set(provider.clone()).is_ok() {
        opentelemetry::global::set_tracer_provider(provider);
        ON.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// Sends what is batched and stops exporting (at process end). Blocks up to a few
/// seconds: call it off the runtime's worker threads or with the runtime's permission.
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        ON.store(false, Ordering::Relaxed);
        if let Err(e) = p.shutdown() {
            tracing::warn!(error = %e, "the last spans could not be exported");
        }
    }
}

/// Posts batches as OTLP/HTTP protobuf.
#[derive(Debug)]
struct Exporter {
    url: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    resource: opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema,
}

impl SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        let body = ExportTraceServiceRequest {
            resource_spans:
                opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(
                    batch,
                    &self.resource,
                ),
        }
        .encode_to_vec();
        let post = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body);
        // The processor's thread has no reactor: the request is sent from the runtime.
        let sent = self
            .runtime
            .spawn(async move { post.send().await.and_then(|r| r.error_for_status()) });
        match sent.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(OTelSdkError::InternalFailure(format!(
                "OTLP export failed: {}",
                crate::http::describe(&e)
            ))),
            Err(e) => Err(OTelSdkError::InternalFailure(e.to_string())),
        }
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = resource.into();
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct Out<'a>(&'a mut Vec<(&'static str, String)>);

impl Injector for Out<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = match key {
            "traceparent" => "traceparent",
            "tracestate" => "tracestate",
            _ => return,
        };
        self.0.push((key, value));
    }
}

/// The caller's trace (W3C `traceparent`, `tracestate`) from request headers; the empty
/// context when there is none or tracing is off.
pub fn incoming(headers: &http::HeaderMap) -> Context {
    if !enabled() {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// The headers that carry `cx`'s span to the next hop (none when tracing is off).
pub fn outgoing(cx: &Context) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if enabled() && cx.has_active_span() {
        TraceContextPropagator::new().inject_context(cx, &mut Out(&mut out));
    }
    out
}

/// A span in progress; ended (and batched for export) when dropped or [`Span::end`]ed.
/// `Span::none()` when tracing is off, costing nothing more.
pub struct Span(Option<Context>);

impl Span {
    pub fn none() -> Span {
        Span(None)
    }

    /// A span named `name`, child of `parent`'s span (a root, keeping `parent`'s remote
    /// trace id, when `parent` carries only an incoming `traceparent`).
    pub fn start(
        name: impl Into<std::borrow::Cow<'static, str>>,
        kind: SpanKind,
        parent: &Context,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        if !enabled() {
            return Span::none();
        }
        let tracer = opentelemetry::global::tracer("toolbelt");
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes())
            .start_with_context(&tracer, parent);
        Span(Some(parent.with_span(span)))
    }

    /// This span as the parent of the next (the empty context when there is none).
    pub fn context(&self) -> Context {
        self.0.clone().unwrap_or_default()
    }

    pub fn set(&self, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(cx) = &self.0 {
            cx.span().set_attributes(attributes());
        }
    }

    /// Marks the span failed, saying why.
    pub fn fail(&self, why: impl FnOnce() -> String) {
        if let Some(cx) = &self.0 {
            cx.span().set_status(Status::error(why()));
        }
    }

    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(cx) = self.0.take() {
            cx.span().end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_appended_once() {
        assert_eq!(
            traces_url("http://collector:4318").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://c.example/otlp/").unwrap(),
            "https://c.example/otlp/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/v1/traces").unwrap(),
            "http://c:4318/v1/traces"
        );
        for bad in ["collector:4318", "ftp://c/x", "not a url"] {
            assert!(traces_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn off_nothing_is_read_or_sent() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = incoming(&h);
        assert!(!cx.span().span_context().is_valid());
        let s = Span::start("x", SpanKind::Internal, &cx, Vec::new);
        assert!(s.0.is_none());
        assert!(outgoing(&s.context()).is_empty());
    }
}
