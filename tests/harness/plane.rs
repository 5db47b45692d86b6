//! An in-process control plane on a loopback port, over a fresh SQLite database: the app
//! `toolbelt serve` runs (`toolbelt-app`: vault, OAuth refresher, token rollout, liveness,
//! gateway), with a known signing key so tests can call DTMAs as the control plane does.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use toolbelt_gateway::GatewayConfig;
use toolbelt_model::signed::ControlKey;
use toolbelt_store::Store;
use toolbelt_testkit::proc::wait_for;

pub const ADMIN: &str = "tbu_e2e-plane-admin-token-000";

pub struct Plane {
    pub url: String,
    pub store: Store,
    pub heartbeat: Duration,
    seed: [u8; 32],
    http: reqwest::Client,
    app: toolbelt_app::Running,
    /// The data dir (database, control key, vault key file); declared last so the app is
    /// dropped before its files.
    pub dir: tempfile::TempDir,
}

impl Plane {
    pub async fn start(heartbeat: Duration) -> Plane {
        Self::start_gateway(heartbeat, GatewayConfig::default()).await
    }

    /// With the gateway configured as given (rate limits, timeouts, SSRF allow-list…).
    pub async fn start_gateway(heartbeat: Duration, gateway: GatewayConfig) -> Plane {
        let dir = tempfile::tempdir().unwrap();
        let mut o = toolbelt_app::Options::new(dir.path()).heartbeat(heartbeat);
        o.listen = "127.0.0.1:0".parse().unwrap();
        o.bootstrap_token = Some(ADMIN.into());
        o.gateway = gateway;
        let app = toolbelt_app::start(o).await.unwrap();
        let http = toolbelt_net::http::builder()
            .tcp_nodelay(true)
            .build()
            .unwrap();
        Plane {
            url: app.url().to_string(),
            store: app.store().clone(),
            heartbeat,
            seed: app.state().key.seed(),
            http,
            app,
            dir,
        }
    }

    /// The app itself (its state, gateway hub, store).
    pub fn app(&self) -> &toolbelt_app::Running {
        &self.app
    }

    /// A token the DTMA of `toolbox_id` accepts (as the control plane signs them).
    pub fn sign(&self, toolbox_id: &str) -> String {
        ControlKey::from_seed(self.seed).sign(toolbox_id, chrono::Utc::now().timestamp(), 300)
    }

    /// The control key's file, as `TOOLBELT_CONTROL_KEY_FILE` would name it to a replica.
    pub fn key_file(&self) -> PathBuf {
        self.app.app().options().control_key_path()
    }

    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The gateway's MCP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.url)
    }

    pub async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (s, v) = self.api(method, path, Some(body)).await;
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }

    /// A toolbox and a one-time join token for its DTMA.
    pub async fn toolbox(&self, name: &str) -> (String, String) {
        let t = self
            .ok(
                "POST",
                "/api/v1/toolboxes",
                json!({ "name": name, "shared": true }),
            )
            .await;
        let j = self
            .ok(
                "POST",
                &format!("/api/v1/toolboxes/{name}/join-token"),
                json!({}),
            )
            .await;
        (
            t["id"].as_str().unwrap().into(),
            j["token"].as_str().unwrap().into(),
        )
    }

    pub async fn catalog(&self, spec: Value) {
        self.ok("POST", "/api/v1/catalog", spec).await;
    }

    /// Waits until the server (on `toolbox`) satisfies `pred`; returns its JSON. On
    /// timeout the panic shows the last state seen.
    pub async fn wait_server(
        &self,
        name: &str,
        toolbox: &str,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let path = format!("/api/v1/servers/{name}?toolbox={toolbox}");
        let start = std::time::Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < limit {
            let (s, v) = self.api("GET", &path, None).await;
            if s == 200 && pred(&v) {
                return v;
            }
            last = v;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out after {limit:?} waiting for {what}; last seen: {last:#}");
    }

    pub async fn wait_toolbox(&self, name: &str, status: &str, limit: Duration) -> Value {
        let path = format!("/api/v1/toolboxes/{name}");
        wait_for(&format!("toolbox {name} {status}"), limit, || {
            let path = path.clone();
            async move {
                let (s, v) = self.api("GET", &path, None).await;
                (s == 200 && v["status"] == status).then_some(v)
            }
        })
        .await
    }
}
