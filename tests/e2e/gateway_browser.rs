//! `/mcp` and browsers: a request carrying an `Origin` that is neither the public URL's
//! nor allow-listed is refused with 403 and a JSON-RPC error, before the token is even
//! looked at; a request without `Origin` (not a browser) passes; a `Host` outside the
//! public host and loopback (a DNS-rebound name) is refused the same way.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::plane::Plane;
use toolbelt_gateway::GatewayConfig;

async fn post(plane: &Plane, token: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut req = toolbelt_net::http::client()
        .post(plane.mcp_url())
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "web", "version": "1" } } });
    let res = req.body(init.to_string()).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .or_else(|_| {
            let data = text
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .unwrap_or("null");
            serde_json::from_str(data.trim())
        })
        .unwrap_or(Value::String(text));
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_origins_and_foreign_hosts_are_refused_with_json_errors() {
    let gateway = GatewayConfig {
        allowed_origins: vec!["https://app.example.com".into()],
        ..GatewayConfig::default()
    };
    let plane = Plane::start_gateway(Duration::from_millis(300), gateway).await;
    let token = plane
        .ok("POST", "/api/v1/agents", json!({ "name": "web" }))
        .await["token"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = post(&plane, &token, &[]).await;
    assert_eq!(s, 200, "no Origin: a non-browser client: {v}");
    let own = plane.url.clone();
    for ok in [own.as_str(), "https://app.example.com"] {
        let (s, v) = post(&plane, &token, &[("origin", ok)]).await;
        assert_eq!(s, 200, "{ok}: {v}");
    }
    for bad in ["https://evil.example", "null", "http://localhost:1"] {
        let (s, v) = post(&plane, &token, &[("origin", bad)]).await;
        assert_eq!(s, 403, "{bad}: {v}");
        assert_eq!(v["error"]["code"], -32012, "{bad}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Origin not allowed"),
            "{v}"
        );
    }
    // Refused before the token is looked at: no way to probe tokens from a page.
    let (s, v) = post(
        &plane,
        "tba_not-a-token",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!((s, v["error"]["code"].as_i64()), (403, Some(-32012)), "{v}");
    let port = plane.url.rsplit(':').next().unwrap().to_string();
    let rebound = format!("rebind.evil.example:{port}");
    let (s, v) = post(&plane, &token, &[("host", &rebound)]).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], -32013, "{v}");
    let local = format!("localhost:{port}");
    let (s, v) = post(&plane, &token, &[("host", &local)]).await;
    assert_eq!(s, 200, "loopback names are answered: {v}");
}
