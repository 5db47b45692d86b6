//! A control plane with its gateway, two toolboxes with in-process DTMAs (Process
//! runtime, the fixture server), two members with one agent each.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_dtma::{Dtma, DtmaOptions};
use toolbelt_e2e::eventually::{eventually, when};
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::sdk::Sdk;
use toolbelt_e2e::world::{Bot, Caller};
use toolbelt_gateway::GatewayConfig;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::fixture_bin;

pub const WAIT: Duration = Duration::from_secs(30);

pub struct World {
    pub plane: Plane,
    pub admin: Caller,
    pub ann: Caller,
    pub bob: Caller,
    pub ann_bot: Bot,
    pub bob_bot: Bot,
    /// Kept running for the world's lifetime.
    pub _dtmas: Vec<Dtma>,
    _dirs: Vec<tempfile::TempDir>,
}

impl World {
    /// `alpha` (shared) runs `tools`; Ann's private toolbox `own` runs `mine`.
    pub async fn new(gateway: GatewayConfig) -> World {
        Self::with(gateway, |_| {}).await
    }

    /// [`World::new`] with other options of the app set by `tweak` (chat's budget…).
    pub async fn with(
        gateway: GatewayConfig,
        tweak: impl FnOnce(&mut toolbelt_app::Options),
    ) -> World {
        let plane = Plane::start_with(Duration::from_millis(300), |o| {
            o.gateway = gateway;
            tweak(o);
        })
        .await;
        let admin = plane.admin().clone();
        let ann = admin.member("ann@example.com").await;
        let bob = admin.member("bob@example.com").await;
        let command = [fixture_bin().display().to_string()];
        for (slug, audited) in [("fixture", false), ("fixture-audited", true)] {
            admin.catalog(json!({ "slug": slug, "audit_arguments": audited, "transport": "stdio",
                "source": { "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command } })).await;
        }
        let alpha = admin.toolbox("alpha").shared().await;
        let own = ann.toolbox("own").await;
        let mut dtmas = Vec::new();
        let mut dirs = Vec::new();
        for join in [alpha.join_token().await, own.join_token().await] {
            let dir = tempfile::tempdir().unwrap();
            let mut o = DtmaOptions::new(&plane.url, dir.path().join("dtma"));
            o.join_token = Some(join);
            o.runtime = Some(ToolboxKind::Process);
            o.reconcile_interval = Duration::from_millis(200);
            dtmas.push(toolbelt_dtma::start(o).await.unwrap());
            dirs.push(dir);
        }
        let tools = admin.deploy("tools", "fixture").on("alpha").await;
        let mine = ann.deploy("mine", "fixture").on("own").await;
        tools.running().await;
        mine.running().await;
        let ann_bot = ann.agent("ann-bot").await;
        let bob_bot = bob.agent("bob-bot").await;
        World {
            plane,
            admin,
            ann,
            bob,
            ann_bot,
            bob_bot,
            _dtmas: dtmas,
            _dirs: dirs,
        }
    }

    pub async fn as_ann(&self, method: &str, path: &str, body: Value) -> Value {
        self.ann.rest.ok(method, path, body).await
    }

    pub async fn as_bob(&self, method: &str, path: &str, body: Value) -> Value {
        self.bob.rest.ok(method, path, body).await
    }

    pub async fn as_admin(&self, method: &str, path: &str, body: Value) -> Value {
        self.admin.rest.ok(method, path, body).await
    }

    /// The newest pending change of `tool` (the list is newest first), once there is one.
    pub async fn pending_change(&self, tool: &str) -> Value {
        eventually(&format!("a pending change of {tool}"), WAIT, async || {
            let list = self.admin.rest.get("/api/v1/tools/changes").await;
            let found = list
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["tool"] == tool && c["status"] == "pending")
                .cloned();
            found.ok_or(list)
        })
        .await
    }
}

/// Waits until the agent's list does (or does not) show `tool`.
pub async fn until_listed(sdk: &mut Sdk, tool: &str, listed: bool) {
    let what = format!("{tool} {}", if listed { "listed" } else { "hidden" });
    eventually(&what, WAIT, async || {
        let names = sdk.tool_names().await;
        when(names.clone(), names.contains(&tool.to_string()) == listed)
    })
    .await;
}
