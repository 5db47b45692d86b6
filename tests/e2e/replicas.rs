//! Two `toolbelt serve` replicas on one PostgreSQL behind one URL: what one replica does,
//! the other knows; an agent made on one calls tools through the other and through the
//! one URL; a DTMA joined through the one URL heartbeats to both. Later changes that share
//! state across replicas add their case here (a new test over `Replicas::start()`): login
//! throttling is one.

use serde_json::json;
use std::time::Duration;
use toolbelt_e2e::eventually::{WAIT, eventually, when};
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::replicas::Replicas;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_behind_one_url_share_their_state() {
    let w = Replicas::start().await;

    // A change made through replica 0 is there through replica 1, and through the one URL
    // whichever replica answers (consecutive requests on new connections alternate).
    let ann = w
        .admin_at(0)
        .post(
            "/api/v1/users",
            json!({ "email": "ann@example.com", "role": "member" }),
        )
        .await;
    let seen = w.admin_at(1).get("/api/v1/users/ann@example.com").await;
    assert_eq!(seen["id"], ann["user"]["id"], "{seen}");
    let before = w.proxy.served().len();
    let one_url = w.admin();
    for _ in 0..4 {
        let users = one_url.get("/api/v1/users").await;
        assert!(users.to_string().contains("ann@example.com"), "{users}");
    }
    let answered: Vec<usize> = w.proxy.served()[before..]
        .iter()
        .map(|s| s.backend)
        .collect();
    assert_eq!(answered, [0, 1, 0, 1], "the one URL alternates");

    // A DTMA joined through the one URL; a server deployed through replica 0 runs, as
    // replica 1 reports.
    let _edge = w.toolbox("edge").await;
    w.admin_at(0)
        .post(
            "/api/v1/catalog",
            json!({ "slug": "fixture", "transport": "stdio", "source": { "type": "package",
                "manager": "binary", "package": "fixture-mcp", "command": ["fixture-mcp"] } }),
        )
        .await;
    w.admin_at(0)
        .post(
            "/api/v1/servers",
            json!({ "name": "tools", "catalog": "fixture", "toolbox": "edge" }),
        )
        .await;
    let replica1 = w.admin_at(1);
    eventually("edge/tools running, seen by replica 1", WAIT, async || {
        let v = replica1.get("/api/v1/servers/tools?toolbox=edge").await;
        when(v.clone(), v["status"] == "running" && v["health"] == "ok")
    })
    .await;

    // An agent made on replica 1 calls its tool through replica 0, and through the one URL
    // (stateless calls, each on a new connection: both replicas answer in turn).
    let bot = replica1
        .post("/api/v1/agents", json!({ "name": "bot" }))
        .await["token"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    replica1
        .post(
            "/api/v1/grants",
            json!({ "agent": "bot", "server": "tools", "toolbox": "edge" }),
        )
        .await;
    let at0 = Mcp::stateless(&format!("{}/mcp", w.replicas[0].url), &bot);
    // Replica 0 caches authorization for a moment; it learns of the other's grant soon.
    eventually(
        "replica 0 serves the agent made on replica 1",
        WAIT,
        async || {
            let r = at0.tool("tools__echo", json!({ "text": "via 0" })).await;
            when(r.clone(), r["result"]["content"][0]["text"] == "via 0")
        },
    )
    .await;
    let one = Mcp::stateless(&format!("{}/mcp", w.url()), &bot).fresh_connections();
    // Each replica learns of the server on its own (discovery), so a first call may miss.
    let mut answered = std::collections::BTreeSet::new();
    eventually(
        "both replicas answering the agent at the one URL",
        WAIT,
        async || {
            let before = w.proxy.served().len();
            let r = one.tool("tools__echo", json!({ "text": "one URL" })).await;
            let by = w.proxy.served()[before..]
                .iter()
                .find(|s| s.first_line.starts_with("POST /mcp"))
                .map(|s| s.backend);
            if r["result"]["content"][0]["text"] == "one URL" {
                answered.extend(by);
            }
            when((), answered.len() == 2)
                .map_err(|()| format!("answered by replicas {answered:?}; last, by {by:?}: {r}"))
        },
    )
    .await;

    // The DTMA heartbeats to both: each time its connection is cut it reconnects through
    // the one URL, to the next replica. The toolbox stays active, as both report.
    eventually("heartbeats served by both replicas", WAIT, async || {
        let s = w.served("POST /api/v1/dtma/heartbeat");
        if s.len() == 2 {
            return Ok(());
        }
        w.proxy.cut();
        tokio::time::sleep(Duration::from_millis(700)).await;
        Err(format!("heartbeats reached replicas {s:?}"))
    })
    .await;
    for i in 0..2 {
        let t = w.admin_at(i).get("/api/v1/toolboxes/edge").await;
        assert_eq!(t["status"], "active", "replica {i}: {t}");
    }
}

/// An account's failed logins count on every replica: after the free ones, the next
/// attempt is refused wherever it lands — from any client address, with the right
/// password too — and the others' accounts are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accounts_login_throttle_is_shared_by_every_replica() {
    let w = Replicas::start_with(&[
        ("TOOLBELT_LOGIN_LIMIT_ACCOUNT", "3"),
        ("TOOLBELT_LOGIN_LIMIT_ADDRESS", "1000"),
        ("TOOLBELT_LOGIN_BACKOFF_MS", "3600000"),
        // The test is the proxy: each attempt names another client.
        ("TOOLBELT_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    for email in ["ann@example.com", "bob@example.com"] {
        w.admin_at(0)
            .post(
                "/api/v1/users",
                json!({ "email": email, "role": "member", "password": "correct horse battery" }),
            )
            .await;
    }
    let http = toolbelt_net::http::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let login = async |url: &str, email: &str, password: &str, client: u8| {
        let res = http
            .post(format!("{url}/api/v1/login"))
            .header("x-forwarded-for", format!("198.51.100.{client}"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        let retry = res.headers().get("retry-after").cloned();
        (res.status().as_u16(), retry)
    };
    let before = w.proxy.served().len();
    for client in 1..=3 {
        let (status, _) = login(&w.url(), "ann@example.com", "wrong password!!", client).await;
        assert_eq!(status, 401);
    }
    let (status, retry) = login(&w.url(), "ann@example.com", "correct horse battery", 4).await;
    assert_eq!(status, 429, "the fourth attempt, on the other replica");
    assert!(retry.is_some(), "with Retry-After");
    let answered: std::collections::BTreeSet<usize> = w.proxy.served()[before..]
        .iter()
        .map(|s| s.backend)
        .collect();
    assert_eq!(answered.len(), 2, "both replicas took part");
    for (i, r) in w.replicas.iter().enumerate() {
        let (status, _) = login(&r.url, "ann@example.com", "correct horse battery", 5).await;
        assert_eq!(status, 429, "replica {i} refuses too");
        let (status, _) = login(&r.url, "bob@example.com", "correct horse battery", 5).await;
        assert_eq!(status, 200, "replica {i}: another account logs in");
    }
}
