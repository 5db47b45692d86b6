//! The fast path (`tools/call` and `tools/list` of a legacy session served on the
//! request's own task) answers exactly what rmcp's handler answers: the same requests,
//! good and bad, sent to a gateway with the fast path and to one without, get the same
//! status and the same JSON-RPC reply.

use crate::gw_setup::World;
use serde_json::{Value, json};
use toolbelt_gateway::GatewayConfig;

/// An initialized legacy session of Ann's agent; its id.
async fn session(http: &reqwest::Client, url: &str, token: &str) -> String {
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "raw", "version": "1" } } });
    let res = post(http, url, token, None, init.to_string()).await;
    assert_eq!(res.0, 200, "{}", res.1);
    let sid = res.2.expect("a session id");
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    post(http, url, token, Some(&sid), note.to_string()).await;
    sid
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    session: Option<&str>,
    body: String,
) -> (u16, Value, Option<String>) {
    let mut r = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(s) = session {
        r = r
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let sid = res
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(json!(text)),
        sid,
    )
}

/// What a gateway answers to each body, on a fresh connection each (a 413 closes it).
async fn answers(fast: bool, bodies: &[String]) -> Vec<(u16, Value)> {
    let w = World::new(GatewayConfig {
        fast_path: fast,
        direct_upstream: fast,
        max_body_bytes: 64 * 1024,
        page_size: 2,
        ..Default::default()
    })
    .await;
    for g in [
        json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha" }),
        json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha", "tool": "crash", "rule": "deny" }),
    ] {
        w.as_ann("POST", "/api/v1/grants", g).await;
    }
    let url = w.plane.mcp_url();
    let http = toolbelt_net::http::client();
    let sid = session(&http, &url, &w.ann_bot.token).await;
    let mut out = Vec::new();
    for b in bodies {
        let fresh = toolbelt_net::http::client();
        let (status, mut v, _) = post(&fresh, &url, &w.ann_bot.token, Some(&sid), b.clone()).await;
        // Latency is the one thing allowed to differ.
        if let Some(m) = v.pointer_mut("/result/_meta") {
            m.take();
        }
        out.push((status, v));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fast_path_answers_good_and_bad_requests_exactly_as_rmcp_does() {
    let call = |id: i64, params: Value| {
        json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params }).to_string()
    };
    let list = |id: i64, params: Value| {
        json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params }).to_string()
    };
    let bodies = vec![
        // Malformed JSON-RPC, batches, wrong types, oversize.
        "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".to_string(),
        json!([{ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "tools__echo" } }]).to_string(),
        json!({ "jsonrpc": "2.0", "id": 3 }).to_string(),
        json!({ "jsonrpc": "1.0", "id": 4, "method": "tools/call" }).to_string(),
        call(5, json!({ "name": 5 })),
        call(6, json!({ "name": "tools__echo", "arguments": "text" })),
        json!({ "jsonrpc": "2.0", "id": null, "method": "tools/call", "params": { "name": "tools__echo" } }).to_string(),
        call(7, json!({ "name": "tools__echo", "arguments": { "text": "x".repeat(70 * 1024) } })),
        // The gateway's own decisions.
        call(8, json!({ "name": "nope__echo" })),
        call(9, json!({ "name": "tools__crash" })),
        call(10, json!({ "name": "tools__add", "arguments": { "a": "one", "b": 2 } })),
        // The upstream's answers: a result, a tool error, a protocol error.
        call(11, json!({ "name": "tools__echo", "arguments": { "text": "hi" } })),
        call(12, json!({ "name": "tools__fail", "arguments": { "mode": "tool" } })),
        call(13, json!({ "name": "tools__fail", "arguments": { "mode": "protocol" } })),
        json!({ "jsonrpc": "2.0", "id": "s", "method": "tools/call", "params": { "name": "tools__echo", "arguments": { "text": "string id" } } }).to_string(),
        // Listings: every page, and cursors that are not ours.
        list(14, json!({})),
        list(15, json!({ "cursor": "2" })),
        list(16, json!({ "cursor": "1" })),
        list(17, json!({ "cursor": "abc" })),
        list(18, json!({ "cursor": "999" })),
    ];
    let fast = answers(true, &bodies).await;
    let rmcp = answers(false, &bodies).await;
    for ((b, f), r) in bodies.iter().zip(&fast).zip(&rmcp) {
        assert_eq!(f, r, "fast path ≠ rmcp for {}", &b[..b.len().min(120)]);
    }
    // And they are the table's codes.
    let code = |i: usize| fast[i].1["error"]["code"].as_i64();
    assert_eq!((fast[0].0, code(0)), (400, Some(-32700)), "malformed JSON");
    assert_eq!((fast[1].0, code(1)), (400, Some(-32600)), "a batch");
    assert_eq!(code(2), Some(-32600), "not a request");
    assert_eq!(code(3), Some(-32600), "not JSON-RPC 2.0");
    assert_eq!(fast[7].0, 413, "over max_body_bytes");
    assert_eq!(code(8), Some(-32602), "unknown tool: {}", fast[8].1);
    assert_eq!(code(9), Some(-32602), "a denied tool is an unknown one");
    assert_eq!(fast[10].1["error"]["data"]["field"], "arguments.a");
    assert_eq!(
        fast[11].1["result"]["structuredContent"]["text"], "hi",
        "{}",
        fast[11].1
    );
    assert_eq!(fast[12].1["result"]["isError"], true);
    assert_eq!(code(13), Some(-32000), "the upstream's own error passes");
    assert!(fast[15].1["result"]["tools"].is_array());
    assert_eq!(
        code(18),
        Some(-32602),
        "a cursor that is not an offset: {}",
        fast[18].1
    );
}
