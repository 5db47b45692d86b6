//! A small raw JSON-RPC client for MCP endpoints — the DTMA's `/mcp/{server}` and the
//! gateway's `/mcp` — in a legacy session or in the stateless 2026-07-28 revision (the
//! official SDK is used in the Python interop tests; this one lets tests see the wire).

use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub struct Mcp {
    http: reqwest::Client,
    pub url: String,
    token: String,
    session: Option<String>,
    /// 2026-07-28: no session; each request carries its `_meta` and `Mcp-*` headers.
    stateless: bool,
    next: AtomicI64,
}

/// The `_meta` every stateless request carries.
fn stateless_meta() -> Value {
    json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "e2e", "version": "1" } })
}

impl Mcp {
    pub fn new(url: &str, token: &str) -> Mcp {
        let http = toolbelt_net::http::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Mcp {
            http,
            url: url.into(),
            token: token.into(),
            session: None,
            stateless: false,
            next: AtomicI64::new(1),
        }
    }

    /// A client of the stateless 2026-07-28 revision (no `initialize`, no session).
    pub fn stateless(url: &str, token: &str) -> Mcp {
        Mcp {
            stateless: true,
            ..Mcp::new(url, token)
        }
    }

    /// Opens a new connection for every request (behind a round-robin proxy, consecutive
    /// requests then reach different replicas).
    pub fn fresh_connections(mut self) -> Mcp {
        self.http = toolbelt_net::http::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        self
    }

    /// Posts one message; returns (HTTP status, headers, body text).
    pub async fn post_raw(
        &self,
        body: String,
        accept: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("accept", accept);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if self.stateless {
            req = req.header("mcp-protocol-version", "2026-07-28");
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                if let Some(m) = v["method"].as_str() {
                    req = req.header("mcp-method", m);
                }
                if let Some(n) = v["params"]["name"].as_str() {
                    req = req.header("mcp-name", n);
                }
            }
        }
        let res = req.body(body).send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.text().await.unwrap())
    }

    pub async fn initialize(&mut self) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "e2e", "version": "1" } } });
        let (status, headers, text) = self
            .post_raw(body.to_string(), "application/json, text/event-stream")
            .await;
        assert_eq!(status, 200, "{text}");
        self.session = headers
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(
            self.session.is_some(),
            "initialize answers with a session id"
        );
        self.post_raw(
            json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string(),
            "application/json",
        )
        .await;
        serde_json::from_str(&text).unwrap()
    }

    /// A request answered as JSON (relayed messages are skipped when SSE is used).
    pub async fn request(&self, method: &str, mut params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if self.stateless {
            params["_meta"] = stateless_meta();
        }
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let (status, headers, text) = self
            .post_raw(body.to_string(), "application/json, text/event-stream")
            .await;
        assert!(status == 200, "{method}: {status} {text}");
        let ct = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let v: Value = if ct.starts_with("text/event-stream") {
            sse_messages(&text)
                .into_iter()
                .find(|m| m.get("id") == Some(&json!(id)))
                .expect("a final response in the stream")
        } else {
            serde_json::from_str(&text).unwrap()
        };
        assert_eq!(v["id"], json!(id), "replies carry the caller's id");
        v
    }

    pub async fn tool(&self, name: &str, args: Value) -> Value {
        self.request("tools/call", json!({ "name": name, "arguments": args }))
            .await
    }
}

/// The JSON messages of an SSE body.
pub fn sse_messages(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str(d).ok())
        })
        .collect()
}
