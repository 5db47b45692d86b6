//! A small client for the REST API: problem documents become [`ApiError`]s.

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::Value;
use std::fmt;

pub struct Client {
    http: reqwest::Client,
    pub base: String,
    token: Option<String>,
}

/// An error the server reported (exit code 1).
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub kind: String,
    pub detail: String,
    pub fields: Vec<(String, String)>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {})", self.detail, self.status, self.kind)?;
        for (field, msg) in &self.fields {
            write!(f, "\n  {field}: {msg}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Percent-encodes one path segment (names, ids, emails).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The server's problem document as an error (or the raw body when it sent none).
fn problem_of(status: u16, bytes: &[u8]) -> ApiError {
    let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let kind = doc["type"]
        .as_str()
        .map(|t| t.rsplit(':').next().unwrap_or(t).to_string())
        .unwrap_or_else(|| "error".into());
    let detail = doc["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    let fields = doc["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("").to_string(),
                        e["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ApiError {
        status,
        kind,
        detail,
        fields,
    }
}

/// The CLI's TLS roots: the platform's, plus `TOOLBELT_CA_FILE` (a control plane or DTMA
/// behind a private CA).
pub fn outbound() -> Result<toolbelt_net::http::Outbound> {
    match std::env::var_os("TOOLBELT_CA_FILE").filter(|f| !f.is_empty()) {
        Some(f) => {
            toolbelt_net::http::Outbound::with_ca_file(f.as_ref()).context("TOOLBELT_CA_FILE")
        }
        None => Ok(Default::default()),
    }
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Client> {
        let http = outbound()?
            .builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach Toolbelt at {}", self.base))?;
        let status = res.status();
        let bytes = res.bytes().await.context("the response was cut off")?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).context("the server sent invalid JSON");
        }
        Err(problem_of(status.as_u16(), &bytes).into())
    }

    /// Copies a streamed text response (logs) to stdout as it arrives.
    pub async fn stream_to_stdout(&self, path: &str) -> Result<()> {
        use std::io::Write;
        let mut req = self
            .http
            .get(format!("{}{}", self.base, path))
            .timeout(std::time::Duration::from_secs(365 * 24 * 3600));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut res = req
            .send()
            .await
            .with_context(|| format!("cannot reach Toolbelt at {}", self.base))?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            let bytes = res.bytes().await.unwrap_or_default();
            return Err(problem_of(status, &bytes).into());
        }
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = res.chunk().await.context("the stream was cut off")? {
            out.write_all(&chunk)?;
            out.flush()?;
        }
        Ok(())
    }

    /// POSTs and hands back the streamed response (an SSE turn), or the problem it got.
    pub async fn post_stream(&self, path: &str, body: Value) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .post(format!("{}{}", self.base, path))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .timeout(std::time::Duration::from_secs(365 * 24 * 3600))
            .json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach Toolbelt at {}", self.base))?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            let bytes = res.bytes().await.unwrap_or_default();
            return Err(problem_of(status, &bytes).into());
        }
        Ok(res)
    }

    /// Follows `next_cursor` to collect every item of a list endpoint.
    pub async fn all(&self, path: &str) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let p = match &cursor {
                Some(c) => format!("{path}{sep}limit=1000&cursor={}", seg(c)),
                None => format!("{path}{sep}limit=1000"),
            };
            let page = self.get(&p).await?;
            if let Some(a) = page["items"].as_array() {
                items.extend(a.iter().cloned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(items),
            }
        }
    }
}
