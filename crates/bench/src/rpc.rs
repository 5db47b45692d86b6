//! A lean JSON-RPC client for Streamable HTTP MCP endpoints (legacy sessions), so the
//! load generator costs little next to what it measures: one reqwest client per target,
//! bodies serialized once per call, replies parsed once.

use anyhow::{Context, Result, bail};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub const PROTOCOL: &str = "2025-11-25";
const SESSION: &str = "mcp-session-id";

/// A plain HTTP/1.1 client for one target: no Nagle, enough idle connections for c=32.
pub fn http() -> reqwest::Client {
    tuned(toolbelt_net::http::builder())
}

/// [`http`] trusting the CA in `ca_file` too (a gateway serving TLS with a test CA).
pub fn https(ca_file: &std::path::Path) -> Result<reqwest::Client> {
    let outbound = toolbelt_net::http::Outbound::with_ca_file(ca_file)?;
    Ok(tuned(outbound.builder()))
}

fn tuned(b: reqwest::ClientBuilder) -> reqwest::Client {
    b.tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client builds")
}

/// One MCP session at one URL.
pub struct Rpc {
    http: reqwest::Client,
    url: String,
    auth: HeaderValue,
    session: Option<HeaderValue>,
    next: AtomicI64,
}

impl Rpc {
    /// Opens a legacy session: `initialize`, then `notifications/initialized`.
    pub async fn connect(http: &reqwest::Client, url: &str, token: &str) -> Result<Rpc> {
        let mut rpc = Rpc {
            http: http.clone(),
            url: url.to_string(),
            auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
            session: None,
            next: AtomicI64::new(1),
        };
        let params = json!({ "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": { "name": "toolbelt-bench", "version": "1" } });
        let res = rpc
            .post(&json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params }))
            .await?;
        rpc.session = res.headers().get(SESSION).cloned();
        let reply = parse(res, 0).await?;
        anyhow::ensure!(
            reply.get("result").is_some(),
            "initialize at {url}: {reply}"
        );
        rpc.post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await?;
        Ok(rpc)
    }

    async fn post(&self, msg: &Value) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .post(&self.url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL);
        if let Some(s) = &self.session {
            req = req.header(SESSION, s.clone());
        }
        let res = req.body(serde_json::to_vec(msg)?).send().await?;
        let status = res.status();
        if !status.is_success() {
            bail!(
                "{}: {status} {}",
                self.url,
                res.text().await.unwrap_or_default()
            );
        }
        Ok(res)
    }

    /// One request; its `result`, or an error for a JSON-RPC error.
    pub async fn request(&self, method: &str, params: &Value) -> Result<Value> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut reply = parse(self.send(method, id, params).await?, id).await?;
        match reply.get_mut("result") {
            Some(r) => Ok(r.take()),
            None => bail!("{method} at {}: {reply}", self.url),
        }
    }

    async fn send(&self, method: &str, id: i64, params: &Value) -> Result<reqwest::Response> {
        let msg = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.post(&msg).await
    }

    /// One request's reply body as it came (to time the client's own parsing apart).
    pub async fn raw(&self, method: &str, params: &Value) -> Result<Vec<u8>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(self.send(method, id, params).await?.bytes().await?.to_vec())
    }

    /// `tools/call` that must succeed (a tool error counts as a failure).
    pub async fn call_tool(&self, params: &Value) -> Result<()> {
        let r = self.request("tools/call", params).await?;
        anyhow::ensure!(r["isError"] != true, "tools/call at {}: {r}", self.url);
        Ok(())
    }

    /// Every page of `tools/list`: the number of tools and of pages. Each page is read
    /// only as far as counting its tools needs (no JSON tree of a thousand definitions:
    /// the loadgen must cost little next to what it measures).
    pub async fn list_tools(&self) -> Result<(usize, usize)> {
        use serde::de::IgnoredAny;
        #[derive(serde::Deserialize)]
        struct Page {
            result: Option<Listed>,
            error: Option<Value>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Listed {
            tools: Vec<IgnoredAny>,
            next_cursor: Option<String>,
        }
        let (mut tools, mut pages) = (0, 0);
        let mut params = json!({});
        loop {
            let body = self.raw("tools/list", &params).await?;
            let page: Page = serde_json::from_slice(&body)
                .with_context(|| format!("tools/list at {}: not a JSON reply", self.url))?;
            let Some(r) = page.result else {
                bail!("tools/list at {}: {:?}", self.url, page.error);
            };
            tools += r.tools.len();
            pages += 1;
            match r.next_cursor {
                Some(c) => params = json!({ "cursor": c }),
                None => return Ok((tools, pages)),
            }
        }
    }
}

/// The reply with `id`: the JSON body, or the matching event of an SSE body.
async fn parse(res: reqwest::Response, id: i64) -> Result<Value> {
    let sse = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let body = res.bytes().await?;
    if !sse {
        return Ok(serde_json::from_slice(&body)?);
    }
    let text = std::str::from_utf8(&body)?;
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim_start()).ok())
        .find(|v| v["id"] == id)
        .context("no reply in the event stream")
}
