//! An in-process control plane on a loopback port, over a fresh SQLite database: the app
//! `toolbelt serve` runs (`toolbelt-app`: vault, OAuth refresher, token rollout, liveness,
//! gateway), with a known signing key so tests can call DTMAs as the control plane does.

use crate::rest::Rest;
use crate::world::{Caller, Toolbox};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use toolbelt_gateway::GatewayConfig;
use toolbelt_model::signed::ControlKey;
use toolbelt_store::Store;

pub const ADMIN: &str = "tbu_e2e-plane-admin-token-000";

pub struct Plane {
    pub url: String,
    pub store: Store,
    pub heartbeat: Duration,
    seed: [u8; 32],
    admin: Caller,
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
        Self::start_with(heartbeat, |o| o.gateway = gateway).await
    }

    /// As `toolbelt up` without Docker: with the `local` toolbox, its DTMA in this
    /// process on the process runtime.
    pub async fn up(heartbeat: Duration) -> Plane {
        Self::start_with(heartbeat, |o| {
            o.local_toolbox = true;
            o.runtime = Some(toolbelt_model::toolbox::ToolboxKind::Process);
        })
        .await
    }

    /// With any of the app's options changed (the DTMA allow-list, TLS roots…).
    pub async fn start_with(
        heartbeat: Duration,
        change: impl FnOnce(&mut toolbelt_app::Options),
    ) -> Plane {
        let dir = tempfile::tempdir().unwrap();
        let mut o = toolbelt_app::Options::new(dir.path()).heartbeat(heartbeat);
        o.listen = "127.0.0.1:0".parse().unwrap();
        o.bootstrap_token = Some(ADMIN.into());
        change(&mut o);
        let app = toolbelt_app::start(o).await.unwrap();
        Plane {
            url: app.url().to_string(),
            store: app.store().clone(),
            heartbeat,
            seed: app.state().key.seed(),
            admin: Caller::new(app.url(), ADMIN),
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

    /// The bootstrap admin, as a domain handle.
    pub fn admin(&self) -> &Caller {
        &self.admin
    }

    /// A caller with `token` at this plane.
    pub fn as_token(&self, token: &str) -> Rest {
        self.admin.rest.as_token(token)
    }

    /// One request as the admin: its status and body.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.admin.rest.send(method, path, body).await
    }

    /// The gateway's MCP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.url)
    }

    pub async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        self.admin.rest.ok(method, path, body).await
    }

    /// A shared toolbox and a one-time join token for its DTMA: (id, token).
    pub async fn toolbox(&self, name: &str) -> (String, String) {
        let t: Toolbox = self.admin.toolbox(name).shared().await;
        let join = t.join_token().await;
        (t.id, join)
    }

    pub async fn catalog(&self, spec: Value) {
        self.admin.catalog(spec).await;
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
        self.admin.rest.until(&path, what, limit, pred).await
    }

    pub async fn wait_toolbox(&self, name: &str, status: &str, limit: Duration) -> Value {
        let path = format!("/api/v1/toolboxes/{name}");
        let what = format!("toolbox {name} {status}");
        self.admin
            .rest
            .until(&path, &what, limit, |v| v["status"] == status)
            .await
    }
}
