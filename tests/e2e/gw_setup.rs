//! A control plane with its gateway, two toolboxes with in-process DTMAs (Process
//! runtime, the fixture server), two members with one agent each.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_dtma::{Dtma, DtmaOptions};
use toolbelt_e2e::plane::{ADMIN, Plane};
use toolbelt_gateway::GatewayConfig;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::fixture_bin;

pub const WAIT: Duration = Duration::from_secs(30);

pub struct World {
    pub plane: Plane,
    pub ann: String,
    pub bob: String,
    pub ann_bot: String,
    pub bob_bot: String,
    /// Kept running for the world's lifetime.
    pub _dtmas: Vec<Dtma>,
    _dirs: Vec<tempfile::TempDir>,
}

impl World {
    /// `alpha` (shared) runs `tools`; Ann's private toolbox `own` runs `mine`.
    pub async fn new(gateway: GatewayConfig) -> World {
        let plane = Plane::start_gateway(Duration::from_millis(300), gateway).await;
        let member = |email: &'static str| {
            let p = &plane;
            async move {
                p.ok(
                    "POST",
                    "/api/v1/users",
                    json!({ "email": email, "role": "member" }),
                )
                .await["token"]["token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let (ann, bob) = (
            member("ann@example.com").await,
            member("bob@example.com").await,
        );
        plane.catalog(json!({ "slug": "fixture", "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
            "command": [fixture_bin().display().to_string()] }, "transport": "stdio" })).await;
        plane.catalog(json!({ "slug": "fixture-audited", "audit_arguments": true, "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
            "command": [fixture_bin().display().to_string()] }, "transport": "stdio" })).await;
        let (_, alpha_join) = plane.toolbox("alpha").await;
        let own: Value = as_user(
            &plane,
            &ann,
            "POST",
            "/api/v1/toolboxes",
            json!({ "name": "own" }),
        )
        .await;
        let own_join: Value = as_user(
            &plane,
            &ann,
            "POST",
            "/api/v1/toolboxes/own/join-token",
            json!({}),
        )
        .await;
        assert!(own["id"].is_string());
        let mut dtmas = Vec::new();
        let mut dirs = Vec::new();
        for join in [alpha_join, own_join["token"].as_str().unwrap().to_string()] {
            let dir = tempfile::tempdir().unwrap();
            let mut o = DtmaOptions::new(&plane.url, dir.path().join("dtma"));
            o.join_token = Some(join);
            o.runtime = Some(ToolboxKind::Process);
            o.reconcile_interval = Duration::from_millis(200);
            dtmas.push(toolbelt_dtma::start(o).await.unwrap());
            dirs.push(dir);
        }
        plane
            .ok(
                "POST",
                "/api/v1/servers",
                json!({ "name": "tools", "catalog": "fixture", "toolbox": "alpha" }),
            )
            .await;
        as_user(
            &plane,
            &ann,
            "POST",
            "/api/v1/servers",
            json!({ "name": "mine", "catalog": "fixture", "toolbox": "own" }),
        )
        .await;
        plane
            .wait_server("tools", "alpha", "alpha/tools running", WAIT, |v| {
                v["status"] == "running"
            })
            .await;
        // Admins name other members' toolboxes by id (names resolve in one's own namespace).
        plane
            .wait_server(
                "mine",
                own["id"].as_str().unwrap(),
                "own/mine running",
                WAIT,
                |v| v["status"] == "running",
            )
            .await;
        let ann_bot = as_user(
            &plane,
            &ann,
            "POST",
            "/api/v1/agents",
            json!({ "name": "ann-bot" }),
        )
        .await["token"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        let bob_bot = as_user(
            &plane,
            &bob,
            "POST",
            "/api/v1/agents",
            json!({ "name": "bob-bot" }),
        )
        .await["token"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        World {
            plane,
            ann,
            bob,
            ann_bot,
            bob_bot,
            _dtmas: dtmas,
            _dirs: dirs,
        }
    }

    pub async fn as_ann(&self, method: &str, path: &str, body: Value) -> Value {
        as_user(&self.plane, &self.ann, method, path, body).await
    }

    pub async fn as_bob(&self, method: &str, path: &str, body: Value) -> Value {
        as_user(&self.plane, &self.bob, method, path, body).await
    }

    pub async fn as_admin(&self, method: &str, path: &str, body: Value) -> Value {
        as_user(&self.plane, ADMIN, method, path, body).await
    }
}

/// A request as a given user that must succeed; the JSON body.
pub async fn as_user(plane: &Plane, token: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = call(plane, token, method, path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

pub async fn call(
    plane: &Plane,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let http = toolbelt_net::http::client();
    let mut req = http
        .request(method.parse().unwrap(), format!("{}{path}", plane.url))
        .bearer_auth(token);
    if !body.is_null() {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let s = res.status().as_u16();
    let t = res.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// Waits until `f` holds, polling; panics with `what`.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < WAIT {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}
