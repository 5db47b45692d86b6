//! The agent page's token form with a discovery mode (issue 15): the token issued lists
//! its tools in that mode at the gateway whatever its agent's is, the agent's default
//! stays the default, and a bad mode is a field error that issues nothing.

use super::browser::{Browser, PASSWORD, member};
use crate::mcp_auth::{host, send};
use crate::support::App;
use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use toolbelt_testkit::db::TestDb;

/// The token shown once on a token page.
fn shown_token(html: &str) -> String {
    let at = html.find(r#"<code id="agent-token">"#).expect("a token")
        + r#"<code id="agent-token">"#.len();
    html[at..at + html[at..].find('<').unwrap()].to_string()
}

async fn tokens(app: &App, agent: &str, as_token: &str) -> Value {
    app.get(&format!("/api/v1/agents/{agent}/tokens"), as_token)
        .await
        .body
}

/// One JSON-RPC message to the gateway's `/mcp` with `token` (and session); the reply's
/// JSON (an SSE reply's `data:` line) and the session id.
async fn rpc(app: &App, token: &str, session: Option<&str>, msg: Value) -> (Value, Option<String>) {
    let mut r = Request::post("/mcp")
        .header(header::HOST, host(app).await)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(s) = session {
        r = r
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let reply = send(app, r, Body::from(msg.to_string())).await;
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.text
    );
    let body = reply
        .text
        .lines()
        .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(str::to_string)
        .unwrap_or(reply.text.clone());
    let session = reply
        .headers
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    (serde_json::from_str(&body).unwrap_or(Value::Null), session)
}

/// The tool names `tools/list` gives `token`.
async fn tool_names(app: &App, token: &str) -> Vec<String> {
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "raw", "version": "1" } } });
    let (_, session) = rpc(app, token, None, init).await;
    let s = session.as_deref();
    rpc(
        app,
        token,
        s,
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
    )
    .await;
    let (list, _) = rpc(
        app,
        token,
        s,
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
    )
    .await;
    let mut names: Vec<String> = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list: {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_from_the_agent_page_lists_tools_in_the_mode_chosen() {
    let app = App::new(TestDb::sqlite().await).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let made = b
        .post("/agents", &[("name", "bot"), ("description", "")])
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.html);
    let first = shown_token(&made.html);
    let id = app.get("/api/v1/agents", &ann).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = format!("/agents/{id}");
    let detail = b.get(&page).await;
    assert!(
        detail.has(r#"<select id="token-discovery" name="discovery""#),
        "{}",
        detail.html
    );

    let bad = b
        .post(
            &format!("{page}/tokens"),
            &[("label", "odd"), ("discovery", "some")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.has(r#"id="token-discovery-error""#), "{}", bad.html);
    assert_eq!(
        tokens(&app, &id, &ann).await.as_array().unwrap().len(),
        1,
        "nothing issued"
    );

    b.get(&page).await;
    let search = b
        .post(
            &format!("{page}/tokens"),
            &[("label", "ide"), ("discovery", "search")],
        )
        .await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.html);
    assert!(
        search.has(r#"id="agent-token-discovery">search<"#),
        "{}",
        search.html
    );
    let search = shown_token(&search.html);
    b.get(&page).await;
    let default = b
        .post(
            &format!("{page}/tokens"),
            &[("label", "cli"), ("discovery", "")],
        )
        .await;
    assert_eq!(default.status, StatusCode::OK, "{}", default.html);
    let default = shown_token(&default.html);

    let listed = tokens(&app, &id, &ann).await;
    let mode = |label: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == label)
            .unwrap()["discovery"]
            .clone()
    };
    assert_eq!(
        (mode("ide"), mode("cli")),
        (json!("search"), Value::Null),
        "{listed}"
    );
    assert!(
        b.get(&page)
            .await
            .has(r#"<td class="token-discovery">search</td>"#)
    );

    // The agent lists everything (nothing granted yet); the search token only the meta tools.
    assert_eq!(tool_names(&app, &search).await, ["call_tool", "find_tools"]);
    assert!(tool_names(&app, &default).await.is_empty());
    assert!(tool_names(&app, &first).await.is_empty());
}
