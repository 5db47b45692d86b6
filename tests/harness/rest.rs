//! The REST API as one caller sees it: a base URL and a bearer token.

use serde_json::Value;

#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl Rest {
    pub fn new(url: &str, token: &str) -> Rest {
        let http = toolbelt_net::http::builder()
            .tcp_nodelay(true)
            .build()
            .unwrap();
        Rest {
            http,
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// The same caller on a new connection for every request (behind a round-robin proxy,
    /// consecutive requests then reach different replicas).
    pub fn fresh_connections(mut self) -> Rest {
        self.http = toolbelt_net::http::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        self
    }

    /// Another caller at the same URL.
    pub fn as_token(&self, token: &str) -> Rest {
        Rest {
            token: token.to_string(),
            ..self.clone()
        }
    }

    /// One request: its status and its body (JSON, or the text as a JSON string).
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A request that must succeed (2xx); its body. `Value::Null` sends no body.
    pub async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = self
            .send(method, path, (!body.is_null()).then_some(body))
            .await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v:#}"
        );
        v
    }

    /// GETs `path` until it answers 200 with JSON satisfying `pred` (within `limit`);
    /// that JSON. On timeout the panic shows the last answer.
    pub async fn until(
        &self,
        path: &str,
        what: &str,
        limit: std::time::Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        crate::eventually::eventually(what, limit, async || {
            let (s, v) = self.send("GET", path, None).await;
            crate::eventually::when(v.clone(), s == 200 && pred(&v))
        })
        .await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.ok("GET", path, Value::Null).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.ok("POST", path, body).await
    }

    pub async fn delete(&self, path: &str) -> Value {
        self.ok("DELETE", path, Value::Null).await
    }
}
