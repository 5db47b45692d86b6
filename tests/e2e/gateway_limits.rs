//! The gateway under pressure and at its edges: `ask` rules, rate limits, a dead or slow
//! server, a silent toolbox, remote servers behind the SSRF guard.

use crate::gw_setup::{WAIT, World};
use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::eventually::{eventually, when};
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::sdk::Sdk;
use toolbelt_gateway::GatewayConfig;
use toolbelt_gateway::ratelimit::Rate;
use toolbelt_gateway::ssrf::AllowList;
use toolbelt_testkit::fixture::fixture_bin;
use toolbelt_testkit::proc::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ask_holds_the_call_until_the_owner_approves_denies_or_time_runs_out() {
    let w = World::new(GatewayConfig {
        ask_timeout: Duration::from_secs(3),
        ..Default::default()
    })
    .await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    w.as_ann("POST", "/api/v1/grants", json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha", "tool": "add", "rule": "ask" })).await;
    let url = w.plane.mcp_url();
    for (decision, want) in [("approve", None), ("deny", Some(-32003))] {
        let mut sdk = Sdk::connect(&url, &w.ann_bot.token, "legacy").await;
        let call = tokio::spawn(async move {
            let r = sdk.call("tools__add", json!({ "a": 40, "b": 2 })).await;
            sdk.quit().await;
            r
        });
        let asked = eventually("an approval request", WAIT, async || {
            let list = w.ann.rest.get("/api/v1/approvals").await;
            list.as_array().unwrap().first().cloned().ok_or(list)
        })
        .await;
        assert_eq!(
            (asked["tool"].as_str(), asked["arguments"]["a"].as_i64()),
            (Some("add"), Some(40)),
            "the owner sees what is asked: {asked}"
        );
        let id = asked["id"].as_str().unwrap();
        // Bob is not the owner: he cannot even see it.
        let (status, _) = w
            .bob
            .rest
            .send(
                "POST",
                &format!("/api/v1/approvals/{id}/approve"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 404);
        w.as_ann(
            "POST",
            &format!("/api/v1/approvals/{id}/{decision}"),
            json!({}),
        )
        .await;
        let r = call.await.unwrap();
        match want {
            None => assert_eq!(r["structured"]["sum"], 42.0, "{r}"),
            Some(code) => assert_eq!(r["code"], code, "{r}"),
        }
    }
    let mut sdk = Sdk::connect(&url, &w.ann_bot.token, "legacy").await;
    let r = sdk.call("tools__add", json!({ "a": 1, "b": 1 })).await;
    assert_eq!(r["code"], -32004, "nobody decided: {r}");
    let expired = w
        .as_ann("GET", "/api/v1/approvals?all=true", Value::Null)
        .await;
    assert!(
        expired
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["status"] == "expired")
    );
    sdk.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_refuse_with_a_time_to_retry() {
    let w = World::new(GatewayConfig {
        tool_rate: Some(Rate::parse("2:3").unwrap()),
        agent_rate: Some(Rate::parse("0.5:5").unwrap()),
        ..Default::default()
    })
    .await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let mut sdk = w.ann_bot.mcp("2026-07-28").await;
    for i in 0..3 {
        assert_eq!(
            sdk.call("tools__echo", json!({ "text": i.to_string() }))
                .await["ok"],
            true
        );
    }
    let r = sdk.call("tools__echo", json!({ "text": "too many" })).await;
    assert_eq!(r["code"], -32029, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("retry after"),
        "{r}"
    );
    let wait = r["data"]["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 500, "{r}");
    // Another tool has its own bucket, but the agent's bucket (burst 5) still counts.
    assert_eq!(
        sdk.call("tools__add", json!({ "a": 1, "b": 2 })).await["ok"],
        true
    );
    let r = sdk.call("tools__add", json!({ "a": 1, "b": 2 })).await;
    assert_eq!(r["code"], -32029, "the agent's own limit: {r}");
    assert!(r["message"].as_str().unwrap().contains("agent"), "{r}");
    let wait = r["data"]["retry_after_ms"].as_u64().unwrap().max(wait);
    tokio::time::sleep(Duration::from_millis(wait + 100)).await;
    assert_eq!(
        sdk.call("tools__echo", json!({ "text": "later" })).await["text"],
        "later"
    );
    sdk.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_server_never_blocks_the_others_and_a_silent_toolbox_fails_fast() {
    let mut w = World::new(GatewayConfig {
        discovery_deadline: Duration::from_secs(1),
        call_timeout: Duration::from_secs(2),
        ssrf_allow: AllowList::parse("127.0.0.1/32").unwrap(),
        ..Default::default()
    })
    .await;
    // A remote server that accepts connections and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_url = format!("http://{}/mcp", hole.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    w.as_admin(
        "POST",
        "/api/v1/toolboxes",
        json!({ "name": "far", "shared": true, "kind": "remote" }),
    )
    .await;
    w.as_admin("POST", "/api/v1/catalog", json!({ "slug": "blackhole", "source": { "type": "remote", "url": hole_url }, "transport": "streamable_http" })).await;
    w.as_admin(
        "POST",
        "/api/v1/servers",
        json!({ "name": "hole", "catalog": "blackhole", "toolbox": "far" }),
    )
    .await;
    w.as_ann(
        "POST",
        "/api/v1/grants",
        json!({ "agent": "ann-bot", "toolbox": "alpha" }),
    )
    .await;
    w.as_ann(
        "POST",
        "/api/v1/grants",
        json!({ "agent": "ann-bot", "toolbox": "far" }),
    )
    .await;
    let mut sdk = w.ann_bot.mcp("legacy").await;
    let names = sdk.tool_names().await;
    assert!(
        names.contains(&"tools__echo".to_string())
            && !names.iter().any(|n| n.starts_with("hole__")),
        "{names:?}"
    );
    // A slow answer is a timeout, whatever was asked: a tool call or a prompt.
    let mut raw = Mcp::new(&w.plane.mcp_url(), &w.ann_bot.token);
    raw.initialize().await;
    let slow_call = raw.tool("tools__sleep", json!({ "ms": 20000 })).await;
    let slow_prompt = raw
        .request(
            "prompts/get",
            json!({ "name": "tools__greet", "arguments": { "name": "Ann", "wait_ms": "20000" } }),
        )
        .await;
    for r in [&slow_call, &slow_prompt] {
        assert_eq!(r["error"]["code"], -32001, "{r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("did not answer within 2.0 s"),
            "{r}"
        );
    }
    eventually("the failure visible on the server", WAIT, || async {
        let s = w
            .as_admin("GET", "/api/v1/servers/hole?toolbox=far", Value::Null)
            .await;
        s["discovery"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out"))
    })
    .await;
    // The alpha toolbox's DTMA goes silent: calls to its servers fail at once.
    let alpha = w._dtmas.remove(0);
    alpha.shutdown().await;
    w.plane.wait_toolbox("alpha", "unresponsive", WAIT).await;
    eventually("the gateway to know", WAIT, || async {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        true
    })
    .await;
    // Failed at once: the unreachable code, not the call timeout's.
    let r = sdk.call("tools__echo", json!({ "text": "anyone?" })).await;
    assert_eq!(r["code"], -32005, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("unresponsive"),
        "{r}"
    );
    sdk.quit().await;
}

/// A small HTTP server that redirects everything to the cloud metadata address.
async fn redirector() -> String {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, "http://169.254.169.254/mcp")],
        )
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

async fn remote_setup(plane: &Plane, url: &str, slug: &str, name: &str) {
    let _ = plane
        .api(
            "POST",
            "/api/v1/toolboxes",
            Some(json!({ "name": "far", "shared": true, "kind": "remote" })),
        )
        .await;
    plane.ok("POST", "/api/v1/catalog", json!({ "slug": slug, "source": { "type": "remote", "url": url }, "transport": "streamable_http" })).await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": name, "catalog": slug, "toolbox": "far" }),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remote_servers_are_reached_directly_behind_the_ssrf_guard() {
    let port = free_port();
    let mut fixture = tokio::process::Command::new(fixture_bin())
        .args(["--http", &format!("127.0.0.1:{port}")])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    eventually("the remote fixture listening", WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;

    // Without an allow-list, loopback is refused.
    let strict = Plane::start_gateway(Duration::from_millis(300), GatewayConfig::default()).await;
    remote_setup(&strict, &url, "remote-fx", "remote").await;
    eventually("the refusal recorded", WAIT, || async {
        let (_, s) = strict
            .api("GET", "/api/v1/servers/remote?toolbox=far", None)
            .await;
        s["discovery"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("loopback"))
    })
    .await;

    // Allow-listed, it works; a redirect to the metadata address is still refused.
    let open = Plane::start_gateway(
        Duration::from_millis(300),
        GatewayConfig {
            ssrf_allow: AllowList::parse("127.0.0.1/32").unwrap(),
            ..Default::default()
        },
    )
    .await;
    remote_setup(&open, &url, "remote-fx", "remote").await;
    remote_setup(&open, &redirector().await, "bouncer", "bounce").await;
    let agent = open
        .ok("POST", "/api/v1/agents", json!({ "name": "far-bot" }))
        .await;
    open.ok(
        "POST",
        "/api/v1/grants",
        json!({ "agent": "far-bot", "toolbox": "far" }),
    )
    .await;
    let mut sdk = Sdk::connect(
        &open.mcp_url(),
        agent["token"]["token"].as_str().unwrap(),
        "legacy",
    )
    .await;
    let names = sdk.tool_names().await;
    assert!(names.contains(&"remote__echo".to_string()), "{names:?}");
    assert_eq!(
        sdk.call("remote__echo", json!({ "text": "far away" }))
            .await["text"],
        "far away"
    );
    eventually("the redirect refused", WAIT, async || {
        let (_, s) = open
            .api("GET", "/api/v1/servers/bounce?toolbox=far", None)
            .await;
        // reqwest reports a refusal by the redirect policy as an error *following* the
        // redirect (a plain unreachable address would be an error *sending* it).
        let refused = s["discovery"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("error following redirect"));
        when(s, refused)
    })
    .await;

    // No DTMA runs a remote server: stop, start, restart and delete take effect at once.
    // A stopped server leaves the agent's tools (the gateway offers only servers meant to
    // run), so a call names an unknown tool; started again, it answers.
    for (verb, status) in [
        ("stop", "stopped"),
        ("start", "running"),
        ("restart", "running"),
    ] {
        let s = open
            .ok(
                "POST",
                &format!("/api/v1/servers/remote/{verb}?toolbox=far"),
                json!({}),
            )
            .await;
        assert_eq!(s["status"], status, "{verb}: {s}");
        eventually(&format!("{verb} taking effect"), WAIT, async || {
            let r = sdk.call("remote__echo", json!({ "text": verb })).await;
            let settled = if status == "stopped" {
                r["code"] == -32602 && !sdk.tool_names().await.contains(&"remote__echo".into())
            } else {
                r["text"] == verb
            };
            when(r, settled)
        })
        .await;
    }
    let (code, _) = open
        .api("DELETE", "/api/v1/servers/remote?toolbox=far", None)
        .await;
    assert_eq!(code, 200);
    let (code, s) = open
        .api("GET", "/api/v1/servers/remote?toolbox=far", None)
        .await;
    assert_eq!(code, 404, "a deleted remote server is gone: {s}");
    sdk.quit().await;
    let _ = fixture.kill().await;
}
