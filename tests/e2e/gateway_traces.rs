//! OpenTelemetry traces: with `TOOLBELT_OTLP_ENDPOINT` set, a tool call made with the
//! official Python SDK under an incoming W3C `traceparent` leaves one span per hop —
//! the gateway's request, the call, its upstream request, the DTMA's bridge — in the
//! caller's trace, each the child of the one before, posted as OTLP/HTTP protobuf to a
//! receiver decoding them with the `opentelemetry-proto` types.

use crate::gw_setup::{WAIT, World};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};
use toolbelt_e2e::eventually::{eventually, when};
use toolbelt_gateway::GatewayConfig;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

type Spans = Arc<Mutex<Vec<Span>>>;

/// A collector's `/v1/traces`: every span it is sent, kept.
async fn receiver() -> (String, Spans) {
    async fn accept(State(spans): State<Spans>, body: Bytes) -> &'static str {
        let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
        let mut all = spans.lock().unwrap();
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                all.extend(ss.spans);
            }
        }
        ""
    }
    let spans = Spans::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(accept))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Any::StringValue(v) => Some(v.clone()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_is_one_trace_from_the_agents_traceparent_to_the_dtma() {
    let (collector, spans) = receiver().await;
    let w = World::with(GatewayConfig::default(), |o| {
        o.otlp_endpoint = Some(collector.clone());
    })
    .await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let mut sdk = toolbelt_e2e::sdk::Sdk::connect_with_headers(
        &w.ann_bot.mcp_url,
        &w.ann_bot.token,
        "legacy",
        &[("traceparent", traceparent.as_str())],
    )
    .await;
    let r = sdk.call("tools__echo", json!({ "text": "traced" })).await;
    assert_eq!(r["ok"], true, "{r}");
    sdk.quit().await;

    // The batch processor posts every few seconds.
    let all = eventually("the call's spans at the collector", WAIT, async || {
        let s = spans.lock().unwrap().clone();
        let names: Vec<_> = s.iter().map(|s| s.name.clone()).collect();
        let done = ["tools/call", "upstream tools/call", "dtma /mcp/{server}"]
            .iter()
            .all(|n| names.iter().any(|m| m == n));
        when(names, done).map(|_| s)
    })
    .await;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let one = |name: &str| {
        let mut hits: Vec<_> = all
            .iter()
            .filter(|s| s.name == name && hex(&s.trace_id) == TRACE_ID)
            .collect();
        assert!(!hits.is_empty(), "{name} in the caller's trace: {all:#?}");
        hits.remove(0).clone()
    };
    let call = one("tools/call");
    let upstream = one("upstream tools/call");
    let bridge = one("dtma /mcp/{server}");
    // The gateway's request span of that call: the call's parent, the agent's span its own.
    let request = all
        .iter()
        .find(|s| s.span_id == call.parent_span_id)
        .unwrap_or_else(|| panic!("the call's parent span: {all:#?}"));
    assert_eq!(request.name, "POST /mcp");
    assert_eq!(hex(&request.trace_id), TRACE_ID);
    assert_eq!(
        hex(&request.parent_span_id),
        PARENT_ID,
        "the incoming parent"
    );
    assert_eq!(upstream.parent_span_id, call.span_id);
    assert_eq!(
        bridge.parent_span_id, upstream.span_id,
        "propagated to the DTMA"
    );

    assert_eq!(attr(&call, "toolbelt.agent").as_deref(), Some("ann-bot"));
    assert_eq!(attr(&call, "toolbelt.server").as_deref(), Some("tools"));
    assert_eq!(attr(&call, "toolbelt.toolbox").as_deref(), Some("alpha"));
    assert_eq!(attr(&call, "toolbelt.tool").as_deref(), Some("echo"));
    assert_eq!(attr(&call, "toolbelt.outcome").as_deref(), Some("success"));
    assert_eq!(attr(&bridge, "toolbelt.server").as_deref(), Some("tools"));
    // Never arguments or results.
    for s in &all {
        for kv in &s.attributes {
            let v = format!("{:?}", kv.value);
            assert!(
                !v.contains("traced"),
                "{} carries the arguments: {v}",
                s.name
            );
        }
    }
}
