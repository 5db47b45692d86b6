//! Tool search through the official Python SDK, in both protocol eras and with the fast
//! path on and off: an agent in `search` mode lists `find_tools`, `call_tool` and its
//! always-visible tools; `find_tools` returns only tools it is granted (not denied, not
//! another server's it has no grant for); `call_tool` on those gets exactly the error a
//! direct call gets, an `ask` tool through `call_tool` waits for the owner, and the audit
//! event names the real tool; a token of its own can list everything; a toolset endpoint
//! lists exactly its tools and calls nothing else.

use crate::gw_setup::{WAIT, World};
use serde_json::{Value, json};
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::sdk::Sdk;
use toolbelt_gateway::GatewayConfig;

fn names(r: &Value) -> Vec<String> {
    r["structured"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("find_tools answers a list: {r}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

async fn search_mode(era: &str, fast_path: bool) {
    let w = World::new(GatewayConfig {
        fast_path,
        ..Default::default()
    })
    .await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    w.as_ann("POST", "/api/v1/grants", json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha", "tool": "crash", "rule": "deny" })).await;
    w.as_ann("POST", "/api/v1/grants", json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha", "tool": "add", "rule": "ask" })).await;
    // A token issued before the change keeps following the agent; one with its own mode
    // lists everything.
    let all = w
        .as_ann(
            "POST",
            "/api/v1/agents/ann-bot/tokens",
            json!({ "label": "ide", "discovery": "all" }),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let updated = w
        .as_ann(
            "PATCH",
            "/api/v1/agents/ann-bot",
            json!({ "discovery": "search", "always_visible": ["tools__echo"] }),
        )
        .await;
    assert_eq!(updated["agent"]["discovery"], "search", "{updated}");
    assert_eq!(updated["always_visible"], json!(["tools__echo"]));

    let mut ann = w.ann_bot.mcp(era).await;
    assert_eq!(
        ann.tool_names().await,
        ["call_tool", "find_tools", "tools__echo"],
        "search mode lists the meta tools and the always-visible tool"
    );
    let mut full = Sdk::connect(&w.plane.mcp_url(), &all, era).await;
    let every = full.tool_names().await;
    assert!(
        every.len() > 10 && every.contains(&"tools__add".into()),
        "{every:?}"
    );
    assert!(!every.contains(&"find_tools".into()));
    full.quit().await;

    // Found: granted tools only, never the denied one nor Ann's own server's (ungranted).
    let found = ann
        .call(
            "find_tools",
            json!({ "query": "exits the process at once without replying", "limit": 50 }),
        )
        .await;
    let found = names(&found);
    assert!(
        !found
            .iter()
            .any(|n| n == "tools__crash" || n.starts_with("mine__")),
        "{found:?}"
    );
    let found = names(
        &ann.call("find_tools", json!({ "query": "adds two numbers" }))
            .await,
    );
    assert_eq!(
        found.first().map(String::as_str),
        Some("tools__add"),
        "{found:?}"
    );
    let bad = ann.call("find_tools", json!({ "limit": 3 })).await;
    assert_eq!(bad["code"], -32602, "a query is required: {bad}");

    // The same errors as a direct call, for a denied and for an ungranted tool.
    for name in ["tools__crash", "mine__echo", "nope__nothing"] {
        let direct = ann.call(name, json!({ "text": "x" })).await;
        let through = ann
            .call(
                "call_tool",
                json!({ "name": name, "arguments": { "text": "x" } }),
            )
            .await;
        assert_eq!(direct["ok"], false, "{direct}");
        assert_eq!(
            (&through["code"], &through["message"]),
            (&direct["code"], &direct["message"]),
            "call_tool({name}) answers as a direct call does"
        );
    }
    let r = ann
        .call(
            "call_tool",
            json!({ "name": "tools__echo", "arguments": { "text": "through search" } }),
        )
        .await;
    assert_eq!(r["text"], "through search", "{r}");
    let audit = w
        .as_ann(
            "GET",
            "/api/v1/audit?action=tool.call&limit=200",
            Value::Null,
        )
        .await;
    // `detail` is the event's canonical JSON, as chained.
    let details: Vec<Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| serde_json::from_str(e["detail"].as_str()?).ok())
        .collect();
    let tools: Vec<&str> = details.iter().filter_map(|d| d["tool"].as_str()).collect();
    assert!(
        tools.contains(&"tools__echo"),
        "the event names the real tool: {tools:?}"
    );
    assert!(!tools.contains(&"call_tool"), "{tools:?}");

    // `ask` through call_tool waits for the owner.
    let call = tokio::spawn(async move {
        let r = ann
            .call(
                "call_tool",
                json!({ "name": "tools__add", "arguments": { "a": 40, "b": 2 } }),
            )
            .await;
        (ann, r)
    });
    let asked = eventually("an approval request", WAIT, async || {
        let list = w.ann.rest.get("/api/v1/approvals").await;
        list.as_array().unwrap().first().cloned().ok_or(list)
    })
    .await;
    assert_eq!(asked["tool"], "add", "{asked}");
    let id = asked["id"].as_str().unwrap();
    w.as_ann(
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        json!({}),
    )
    .await;
    let (mut ann, r) = call.await.unwrap();
    assert_eq!(r["structured"]["sum"], 42.0, "approved, the call ran: {r}");

    // Revoking the grant: the next search finds nothing of that server, the next call fails.
    let grants = w
        .as_ann("GET", "/api/v1/grants?agent=ann-bot", Value::Null)
        .await;
    let server_grant = grants["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "server")
        .unwrap_or_else(|| panic!("{grants}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.as_ann(
        "DELETE",
        &format!("/api/v1/grants/{server_grant}"),
        Value::Null,
    )
    .await;
    let found = names(
        &ann.call("find_tools", json!({ "query": "echoes text back" }))
            .await,
    );
    assert!(!found.contains(&"tools__echo".into()), "{found:?}");
    let r = ann
        .call(
            "call_tool",
            json!({ "name": "tools__echo", "arguments": { "text": "x" } }),
        )
        .await;
    assert_eq!(r["code"], -32602, "revoked: {r}");
    ann.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_mode_legacy_fast_path() {
    search_mode("legacy", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_mode_legacy_through_rmcp() {
    search_mode("legacy", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_mode_stateless() {
    search_mode("2026-07-28", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toolset_endpoint_lists_exactly_its_tools() {
    let w = World::new(GatewayConfig::default()).await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let set = w
        .as_ann(
            "POST",
            "/api/v1/agents/ann-bot/toolsets",
            json!({ "name": "triage", "tools": ["tools__echo", "tools__add"] }),
        )
        .await;
    assert_eq!(set["path"], "/mcp/toolsets/triage", "{set}");
    let (status, refused) = w
        .ann
        .rest
        .send(
            "POST",
            "/api/v1/agents/ann-bot/toolsets",
            Some(json!({ "name": "mine", "tools": ["mine__echo"] })),
        )
        .await;
    assert_eq!(
        status, 422,
        "an ungranted tool cannot join a toolset: {refused}"
    );
    let url = format!("{}/toolsets/triage", w.plane.mcp_url());
    for era in ["legacy", "2026-07-28"] {
        let mut t = Sdk::connect(&url, &w.ann_bot.token, era).await;
        assert_eq!(t.tool_names().await, ["tools__add", "tools__echo"], "{era}");
        let r = t.call("tools__echo", json!({ "text": "in the set" })).await;
        assert_eq!(r["text"], "in the set", "{r}");
        let r = t.call("tools__fail", json!({ "mode": "tool" })).await;
        assert_eq!(r["code"], -32602, "outside the set it does not exist: {r}");
        t.quit().await;
    }
    let mut whole = w.ann_bot.mcp("legacy").await;
    assert!(
        whole.tool_names().await.len() > 10,
        "/mcp itself is unchanged"
    );
    whole.quit().await;
    let listed = w
        .as_ann("GET", "/api/v1/agents/ann-bot/toolsets", Value::Null)
        .await;
    assert_eq!(
        listed[0]["tools"],
        json!(["tools__add", "tools__echo"]),
        "{listed}"
    );
    let found = w
        .as_ann(
            "GET",
            "/api/v1/agents/ann-bot/find-tools?q=echoes%20text",
            Value::Null,
        )
        .await;
    assert_eq!(found[0]["name"], "tools__echo", "{found}");
    w.as_ann(
        "DELETE",
        "/api/v1/agents/ann-bot/toolsets/triage",
        Value::Null,
    )
    .await;
    let status = toolbelt_net::http::client()
        .post(&url)
        .bearer_auth(&w.ann_bot.token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 404, "a deleted toolset's endpoint is gone");
    // Bob cannot see, search or change Ann's agent.
    let (status, _) = w
        .bob
        .rest
        .send("GET", "/api/v1/agents/ann-bot/find-tools?q=echo", None)
        .await;
    assert_eq!(status, 404);
}
