//! An in-process control plane on a loopback port, over a fresh SQLite database, with a
//! known signing key (so tests can call DTMAs as the control plane does).

use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use toolbelt_control::bootstrap::{BootstrapOptions, bootstrap};
use toolbelt_control::secrets::{NoVault, SecretResolver};
use toolbelt_control::{AppState, ControlConfig};
use toolbelt_gateway::GatewayConfig;
use toolbelt_model::signed::ControlKey;
use toolbelt_store::{Store, StoreOptions};
use toolbelt_testkit::proc::wait_for;

pub const ADMIN: &str = "tbu_e2e-plane-admin-token-000";

pub struct Plane {
    pub url: String,
    pub store: Store,
    pub dir: tempfile::TempDir,
    seed: [u8; 32],
    pub heartbeat: Duration,
    http: reqwest::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Plane {
    pub async fn start(heartbeat: Duration) -> Plane {
        Self::start_with(heartbeat, Arc::new(NoVault)).await
    }

    /// With a given resolver for secret references (a stand-in for the vault).
    pub async fn start_with(heartbeat: Duration, secrets: Arc<dyn SecretResolver>) -> Plane {
        Self::start_full(heartbeat, secrets, GatewayConfig::default()).await
    }

    /// With the gateway configured as given (rate limits, timeouts, SSRF allow-list…).
    pub async fn start_gateway(heartbeat: Duration, gateway: GatewayConfig) -> Plane {
        Self::start_full(heartbeat, Arc::new(NoVault), gateway).await
    }

    pub async fn start_full(
        heartbeat: Duration,
        secrets: Arc<dyn SecretResolver>,
        gateway: GatewayConfig,
    ) -> Plane {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("toolbelt.db").display());
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        bootstrap(
            &store,
            &BootstrapOptions {
                bootstrap_token: Some(ADMIN.into()),
                admin_email: None,
                local_toolbox: true,
            },
        )
        .await
        .unwrap();
        let key = ControlKey::generate();
        let seed = key.seed();
        let config = ControlConfig {
            heartbeat_interval: heartbeat,
            ..Default::default()
        };
        let state = AppState::with_parts(store.clone(), config, key, secrets);
        let signer: toolbelt_gateway::upstream::Signer = Arc::new(move |aud: &str| {
            ControlKey::from_seed(seed).sign(aud, chrono::Utc::now().timestamp(), 3600)
        });
        let (mcp, _hub) = toolbelt_gateway::start(store.clone(), signer, gateway).await;
        let app = toolbelt_control::router(state.clone()).merge(mcp);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks = vec![
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }),
            tokio::spawn(toolbelt_control::liveness::run(
                state,
                std::future::pending::<()>(),
            )),
        ];
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .unwrap();
        Plane {
            url: format!("http://{addr}"),
            store,
            dir,
            seed,
            heartbeat,
            http,
            tasks,
        }
    }

    /// A token the DTMA of `toolbox_id` accepts (as the control plane signs them).
    pub fn sign(&self, toolbox_id: &str) -> String {
        ControlKey::from_seed(self.seed).sign(toolbox_id, chrono::Utc::now().timestamp(), 300)
    }

    pub fn key_file(&self) -> PathBuf {
        let p = self.dir.path().join("control.key");
        std::fs::write(&p, hex_seed(&self.seed)).unwrap();
        p
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

impl Drop for Plane {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn hex_seed(seed: &[u8; 32]) -> String {
    seed.iter().map(|b| format!("{b:02x}")).collect()
}
