//! Connections and the trust centre: both render for their owner (status, expiry, grants,
//! the matrix, recent uses), Connect starts a PKCE flow bound to this session and sends
//! the browser to the provider, the grant form creates and removes connection grants with
//! field errors, revoking needs the form's CSRF token — and another member's connection,
//! grant, agent and token ids are 404 on every route, changing nothing.

use super::browser::{Browser, PASSWORD, member};
use crate::support::{ADMIN, App};
use http::StatusCode;
use serde_json::json;
use toolbelt_model::{ConnectionId, ProviderId, UserId};
use toolbelt_store::oauth::{self as rows, NewConnection};
use toolbelt_testkit::db::TestDb;

async fn app() -> App {
    App::new(TestDb::sqlite().await).await
}

/// The provider `prov` (no revocation endpoint: a revoke deletes here and says so).
async fn provider(app: &App) {
    app.ok(
        "/api/v1/providers",
        ADMIN,
        json!({
            "name": "prov", "kind": "custom", "client_id": "cid", "client_secret": "shh",
            "authorization_endpoint": "http://127.0.0.1:9/authorize",
            "token_endpoint": "http://127.0.0.1:9/token", "default_scopes": ["read"],
        }),
    )
    .await;
}

/// A connection of `owner`'s to `prov`, written to the store (the flow itself runs
/// against a real authorization server in the e2e tests), expiring in an hour.
async fn connection(app: &App, owner: &str, token: &str, n: usize) -> String {
    let secret = app
        .ok(
            "/api/v1/secrets",
            token,
            json!({ "name": format!("con-tokens-{n}"), "value": "{}" }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = app.store.conn().await.unwrap();
    let p = rows::get_provider(&mut c, "prov").await.unwrap();
    let id = ConnectionId::generate();
    rows::insert_connection(
        &mut c,
        NewConnection {
            id: &id,
            owner_id: &UserId::from_db(owner.to_string()),
            provider_id: &ProviderId::from_db(p.id.to_string()),
            scopes: &["read".to_string(), "write".to_string()],
            token_secret_id: &secret,
            has_refresh: false,
            expires_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            next_refresh_at: None,
        },
    )
    .await
    .unwrap();
    id.to_string()
}

/// An agent of `token`'s holder: (agent id, its token's id).
async fn agent(app: &App, token: &str, name: &str) -> (String, String) {
    let v = app
        .ok("/api/v1/agents", token, json!({ "name": name }))
        .await;
    (
        v["agent"]["id"].as_str().unwrap().into(),
        v["token"]["info"]["id"].as_str().unwrap().into(),
    )
}

/// Ann with an agent `bot` granted her connection: (ann's token, connection, agent id,
/// agent token id, grant id).
struct Ann {
    token: String,
    con: String,
    agent: String,
    agent_token: String,
    grant: String,
}

async fn ann(app: &App) -> Ann {
    provider(app).await;
    let (id, token) = member(app, "ann@example.com").await;
    let con = connection(app, &id, &token, 1).await;
    let (agent, agent_token) = agent(app, &token, "bot").await;
    let grant = app
        .ok(
            "/api/v1/grants",
            &token,
            json!({ "agent": "bot", "connection": con }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    Ann {
        token,
        con,
        agent,
        agent_token,
        grant,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_the_trust_centre_render_for_their_owner() {
    let app = app().await;
    let a = ann(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;

    let p = b.get("/connections").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.html);
    assert!(p.has(r#"id="nav-connections" href="/connections" aria-current="page""#));
    let con = &a.con;
    for id in [
        format!("connection-{con}"),
        format!("connection-status-{con}"),
        format!("revoke-{con}"),
        format!("reconnect-{con}"),
        format!("grant-{}", a.grant),
        "connect-prov".into(),
        "connect-prov-scopes".into(),
        "grant-create".into(),
    ] {
        assert!(p.has(&format!(r#"id="{id}""#)), "/connections has #{id}");
    }
    assert!(p.has(">active<") && p.has("read write"), "{}", p.html);
    // The countdown: the server writes the time left, the script ticks it.
    assert!(p.has("data-expires=") && p.has(">in 59 min"), "{}", p.html);
    assert!(p.has("any granted server asking for its provider"));

    let d = b.get(&format!("/connections/{con}")).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.html);
    assert!(d.has(&format!(r#"id="grant-{}""#, a.grant)), "{}", d.html);
    // Reconnect: off to the provider, with a flow that re-authorizes this connection.
    let r = b.post(&format!("/connections/{con}/reconnect"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let to = r.location.unwrap();
    assert!(
        to.starts_with("http://127.0.0.1:9/authorize?") && to.contains("scope=read+write"),
        "{to}"
    );
    let flows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM oauth_flows WHERE reconnects = $1")
        .bind(con.as_str())
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(flows, 1);

    let t = b.get("/trust").await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.html);
    assert!(t.has(r#"id="nav-trust" href="/trust" aria-current="page""#));
    for id in [
        "trust-matrix".to_string(),
        "trust-agent-bot".into(),
        format!("cell-bot-{con}"),
        format!("trust-grant-delete-{}", a.grant),
        format!("token-revoke-{}", a.agent_token),
        format!("trust-revoke-{con}"),
    ] {
        assert!(
            t.has(&format!(r#"id="{id}""#)),
            "/trust has #{id}: {}",
            t.html
        );
    }
    assert!(t.has("through any granted server asking for it"));
    assert!(t.has(r#"id="trust-connection-agents-"#));

    // Connect: the API's flow start, bound to this session, and off to the provider with
    // PKCE S256 and a state.
    let go = b
        .post(
            "/connections/connect",
            &[("provider", "prov"), ("scopes", "read"), ("login_hint", "")],
        )
        .await;
    assert_eq!(go.status, StatusCode::SEE_OTHER, "{}", go.html);
    let to = go.location.unwrap();
    assert!(to.starts_with("http://127.0.0.1:9/authorize?"), "{to}");
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "scope=read",
    ] {
        assert!(to.contains(part), "{to} has {part}");
    }
    // A scope the provider cannot take: the field's error next to it, no flow.
    let bad = b
        .post(
            "/connections/connect",
            &[("provider", "prov"), ("scopes", "re\u{1}ad")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.has(r#"id="connect-prov-scopes-error""#), "{}", bad.html);
    let _ = a.token;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_grants_are_made_and_removed_with_field_errors() {
    let app = app().await;
    let a = ann(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    b.get("/connections").await;
    let before = app.audit_count().await;
    let bad = b
        .post(
            "/connections/grants",
            &[
                ("agent", &a.agent),
                ("connection", "con_nope"),
                ("server", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.has(r#"id="grant-connection-error""#), "{}", bad.html);
    assert_eq!(app.audit_count().await, before, "nothing created");

    let gone = b
        .post(&format!("/connections/grants/{}/delete", a.grant), &[])
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.html);
    let grants = app.get("/api/v1/grants?agent=bot", &a.token).await.body;
    assert!(grants["items"].as_array().unwrap().is_empty(), "{grants}");

    let made = b
        .post(
            "/connections/grants",
            &[("agent", &a.agent), ("connection", &a.con), ("server", "")],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let grants = app.get("/api/v1/grants?agent=bot", &a.token).await.body;
    let items = grants["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{grants}");
    assert_eq!(
        (
            items[0]["kind"].as_str(),
            items[0]["connection_id"].as_str()
        ),
        (Some("connection"), Some(a.con.as_str())),
        "{grants}"
    );
    let listed = b.get("/connections").await;
    let made = items[0]["id"].as_str().unwrap();
    assert!(
        listed.has(&format!(r#"id="grant-{made}""#)),
        "{}",
        listed.html
    );
    // The same grant again: refused with its reason, nothing added.
    let again = b
        .post(
            "/connections/grants",
            &[("agent", &a.agent), ("connection", &a.con), ("server", "")],
        )
        .await;
    assert!(again.status.is_client_error(), "{}", again.status);
    assert!(again.has(r#"id="grant-create-error""#), "{}", again.html);

    let gone = b.post(&format!("/trust/grants/{made}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.html);
    assert_eq!(
        gone.location
            .as_deref()
            .map(|l| l.starts_with("/trust?done=")),
        Some(true)
    );
    let grants = app.get("/api/v1/grants?agent=bot", &a.token).await.body;
    assert!(grants["items"].as_array().unwrap().is_empty(), "{grants}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_needs_the_csrf_token_and_is_remembered() {
    let app = app().await;
    let a = ann(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    b.get("/trust").await;
    let con = &a.con;
    for path in [
        format!("/connections/{con}/revoke"),
        format!("/trust/connections/{con}/revoke"),
        format!("/trust/grants/{}/delete", a.grant),
        format!("/trust/agents/{}/tokens/{}/revoke", a.agent, a.agent_token),
    ] {
        let p = b.post_raw(&path, &[]).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path} without CSRF");
        let p = b.post_raw(&path, &[("csrf", "forged")]).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path} with a wrong token");
    }
    let c = app
        .get(&format!("/api/v1/connections/{con}"), &a.token)
        .await;
    assert_eq!(c.status, StatusCode::OK, "still there");

    // With the page's token: the agent's token, then the connection, from the trust centre.
    let t = b
        .post(
            &format!("/trust/agents/{}/tokens/{}/revoke", a.agent, a.agent_token),
            &[],
        )
        .await;
    assert_eq!(t.status, StatusCode::SEE_OTHER, "{}", t.html);
    let r = b
        .post(&format!("/trust/connections/{con}/revoke"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let back = r.location.unwrap();
    assert!(back.starts_with("/trust?done="), "{back}");
    let c = app
        .get(&format!("/api/v1/connections/{con}"), &a.token)
        .await;
    assert_eq!(c.status, StatusCode::NOT_FOUND);
    let t = b.get(&back).await;
    assert!(t.has(r#"id="notice""#) && t.has("revoked"), "{}", t.html);
    assert!(!t.has(&format!(r#"id="trust-revoke-{con}""#)));
    assert!(!t.has(&format!(r#"id="token-revoke-{}""#, a.agent_token)));
    assert!(t.has("connection.revoke"), "the recent uses: {}", t.html);
    let p = b.get("/connections").await;
    assert!(p.has(&format!(r#"id="revoked-{con}""#)), "{}", p.html);
    assert!(p.has(r#"id="connections-empty""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_connection_grant_and_agent_are_not_found() {
    let app = app().await;
    let a = ann(&app).await;
    let (bob_id, bob) = member(&app, "bob@example.com").await;
    let bob_con = connection(&app, &bob_id, &bob, 2).await;
    let mut b = Browser::new(&app);
    b.sign_in("bob@example.com", PASSWORD).await;
    let con = &a.con;
    let p = b.get(&format!("/connections/{con}")).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND, "{}", p.html);
    assert!(!p.has("read write"), "the page tells nothing about it");
    for path in [
        format!("/connections/{con}/revoke"),
        format!("/connections/{con}/refresh"),
        format!("/connections/{con}/reconnect"),
        format!("/connections/grants/{}/delete", a.grant),
        format!("/trust/connections/{con}/revoke"),
        format!("/trust/grants/{}/delete", a.grant),
        format!("/trust/agents/{}/tokens/{}/revoke", a.agent, a.agent_token),
    ] {
        let p = b.post(&path, &[]).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "POST {path}: {}", p.html);
    }
    // Nor can bob lend ann's connection to an agent of his.
    agent(&app, &bob, "spy").await;
    b.get("/connections").await;
    let p = b
        .post(
            "/connections/grants",
            &[("agent", "spy"), ("connection", con), ("server", "")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.html);
    for path in ["/connections", "/trust"] {
        let p = b.get(path).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(
            !p.has(con) && !p.has(&a.agent),
            "{path} shows none of ann's"
        );
        assert!(p.has(&bob_con), "{path} shows bob's own");
    }
    let c = app
        .get(&format!("/api/v1/connections/{con}"), &a.token)
        .await;
    assert_eq!(c.status, StatusCode::OK, "ann's connection is untouched");
    let g = app.get("/api/v1/grants?agent=bot", &a.token).await.body;
    assert_eq!(g["items"].as_array().unwrap().len(), 1, "and her grant");
    let t = app
        .get(&format!("/api/v1/agents/{}/tokens", a.agent), &a.token)
        .await
        .body;
    assert!(
        t.to_string().contains(&a.agent_token) && !t.to_string().contains("revoked_at\":\"2"),
        "{t}"
    );
}
