//! The gateway with the official Python SDK as the agent, in both protocol eras: each
//! agent sees exactly its tools across toolboxes; what it may not use is invisible and
//! uncallable; revoking a grant or a token stops the very next call of an open session;
//! two servers' resources of one URI are told apart by their server's prefix.

use crate::gw_setup::{WAIT, World};
use serde_json::{Value, json};
use toolbelt_e2e::eventually::eventually;
use toolbelt_gateway::GatewayConfig;

async fn grants(w: &World) {
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    w.as_ann(
        "POST",
        "/api/v1/grants",
        json!({ "agent": "ann-bot", "toolbox": "own" }),
    )
    .await;
    w.as_ann("POST", "/api/v1/grants", json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha", "tool": "crash", "rule": "deny" })).await;
    w.as_bob(
        "POST",
        "/api/v1/grants",
        json!({ "agent": "bob-bot", "server": "tools", "toolbox": "alpha", "tool": "echo" }),
    )
    .await;
}

async fn sees_exactly(mode: &str) {
    let w = World::new(GatewayConfig::default()).await;
    grants(&w).await;
    let mut ann = w.ann_bot.mcp(mode).await;
    let mut bob = w.bob_bot.mcp(mode).await;
    let expected_proto = if mode == "legacy" {
        "2025-11-25"
    } else {
        "2026-07-28"
    };
    assert_eq!(ann.protocol, expected_proto);
    let a = ann.tool_names().await;
    assert!(
        a.contains(&"tools__echo".into()) && a.contains(&"mine__echo".into()),
        "{a:?}"
    );
    assert!(
        !a.contains(&"tools__crash".into()),
        "a denied tool is invisible: {a:?}"
    );
    assert!(
        a.contains(&"mine__crash".into()),
        "the deny rule is for alpha/tools only"
    );
    // Every fixture tool of own/mine, and the same tools of alpha/tools but `crash`.
    let of = |prefix: &str| -> Vec<String> {
        let mut v: Vec<String> = a
            .iter()
            .filter_map(|n| n.strip_prefix(prefix).map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let mine = of("mine__");
    let mut shared = of("tools__");
    shared.push("crash".into());
    shared.sort();
    assert!(mine.len() > 10, "the whole fixture: {a:?}");
    assert_eq!(shared, mine, "alpha/tools shows all but the denied tool");
    assert_eq!(a.len(), 2 * mine.len() - 1, "nothing else: {a:?}");
    assert_eq!(
        bob.tool_names().await,
        vec!["tools__echo".to_string()],
        "Bob's agent sees only the tool it was given"
    );

    let r = ann.call("mine__echo", json!({ "text": "from ann" })).await;
    assert_eq!(
        (r["ok"].as_bool(), r["text"].as_str()),
        (Some(true), Some("from ann")),
        "{r}"
    );
    let r = bob.call("tools__echo", json!({ "text": "from bob" })).await;
    assert_eq!(r["text"], "from bob");
    assert_eq!(
        r["structured"]["text"], "from bob",
        "structured output passes through"
    );

    // Invisible means uncallable, with the same answer as a tool that does not exist.
    let denied = ann.call("tools__crash", json!({ "code": 1 })).await;
    let ungranted = bob.call("tools__add", json!({ "a": 1, "b": 2 })).await;
    let foreign = bob.call("mine__echo", json!({ "text": "x" })).await;
    let missing = bob.call("tools__nope", json!({})).await;
    for r in [&denied, &ungranted, &foreign, &missing] {
        assert_eq!(r["code"], -32602, "{r}");
        assert!(
            r["message"].as_str().unwrap().starts_with("Unknown tool: "),
            "{r}"
        );
    }
    // Error codes and tool errors pass through unchanged.
    let e = ann.call("tools__fail", json!({ "mode": "protocol" })).await;
    assert_eq!(
        (e["code"].as_i64(), e["message"].as_str()),
        (Some(-32000), Some("failed on purpose")),
        "{e}"
    );
    let e = ann.call("tools__fail", json!({ "mode": "tool" })).await;
    assert_eq!(
        (e["ok"].as_bool(), e["is_error"].as_bool()),
        (Some(true), Some(true)),
        "{e}"
    );
    // Progress reaches the agent under its own token; prompts and resources are there too.
    // (At 10 ms apart the first notification was once lost on a loaded machine: a race
    // noted in the closing note of 2026-12-02, not yet found.)
    let p = ann.send(json!({ "op": "call", "name": "tools__progress", "args": { "steps": 3, "delay_ms": 150 }, "progress": true })).await;
    assert_eq!(p["progress"].as_array().unwrap().len(), 3, "{p}");
    let prompts = ann.send(json!({ "op": "list_prompts" })).await;
    let names: Vec<&str> = prompts["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["mine__greet", "tools__greet"]);
    let g = ann
        .send(json!({ "op": "get_prompt", "name": "tools__greet", "args": { "name": "Ann" } }))
        .await;
    assert_eq!(g["messages"][0]["content"]["text"], "Hello, Ann!");
    assert_eq!(
        bob.send(json!({ "op": "list_prompts" })).await["prompts"],
        json!([]),
        "a single tool grants no prompts"
    );
    // Both servers list `fixture://hello`: the agent sees each under its server's prefix,
    // and the bare URI, which either could answer, goes to neither (it went to the first).
    let listed = ann.send(json!({ "op": "list_resources" })).await;
    let mut uris: Vec<&str> = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    uris.sort();
    assert_eq!(
        uris,
        [
            "toolbelt://mine/fixture://hello",
            "toolbelt://tools/fixture://hello"
        ]
    );
    let bare = ann
        .send(json!({ "op": "read_resource", "uri": "fixture://hello" }))
        .await;
    assert_eq!(
        bare["ok"], false,
        "an ambiguous URI resolves to neither: {bare}"
    );
    for server in ["mine", "tools"] {
        let uri = format!("toolbelt://{server}/fixture://hello");
        let rd = ann.send(json!({ "op": "read_resource", "uri": uri })).await;
        assert_eq!(rd["contents"][0]["text"], "hello", "{rd}");
        assert_eq!(
            rd["contents"][0]["uri"], uri,
            "answered under the name asked"
        );
        // Which server answered: the audit event of the read says.
        let audit = w
            .as_ann(
                "GET",
                "/api/v1/audit?agent=ann-bot&action=resource.read&limit=1",
                Value::Null,
            )
            .await;
        let detail: Value =
            serde_json::from_str(audit["items"][0]["detail"].as_str().unwrap()).unwrap();
        assert_eq!(detail["server_name"], server, "{detail}");
    }
    ann.quit().await;
    bob.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_members_agents_see_exactly_their_tools_across_two_toolboxes_legacy() {
    sees_exactly("legacy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_members_agents_see_exactly_their_tools_across_two_toolboxes_2026() {
    sees_exactly("2026-07-28").await;
}

async fn revocation(mode: &str) {
    let w = World::new(GatewayConfig::default()).await;
    grants(&w).await;
    let mut ann = w.ann_bot.mcp(mode).await;
    assert_eq!(
        ann.call("tools__echo", json!({ "text": "1" })).await["text"],
        "1"
    );
    let gs = w
        .as_ann("GET", "/api/v1/grants?agent=ann-bot", Value::Null)
        .await;
    let server_grant = gs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "server")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.as_ann(
        "DELETE",
        &format!("/api/v1/grants/{server_grant}"),
        Value::Null,
    )
    .await;
    let r = ann.call("tools__echo", json!({ "text": "2" })).await;
    assert_eq!(
        r["code"], -32602,
        "the very next call after revoking the grant: {r}"
    );
    assert_eq!(
        ann.call("mine__echo", json!({ "text": "3" })).await["text"],
        "3",
        "other grants still hold"
    );
    // Switching a toolbelt item off works the same way.
    let g = w
        .as_ann(
            "POST",
            "/api/v1/grants",
            json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha" }),
        )
        .await;
    assert_eq!(
        ann.call("tools__echo", json!({ "text": "4" })).await["text"],
        "4"
    );
    w.as_ann(
        "PATCH",
        &format!("/api/v1/grants/{}", g["id"].as_str().unwrap()),
        json!({ "active": false }),
    )
    .await;
    assert_eq!(
        ann.call("tools__echo", json!({ "text": "5" })).await["code"],
        -32602
    );
    // Revoking the agent's token ends the session's use at the next request.
    w.as_ann("DELETE", "/api/v1/agents/ann-bot/tokens", Value::Null)
        .await;
    let r = ann.call("mine__echo", json!({ "text": "6" })).await;
    assert_eq!(r["ok"], false, "a revoked token stops the next call: {r}");
    assert!(
        r["message"].as_str().unwrap().contains("401")
            || r["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("unauthorized"),
        "{r}"
    );
    ann.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_a_grant_or_token_stops_the_next_call_in_an_open_session_legacy() {
    revocation("legacy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_a_grant_or_token_stops_the_next_call_in_an_open_session_2026() {
    revocation("2026-07-28").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_named_servers_get_deterministic_names_and_lists_paginate() {
    let w = World::new(GatewayConfig {
        page_size: 10,
        ..Default::default()
    })
    .await;
    // A second `mine`, on alpha: Ann's agent now sees two servers named `mine`.
    w.admin
        .deploy("mine", "fixture")
        .on("alpha")
        .await
        .running()
        .await;
    w.ann.grant("ann-bot").toolbox("own").await;
    w.ann.grant("ann-bot").server("mine", "alpha").await;
    let mut ann = w.ann_bot.mcp("legacy").await;
    let listed = ann.send(json!({ "op": "list_tools" })).await;
    let names: Vec<String> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    // Two fixture servers: every tool twice, in pages of 10 (the count
    // follows the fixture, so a new fixture tool does not break this).
    assert!(names.len() > 20, "{names:?}");
    assert_eq!(
        listed["pages"],
        names.len().div_ceil(10),
        "{} tools in pages of 10",
        names.len()
    );
    assert!(
        names.contains(&"mine-alpha__echo".into()) && names.contains(&"mine-own__echo".into()),
        "{names:?}"
    );
    assert!(names.iter().all(|n| {
        n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }));
    let mut again = ann.tool_names().await;
    let mut sorted = names.clone();
    sorted.sort();
    again.sort();
    assert_eq!(again, sorted, "the same names every time");
    assert_eq!(
        ann.call("mine-own__echo", json!({ "text": "own" })).await["text"],
        "own"
    );
    assert_eq!(
        ann.call("mine-alpha__echo", json!({ "text": "alpha" }))
            .await["text"],
        "alpha"
    );
    ann.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_precise_errors_and_sessions_belong_to_their_agent() {
    let w = World::new(GatewayConfig::default()).await;
    grants(&w).await;
    let http = toolbelt_net::http::client();
    let url = w.plane.mcp_url();
    let post = |token: Option<&str>, body: String, session: Option<&str>| {
        let mut r = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(s) = session {
            r = r
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-11-25");
        }
        r
    };
    let no_token = post(None, "{}".into(), None).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert!(
        no_token.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let bad = post(Some("tba_nonsense"), "{}".into(), None)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32010, "unauthorized: {body}");

    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "raw", "version": "1" } } });
    let res = post(Some(&w.ann_bot.token), init.to_string(), None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/json",
        "one-event replies come as plain JSON"
    );
    let sid = res.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    post(
        Some(&w.ann_bot.token),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string(),
        Some(&sid),
    )
    .send()
    .await
    .unwrap();
    let rpc = |body: String| {
        let req = post(Some(&w.ann_bot.token), body, Some(&sid));
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (_, v) = rpc("{\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": ".into()).await;
    assert_eq!(v["error"]["code"], -32700, "malformed JSON: {v}");
    let (_, v) = rpc(json!({ "jsonrpc": "2.0", "id": 3 }).to_string()).await;
    assert_eq!(v["error"]["code"], -32600, "not a request: {v}");
    let (_, v) =
        rpc(json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/frobnicate" }).to_string()).await;
    assert_eq!(v["error"]["code"], -32601, "unknown method: {v}");
    let (_, v) = rpc(json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": { "name": "tools__add", "arguments": { "a": "one", "b": 2 } } }).to_string()).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    // The gateway's own wording: the call never reached the server.
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid arguments: arguments.a"),
        "{v}"
    );
    assert_eq!(v["error"]["data"]["field"], "arguments.a");
    // On a connection of its own: the server answers 413 without reading the rest and
    // closes it, which a pooled connection would carry over to the next request.
    let big = json!({ "jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": { "name": "tools__echo", "arguments": { "text": "x".repeat(5 * 1024 * 1024) } } }).to_string();
    let status = toolbelt_net::http::client()
        .post(&url)
        .bearer_auth(&w.ann_bot.token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "2025-11-25")
        .body(big)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 413, "bodies over the limit");
    // Another agent presenting Ann's session id finds no such session.
    let stolen = post(
        Some(&w.bob_bot.token),
        json!({ "jsonrpc": "2.0", "id": 8, "method": "tools/list" }).to_string(),
        Some(&sid),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(stolen.status(), 404, "a session id of another agent");
    let body: Value = stolen.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32011, "session not found: {body}");
    // So does anyone presenting a session id nobody was given (rmcp's own 404).
    let made_up = post(
        Some(&w.ann_bot.token),
        json!({ "jsonrpc": "2.0", "id": 8, "method": "tools/list" }).to_string(),
        Some("0123456789abcdef"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(made_up.status(), 404);
    let body: Value = made_up.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32011, "session not found: {body}");
    // Stateless 2026-07-28 requests get no session id.
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" } });
    let res = http.post(&url).bearer_auth(&w.bob_bot.token).header("content-type", "application/json").header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28").header("mcp-method", "tools/list")
        .body(json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": { "_meta": meta } }).to_string()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("mcp-session-id").is_none(),
        "stateless mode issues no session id"
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["result"]["tools"][0]["name"], "tools__echo", "{v}");
    eventually(
        "the denied and failed calls in the audit log",
        WAIT,
        || async {
            let a = w
                .as_admin(
                    "GET",
                    "/api/v1/audit?action=tool.call&outcome=failure",
                    Value::Null,
                )
                .await;
            a["items"].as_array().is_some_and(|i| !i.is_empty())
        },
    )
    .await;
}
