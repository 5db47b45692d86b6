//! The control plane's REST API as the benchmark's admin: toolboxes, catalog entries,
//! servers, agents and grants.

use crate::procs::{ADMIN, Launch, Proc, dtma};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Api {
    pub url: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(url: &str) -> Api {
        let http = toolbelt_net::http::builder()
            .tcp_nodelay(true)
            .build()
            .expect("a plain HTTP client builds");
        Api::with_client(url, http)
    }

    /// Through `http` (one trusting a test CA, for a gateway serving TLS).
    pub fn with_client(url: &str, http: reqwest::Client) -> Api {
        Api {
            url: url.to_string(),
            http,
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let mut req = self
            .http
            .request(method.parse()?, format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v)
    }

    /// A shared toolbox and its DTMA process; the toolbox id.
    pub async fn toolbox(
        &self,
        name: &str,
        dir: &Path,
        runtime: &str,
        how: &Launch,
    ) -> Result<(String, Proc)> {
        let t = self
            .call(
                "POST",
                "/api/v1/toolboxes",
                json!({ "name": name, "shared": true }),
            )
            .await?;
        let path = format!("/api/v1/toolboxes/{name}/join-token");
        let j = self.call("POST", &path, json!({})).await?;
        let d = dtma(
            &self.url,
            j["token"].as_str(),
            &dir.join(name),
            runtime,
            how,
        )
        .await?;
        Ok((t["id"].as_str().context("toolbox id")?.to_string(), d))
    }

    /// A shared `remote` toolbox holding one server `name` at `url`.
    pub async fn remote(&self, toolbox: &str, name: &str, url: &str) -> Result<()> {
        let tb = json!({ "name": toolbox, "shared": true, "kind": "remote" });
        self.call("POST", "/api/v1/toolboxes", tb).await?;
        let entry = json!({ "slug": name, "source": { "type": "remote", "url": url }, "transport": "streamable_http" });
        self.call("POST", "/api/v1/catalog", entry).await?;
        self.server(name, name, toolbox).await
    }

    pub async fn server(&self, name: &str, catalog: &str, toolbox: &str) -> Result<()> {
        let s = json!({ "name": name, "catalog": catalog, "toolbox": toolbox });
        self.call("POST", "/api/v1/servers", s).await.map(drop)
    }

    /// A new agent of the admin's; its token.
    pub async fn agent(&self, name: &str) -> Result<String> {
        let a = self
            .call("POST", "/api/v1/agents", json!({ "name": name }))
            .await?;
        Ok(a["token"]["token"]
            .as_str()
            .context("agent token")?
            .to_string())
    }

    pub async fn grant_server(&self, agent: &str, server: &str, toolbox: &str) -> Result<()> {
        let g = json!({ "agent": agent, "server": server, "toolbox": toolbox });
        self.call("POST", "/api/v1/grants", g).await.map(drop)
    }

    /// Waits until `n` servers on `toolbox` report `running`.
    pub async fn wait_running(&self, toolbox: &str, n: usize, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let page = self
                .call(
                    "GET",
                    &format!("/api/v1/servers?toolbox={toolbox}&limit=200"),
                    Value::Null,
                )
                .await?;
            let items = page["items"].as_array().context("a page of servers")?;
            if items.iter().filter(|s| s["status"] == "running").count() >= n {
                return Ok(());
            }
            anyhow::ensure!(
                start.elapsed() < limit,
                "{toolbox}: {n} servers not running in {limit:?}: {page}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
