//! Live updates across replicas, in a real browser: a dashboard page served by replica 0
//! follows changes made through replica 1 (PostgreSQL `LISTEN/NOTIFY` relays them) without
//! a reload.

use serde_json::json;
use toolbelt_e2e::browser::Browser;
use toolbelt_e2e::replicas::Replicas;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_on_one_replica_follows_changes_made_through_the_other() {
    let w = Replicas::start().await;
    let (here, there) = (w.admin_at(0), w.admin_at(1));
    here.post(
        "/api/v1/users",
        json!({ "email": "ops@example.com", "role": "admin", "password": "ops-password-123" }),
    )
    .await;
    let _edge = w.toolbox("edge").await;
    here.post(
        "/api/v1/catalog",
        json!({ "slug": "fixture", "transport": "stdio", "source": { "type": "package",
            "manager": "binary", "package": "fixture-mcp", "command": ["fixture-mcp"] } }),
    )
    .await;

    let b = Browser::open(&w.replicas[0].url).await;
    b.sign_in_with("ops@example.com", "ops-password-123").await;
    b.goto("/servers").await;
    b.until("#servers-empty").await.mark().await;

    // Deployed through the other replica: the row appears here and reaches running.
    there
        .post(
            "/api/v1/servers",
            json!({ "name": "tools", "catalog": "fixture", "toolbox": "edge" }),
        )
        .await;
    b.until_text("#server-status-tools", "running").await;
    b.still_marked().await;
    // Stopped through the other replica: the badge follows.
    there
        .post("/api/v1/servers/tools/stop?toolbox=edge", json!({}))
        .await;
    b.until_text("#server-status-tools", "stopped").await;
    b.still_marked().await;
    b.close().await;
}
