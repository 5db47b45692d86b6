//! What metrics and tracing cost one call, in process (stable where a 2-core machine's
//! end-to-end timings are not): the metrics work of one `tool.call` event (its sample,
//! the per-minute meter, the Prometheus counter and histogram, as the store feeds them
//! after each commit), and the three spans of a remote call with tracing off and with
//! OTLP export on (to a local sink: the SDK's batching and export run on their own
//! thread and task, so the caller's part is what is timed here).

use anyhow::Result;
use serde_json::json;
use std::time::{Duration, Instant};
use toolbelt_control::call_metrics::CallMetrics;
use toolbelt_model::ServerId;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_net::otel::{self, Attribute, Kind, Span};
use toolbelt_store::metrics::Meter;

fn call_event(server: &ServerId, i: usize) -> NewAuditEvent {
    NewAuditEvent {
        actor_kind: ActorKind::Agent,
        actor_id: Some("agt_0123456789abcdef".into()),
        owner_id: None,
        action: AuditAction::ToolCall,
        target_kind: TargetKind::Tool,
        target_id: Some(format!("{server}/echo")),
        outcome: Outcome::Success,
        detail: json!({
            "tool": "rfx__echo", "arguments_sha256": "00", "latency_us": 150 + i % 100,
            "agent_name": "caller", "server": server, "server_name": "rfx",
            "toolbox": "far", "upstream_tool": "echo",
        }),
    }
}

/// Median of `rounds` rounds of `per` runs of `f`, per run.
fn per_run(rounds: usize, per: usize, mut f: impl FnMut(usize)) -> Duration {
    let mut t: Vec<Duration> = (0..rounds)
        .map(|r| {
            let s = Instant::now();
            for i in 0..per {
                f(r * per + i);
            }
            s.elapsed() / per as u32
        })
        .collect();
    t.sort();
    t[t.len() / 2]
}

/// The spans of one remote call as the gateway makes them (request, call, upstream
/// request with its `traceparent` headers), with names and outcome set.
fn call_spans() {
    let headers = http::HeaderMap::new();
    let parent = otel::incoming(&headers);
    let req = Span::start("POST /mcp", Kind::Server, &parent, || {
        vec![Attribute::new("http.request.method", "POST")]
    });
    let call = Span::start("tools/call", Kind::Internal, &req.context(), || {
        vec![
            Attribute::new("mcp.method.name", "tools/call"),
            Attribute::new("toolbelt.agent_id", "agt_0123456789abcdef"),
        ]
    });
    let up = Span::start("upstream tools/call", Kind::Client, &call.context(), || {
        vec![
            Attribute::new("toolbelt.server", "rfx"),
            Attribute::new("toolbelt.upstream", "remote"),
        ]
    });
    std::hint::black_box(otel::outgoing(&up.context()));
    drop(up);
    call.set(|| {
        vec![
            Attribute::new("toolbelt.outcome", "success"),
            Attribute::new("toolbelt.agent", "caller"),
            Attribute::new("toolbelt.toolbox", "far"),
            Attribute::new("toolbelt.server", "rfx"),
            Attribute::new("toolbelt.tool", "echo"),
        ]
    });
}

pub async fn run(calls: usize) -> Result<()> {
    let (rounds, per) = (9, calls.max(9) / 9);
    let server = ServerId::generate();
    let events: Vec<_> = (0..64).map(|i| call_event(&server, i)).collect();
    let meter = Meter::default();
    let prom = CallMetrics::new(toolbelt_control::call_metrics::DEFAULT_MAX_SERIES);
    let metrics = per_run(rounds, per, |i| {
        let s = Meter::sample_of(&events[i % events.len()]).expect("a call sample");
        meter.record(1_700_000_000_000, &s);
        prom.observe(&s);
    });
    let off = per_run(rounds, per, |_| call_spans());
    let (sink, received) = crate::otlp_sink::start().await?;
    otel::init(
        &sink,
        "toolbelt-bench",
        &toolbelt_net::http::Outbound::default(),
    )?;
    let on = per_run(rounds, per, |_| call_spans());
    // Let the batch processor export at least once (it posts every few seconds).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let exports = received.exports.load(std::sync::atomic::Ordering::Relaxed);
    println!("## metrics and tracing per call (in process, median of {rounds} rounds of {per})\n");
    println!("| what | per call |\n|---|---|");
    println!(
        "| metrics: a `tool.call` event's sample, the per-minute meter, the Prometheus counter and histogram | {:.2} µs |",
        metrics.as_secs_f64() * 1e6
    );
    println!(
        "| tracing off: the three spans of a remote call (request, call, upstream request) | {:.2} µs |",
        off.as_secs_f64() * 1e6
    );
    println!(
        "| tracing on (OTLP/HTTP to a local sink, {exports} exports received): the same three spans, `traceparent` made | {:.2} µs |",
        on.as_secs_f64() * 1e6
    );
    println!();
    Ok(())
}
