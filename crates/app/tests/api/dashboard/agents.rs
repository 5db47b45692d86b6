//! The agent builder: create (token once, client configs), field errors, tokens, the
//! toolbelt editor — and another member's agent is 404.

use super::browser::{Browser, PASSWORD, catalog_fx, deployed, member};
use crate::support::App;
use http::StatusCode;
use toolbelt_model::ServerId;
use toolbelt_model::gateway::Pin;
use toolbelt_testkit::db::TestDb;

async fn app() -> App {
    App::new(TestDb::sqlite().await).await
}

/// The id in the first `href="/agents/<id>"` after `marker`.
fn agent_href(html: &str) -> String {
    let at = html.find(r#"href="/agents/agt_"#).expect("an agent link") + r#"href="/agents/"#.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_created_with_its_token_shown_once_and_configs() {
    let app = app().await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let empty = b.get("/agents").await;
    assert!(empty.has(r#"id="agents-empty""#));
    let made = b
        .post(
            "/agents",
            &[("name", "support-bot"), ("description", "helps")],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.html);
    let token_at =
        made.html.find(r#"<code id="agent-token">"#).unwrap() + r#"<code id="agent-token">"#.len();
    let token = &made.html[token_at..token_at + made.html[token_at..].find('<').unwrap()];
    assert!(token.starts_with("tba_"), "{token}");
    for id in [
        "config-claude",
        "config-vscode",
        "config-cursor",
        "config-stdio",
        "copy-token",
    ] {
        assert!(made.has(&format!(r#"id="{id}""#)), "{id}");
    }
    assert!(made.has("toolbelt stdio") && made.has("http://toolbelt.test/mcp"));
    let list = b.get("/agents").await;
    assert!(list.has(r#"id="agent-support-bot""#));
    assert!(!list.has(token), "the token is not shown again");
    let id = agent_href(&list.html);
    let detail = b.get(&format!("/agents/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.html);
    assert!(detail.has(r#"id="agent-tokens""#) && detail.has(r#"id="toolbelt""#));
    assert!(
        detail.has(r#"id="agent-sees-empty""#),
        "it sees nothing yet: {}",
        detail.html
    );
    assert!(!detail.has(token));
    let api = app.get("/api/v1/agents", &ann).await;
    assert_eq!(api.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_agent_form_shows_the_field_error_and_creates_nothing() {
    let app = app().await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    b.get("/agents").await;
    let before = app.audit_count().await;
    let bad = b
        .post(
            "/agents",
            &[("name", "not a name!"), ("description", "kept")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(
        bad.has(r#"id="agent-name-error""#),
        "the error is next to its field: {}",
        bad.html
    );
    assert!(bad.has(r#"aria-invalid="true" aria-describedby="agent-name-error""#));
    assert!(
        bad.has(r#"value="not a name!""#) && bad.has(r#"value="kept""#),
        "the input is kept"
    );
    assert!(!bad.has("agent-token"));
    let api = app.get("/api/v1/agents", &ann).await;
    assert!(
        api.body["items"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
    assert_eq!(app.audit_count().await, before, "nothing audited");
    // A duplicate name is a conflict, shown at the form.
    b.post("/agents", &[("name", "bot")]).await;
    b.get("/agents").await;
    let dup = b.post("/agents", &[("name", "bot")]).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.html);
    assert!(dup.has(r#"id="agent-create-error""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_issued_and_revoked_and_the_toolbelt_editor_grants() {
    let app = app().await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (tb, srv) = deployed(&app, &ann, "ann").await;
    // Tools as the gateway would have pinned them after discovery.
    let mut c = app.store.conn().await.unwrap();
    for tool in ["echo", "wipe"] {
        let pin = Pin {
            server_id: ServerId::from_db(srv.clone()),
            kind: Default::default(),
            tool: tool.into(),
            hash: "ab".repeat(32),
            definition: serde_json::json!({ "name": tool, "description": format!("{tool}s") }),
            flags: vec![],
        };
        toolbelt_store::pins::set(&mut c, &pin, None).await.unwrap();
    }
    drop(c);
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    b.get("/agents").await;
    b.post("/agents", &[("name", "bot")]).await;
    let id = agent_href(&b.get("/agents").await.html);
    let page = format!("/agents/{id}");
    let detail = b.get(&page).await;
    assert!(
        detail.has(&format!(r#"id="grant-server-{tb}-ann-srv""#)),
        "{}",
        detail.html
    );
    assert!(detail.has(&format!(r#"id="rule-{tb}-ann-srv--wipe""#)));

    let server_field = format!("server:{srv}");
    let echo = format!("tool:{srv}:echo");
    let wipe = format!("tool:{srv}:wipe");
    let saved = b
        .post(
            &format!("{page}/toolbelt"),
            &[(&server_field, "on"), (&echo, ""), (&wipe, "ask")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let grants = app.get(&format!("/api/v1/grants?agent={id}"), &ann).await;
    let items = grants.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(
        items
            .iter()
            .any(|g| g["kind"] == "server" && g["active"] == true)
    );
    assert!(
        items
            .iter()
            .any(|g| g["kind"] == "tool" && g["tool"] == "wipe" && g["rule"] == "ask")
    );
    let again = b.get(&page).await;
    assert!(
        again.has(r#"<option value="ask" selected>"#),
        "the editor shows the rule"
    );

    // Unchecking switches the server off (kept), clearing a rule removes it.
    b.post(
        &format!("{page}/toolbelt"),
        &[(&server_field, "off"), (&echo, ""), (&wipe, "")],
    )
    .await;
    let grants = app.get(&format!("/api/v1/grants?agent={id}"), &ann).await;
    let items = grants.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["active"], false);
    let bad = b
        .post(&format!("{page}/toolbelt"), &[(&wipe, "maybe")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);

    // A second token, shown once; then revoked.
    b.get(&page).await;
    let issued = b
        .post(&format!("{page}/tokens"), &[("label", "laptop")])
        .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.html);
    assert!(issued.has(r#"id="agent-token""#));
    let tokens = app.get(&format!("/api/v1/agents/{id}/tokens"), &ann).await;
    let laptop = tokens
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "laptop")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = b.post(&format!("{page}/tokens/{laptop}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.html);
    let tokens = app.get(&format!("/api/v1/agents/{id}/tokens"), &ann).await;
    let t = tokens
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "laptop")
        .unwrap()
        .clone();
    assert!(t["revoked_at"].is_string(), "{t}");

    // Deleting asks first.
    assert_eq!(
        b.get(&format!("{page}/delete")).await.status,
        StatusCode::OK
    );
    let gone = b.post(&format!("{page}/delete"), &[]).await;
    assert_eq!(
        gone.location
            .as_deref()
            .map(|l| l.starts_with("/agents?done=")),
        Some(true)
    );
    assert_eq!(b.get(&page).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_agent_is_not_found() {
    let app = app().await;
    member(&app, "ann@example.com").await;
    member(&app, "bob@example.com").await;
    let mut bob = Browser::new(&app);
    bob.sign_in("bob@example.com", PASSWORD).await;
    bob.get("/agents").await;
    bob.post("/agents", &[("name", "bob-bot")]).await;
    let id = agent_href(&bob.get("/agents").await.html);
    let mut ann = Browser::new(&app);
    ann.sign_in("ann@example.com", PASSWORD).await;
    for path in [
        format!("/agents/{id}"),
        format!("/agents/{id}/delete"),
        "/agents/bob-bot".into(),
    ] {
        let p = ann.get(&path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(!p.has("bob@example.com") && !p.has(r#"id="agent-tokens""#));
    }
    for path in ["toolbelt", "tokens", "delete"] {
        let p = ann
            .post(&format!("/agents/{id}/{path}"), &[("label", "x")])
            .await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "POST {path}: {}", p.html);
    }
    assert!(!ann.get("/agents").await.has("bob-bot"));
    assert_eq!(
        bob.get(&format!("/agents/{id}")).await.status,
        StatusCode::OK,
        "bob's agent is still there"
    );
}
