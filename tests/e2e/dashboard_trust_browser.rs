//! Connections and the trust centre in a real browser (headless Chromium): connecting an
//! account end to end against the Authlib authorization server on another site than
//! Toolbelt's (Toolbelt at `http://localhost:PORT`, the provider at `http://127.0.0.1:PORT`,
//! so the session cookie's `SameSite` rule meets the provider's redirect back for real),
//! an agent calling with it through `/mcp`, revoking it from the trust centre; and a member
//! meeting another member's agent, connection and server as 404, and a form without its
//! CSRF token refused. Element ids are the ones `crates/dashboard/README.md` documents.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::browser::Browser;
use toolbelt_e2e::eventually::{WAIT, eventually};
use toolbelt_e2e::oauth::{self, CLIENT_ID, CLIENT_SECRET};
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::sdk::Sdk;
use toolbelt_e2e::world::Caller;
use toolbelt_model::{ConnectionId, ProviderId, UserId};
use toolbelt_net::ssrf::AllowList;
use toolbelt_store::oauth::{self as rows, NewConnection};

/// A control plane listening on 127.0.0.1 whose public URL (the browser's, and the OAuth
/// callback's) is `http://localhost:PORT` — another site than the fixtures on 127.0.0.1.
async fn plane_on_localhost() -> (Plane, String) {
    let port = toolbelt_testkit::proc::free_port();
    let public = format!("http://localhost:{port}");
    let p = public.clone();
    let plane = Plane::start_with(Duration::from_millis(300), move |o| {
        o.listen = format!("127.0.0.1:{port}").parse().unwrap();
        o.public_url = Some(p);
        // The remote MCP server and the provider are on loopback.
        o.gateway.ssrf_allow = AllowList::parse("127.0.0.1/32").unwrap();
    })
    .await;
    (plane, public)
}

async fn id_of(who: &Caller, path: &str) -> String {
    who.rest.get(path).await["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_connects_an_account_on_another_site_and_revoking_it_in_the_trust_centre_stops_the_agent()
 {
    let (plane, public) = plane_on_localhost().await;
    let auth = oauth::authorization_server(&format!("{public}/oauth/local/callback"), 300).await;
    let mcp = oauth::protected_mcp(&auth).await;
    let admin = plane.admin().clone();
    admin
        .rest
        .post(
            "/api/v1/providers",
            json!({ "name": "local", "kind": "custom", "issuer": auth.url, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "default_scopes": ["read", "write"] }),
        )
        .await;
    admin
        .catalog(
            json!({ "slug": "notes", "source": { "type": "remote", "url": mcp.url },
            "transport": "streamable_http", "oauth": { "provider": "local", "scopes": ["read"] } }),
        )
        .await;
    let ann = admin.member("ann@example.com").await;
    ann.rest
        .post(
            "/api/v1/toolboxes",
            json!({ "name": "mine", "kind": "remote" }),
        )
        .await;
    let bot = ann.agent("bot").await;
    ann.rest
        .post(
            "/api/v1/servers",
            json!({ "name": "notes", "catalog": "notes", "toolbox": "mine" }),
        )
        .await;
    ann.grant("bot").server("notes", "mine").await;
    let agent = id_of(&ann, "/api/v1/agents/bot").await;
    let server = id_of(&ann, "/api/v1/servers/notes?toolbox=mine").await;

    let b = Browser::open(&public).await;
    b.sign_in(&ann).await.goto("/connections").await;
    b.until("#connections-empty").await.checked().await;

    // Connect: to the provider's own page on 127.0.0.1, approve there, and back.
    b.follow("#connect-local-submit").await;
    assert!(
        b.url().await.starts_with(&auth.url),
        "at the provider: {}",
        b.url().await
    );
    b.until("#user").await;
    b.follow("#approve").await;
    assert_eq!(
        b.path().await.split('?').next(),
        Some("/connections"),
        "{}",
        b.page_text().await
    );
    assert!(b.url().await.starts_with(&public), "{}", b.url().await);
    b.until_text("#notice", "Connected to local").await;
    let row = b.attr("#connections tbody tr", "id").await.unwrap();
    let con = row.strip_prefix("connection-").unwrap().to_string();
    b.until_text(&format!("#connection-status-{con}"), "active")
        .await;
    assert_eq!(
        b.text(&format!("#connection-scopes-{con}")).await,
        "read write"
    );
    let left = b.text(&format!("#connection-expires-{con}")).await;
    assert!(left.starts_with("in "), "the expiry countdown: {left}");
    let flows = auth.events("authorize").await;
    assert_eq!(flows.last().unwrap()["user"], "alice", "{flows:?}");

    // The agent acts with it through notes: granted on the page's form.
    b.select("#grant-agent", &agent).await;
    b.select("#grant-connection", &con).await;
    b.select("#grant-server", &server).await;
    b.follow("#grant-create-submit").await;
    b.until("#connection-grants").await.checked().await;
    b.screenshot("connections").await;
    b.goto(&format!("/connections/{con}")).await.checked().await;
    b.until("#connection-grants").await;

    let mut sdk = Sdk::connect(&plane.mcp_url(), &bot.token, "legacy").await;
    eventually("notes__whoami listed", WAIT, async || {
        sdk.tool_names()
            .await
            .contains(&"notes__whoami".to_string())
    })
    .await;
    let r = sdk.call("notes__whoami", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    let who: Value = serde_json::from_str(r["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        who["user"], "alice",
        "the call carried alice's token: {who}"
    );

    // The trust centre: bot × the account (through notes) and × notes, the call among the
    // account's uses; revoke from there.
    b.goto("/trust").await.checked().await;
    b.until_text(&format!("#cell-bot-{con}"), "through notes")
        .await;
    b.until_text(&format!("#cell-bot-{server}"), "every tool")
        .await;
    b.until_text("#trust-uses", "notes__whoami").await;
    b.screenshot("trust").await;
    b.follow(&format!("#trust-revoke-{con}")).await;
    b.until_text("#notice", "revoked").await;
    assert!(!b.has(&format!("#trust-revoke-{con}")).await);
    assert!(
        !auth.events("revocation_requested").await.is_empty(),
        "told the provider"
    );

    let r = sdk.call("notes__whoami", json!({})).await;
    // Without a connection the agent is shown nothing one listed: the tool is gone.
    assert_eq!(r["code"], -32602, "no usable credential now: {r}");
    sdk.quit().await;
    b.goto("/connections").await;
    b.until(&format!("#revoked-{con}")).await;
    b.close().await;
}

/// A connection of `owner`'s to `prov`, written to the store (the flow is the test above's).
async fn stored_connection(plane: &Plane, who: &Caller, n: usize) -> String {
    let owner = who.rest.get("/api/v1/me").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = who
        .rest
        .post(
            "/api/v1/secrets",
            json!({ "name": format!("con-tokens-{n}"), "value": "{}" }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = plane.store.conn().await.unwrap();
    let p = rows::get_provider(&mut c, "prov").await.unwrap();
    let id = ConnectionId::generate();
    rows::insert_connection(
        &mut c,
        NewConnection {
            id: &id,
            owner_id: &UserId::from_db(owner),
            provider_id: &ProviderId::from_db(p.id.to_string()),
            scopes: &["read".to_string()],
            token_secret_id: &secret,
            has_refresh: false,
            expires_at: None,
            next_refresh_at: None,
        },
    )
    .await
    .unwrap();
    id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_member_meets_404_for_anothers_agent_connection_and_server_and_csrf_is_enforced() {
    let plane = Plane::start_with(Duration::from_millis(300), |o| {
        o.gateway.ssrf_allow = AllowList::parse("127.0.0.1/32").unwrap();
    })
    .await;
    let admin = plane.admin().clone();
    admin
        .rest
        .post(
            "/api/v1/providers",
            json!({ "name": "prov", "kind": "custom", "client_id": "cid", "client_secret": "shh",
                "authorization_endpoint": "http://127.0.0.1:9/authorize",
                "token_endpoint": "http://127.0.0.1:9/token" }),
        )
        .await;
    admin
        .catalog(
            json!({ "slug": "far", "source": { "type": "remote", "url": "http://127.0.0.1:9/mcp" },
            "transport": "streamable_http" }),
        )
        .await;
    let ann = admin.member("ann@example.com").await;
    let bob = admin.member("bob@example.com").await;
    let ann_con = stored_connection(&plane, &ann, 1).await;
    let bob_con = stored_connection(&plane, &bob, 2).await;
    bob.agent("spy").await;
    bob.rest
        .post(
            "/api/v1/toolboxes",
            json!({ "name": "bobs", "kind": "remote" }),
        )
        .await;
    bob.rest
        .post(
            "/api/v1/servers",
            json!({ "name": "secret-srv", "catalog": "far", "toolbox": "bobs" }),
        )
        .await;
    let bob_agent = id_of(&bob, "/api/v1/agents/spy").await;
    let bob_srv = id_of(&bob, "/api/v1/servers/secret-srv?toolbox=bobs").await;

    let b = Browser::open(&plane.url).await;
    b.sign_in(&ann).await;
    for path in [
        format!("/agents/{bob_agent}"),
        format!("/agents/{bob_agent}/delete"),
        format!("/connections/{bob_con}"),
        format!("/servers/{bob_srv}"),
    ] {
        b.goto_status(&path, 404).await;
        b.until("#error-title").await;
        let text = b.page_text().await;
        assert!(
            !text.contains("spy") && !text.contains("secret-srv"),
            "{path}: {text}"
        );
    }
    b.goto("/trust").await.checked().await;
    assert!(!b.page_text().await.contains(&bob_con));

    // Ann's own revoke button aimed at Bob's connection: not found, his stays.
    b.goto("/connections").await.checked().await;
    b.js(&format!(
        "document.getElementById('revoke-{ann_con}').form.action = '/connections/{bob_con}/revoke'; return null;"
    ))
    .await;
    b.follow_status(&format!("#revoke-{ann_con}"), 404).await;
    let (s, _) = bob
        .rest
        .send("GET", &format!("/api/v1/connections/{bob_con}"), None)
        .await;
    assert_eq!(s, 200, "bob's connection is untouched");

    // Her own revoke without the form's CSRF token: refused, nothing changes.
    b.goto("/connections").await;
    b.js("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove()); return null;")
        .await;
    b.follow_status(&format!("#revoke-{ann_con}"), 403).await;
    let (s, _) = ann
        .rest
        .send("GET", &format!("/api/v1/connections/{ann_con}"), None)
        .await;
    assert_eq!(s, 200, "a post without its CSRF token changed nothing");
    // With it, from the trust centre: gone.
    b.goto("/trust").await;
    b.follow(&format!("#trust-revoke-{ann_con}")).await;
    b.until_text("#notice", "revoked").await;
    let (s, _) = ann
        .rest
        .send("GET", &format!("/api/v1/connections/{ann_con}"), None)
        .await;
    assert_eq!(s, 404);
    b.close().await;
}
