//! The MCP authorization server's hardening, in-process on both backends: a reused
//! authorization code revokes the tokens its first exchange issued (RFC 6749 §4.1.2),
//! the authorization response names its issuer (RFC 9207), registration is throttled per
//! client address (429 with `Retry-After`), and browser-based clients get CORS answers on
//! the metadata, registration, token and `/mcp` endpoints (never on the consent page).

use crate::mcp_auth::{
    REDIRECT, Reply, VERIFIER, form, get, host, mcp, metadata, query_of, register, s256, send,
};
use crate::support::{ADMIN, App};
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Method, Request, header};
use serde_json::json;
use std::net::SocketAddr;
use toolbelt_control::ControlConfig;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    a_reused_code_revokes_what_it_issued,
    registration_is_throttled_per_address,
    browser_clients_get_cors_answers
);

/// Ann signed in to the dashboard, with an agent, and a registered client asking for it.
pub(crate) struct Consenting {
    pub cookie: String,
    pub agent: String,
    /// Ann's API token.
    pub ann: String,
    pub client_id: String,
    pub issuer: String,
    /// The consent form's fields (the authorization request and the CSRF token).
    pub fields: Vec<(String, String)>,
}

pub(crate) async fn consenting(app: &App) -> Consenting {
    let (_, asm) = metadata(app).await;
    let issuer = asm["issuer"].as_str().unwrap().to_string();
    let ann = app
        .ok(
            "/api/v1/users",
            ADMIN,
            json!({ "email": "ann@example.com", "role": "member", "password": "correct horse battery" }),
        )
        .await;
    let ann_api = ann["token"]["token"].as_str().unwrap().to_string();
    let login = send(
        app,
        Request::post("/api/v1/login")
            .header(header::HOST, host(app).await)
            .header(header::CONTENT_TYPE, "application/json"),
        Body::from(
            json!({ "email": "ann@example.com", "password": "correct horse battery" }).to_string(),
        ),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let agent = app
        .ok("/api/v1/agents", &ann_api, json!({ "name": "ann-bot" }))
        .await["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reg = register(
        app,
        json!({ "client_name": "Hardening Client", "redirect_uris": [REDIRECT] }),
    )
    .await;
    assert_eq!(reg.status, 201, "{}", reg.text);
    let client_id = reg.json()["client_id"].as_str().unwrap().to_string();
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "st-h"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("resource", &format!("{issuer}/mcp")),
        ])
        .finish();
    let to_consent = get(app, &format!("/oauth2/authorize?{q}"), None).await;
    let page = get(app, &to_consent.location(), Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let csrf = {
        let at = page.text.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
        page.text[at..at + page.text[at..].find('"').unwrap()].to_string()
    };
    let mut fields: Vec<(String, String)> = query_of(&to_consent.location()).into_iter().collect();
    fields.push(("csrf".into(), csrf));
    Consenting {
        cookie,
        agent,
        ann: ann_api,
        client_id,
        issuer,
        fields,
    }
}

impl Consenting {
    /// Approves for Ann's agent: the redirect back to the client.
    async fn approve(&self, app: &App) -> std::collections::HashMap<String, String> {
        let mut f = self.fields.clone();
        f.push(("agent".into(), self.agent.clone()));
        f.push(("decision".into(), "approve".into()));
        let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let yes = form(app, "/oauth2/consent", &refs, Some(&self.cookie)).await;
        assert!(yes.location().starts_with(REDIRECT), "{}", yes.text);
        query_of(&yes.location())
    }

    pub async fn exchange(&self, app: &App, code: &str) -> Reply {
        let resource = format!("{}/mcp", self.issuer);
        form(
            app,
            "/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", &self.client_id),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
                ("resource", &resource),
            ],
            None,
        )
        .await
    }
}

async fn a_reused_code_revokes_what_it_issued(db: TestDb) {
    let app = App::new(db).await;
    let (_, asm) = metadata(&app).await;
    assert_eq!(asm["authorization_response_iss_parameter_supported"], true);
    let c = consenting(&app).await;
    let back = c.approve(&app).await;
    // RFC 9207: the answer names its issuer, exactly as the metadata does.
    assert_eq!(back["iss"], c.issuer, "{back:?}");
    assert_eq!(back["state"], "st-h");
    let first = c.exchange(&app, &back["code"]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let access = first.json()["access_token"].as_str().unwrap().to_string();
    let refresh = first.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(mcp(&app, Some(&access)).await.status, 200);
    // Another consent's tokens are not touched by the reuse.
    let other = c.exchange(&app, &c.approve(&app).await["code"]).await;
    let other_access = other.json()["access_token"].as_str().unwrap().to_string();

    let again = c.exchange(&app, &back["code"]).await;
    assert_eq!(again.status, 400, "{}", again.text);
    assert_eq!(again.json()["error"], "invalid_grant");
    assert!(
        again.text.contains("already used") && again.text.contains("revoked"),
        "{}",
        again.text
    );
    let after = mcp(&app, Some(&access)).await;
    assert_eq!(
        after.status, 401,
        "the first exchange's access token is revoked"
    );
    assert!(
        after.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("resource_metadata=")
    );
    let r = form(
        &app,
        "/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &c.client_id),
        ],
        None,
    )
    .await;
    assert_eq!(
        r.json()["error"],
        "invalid_grant",
        "refresh revoked too: {}",
        r.text
    );
    assert_eq!(mcp(&app, Some(&other_access)).await.status, 200);
    // Audited, as the agent, against the client.
    let audit = app
        .get(
            &format!(
                "/api/v1/audit?action=mcp_client.replay&target={}",
                c.client_id
            ),
            ADMIN,
        )
        .await
        .body;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(detail(&items[0])["revoked_families"], 1, "{audit}");
    assert_eq!(items[0]["outcome"], "denied");
}

/// An audit event's detail (the API gives it as JSON text).
pub(crate) fn detail(e: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(e["detail"].as_str().unwrap_or("null")).unwrap_or_default()
}

/// A registration from `peer`.
async fn register_from(app: &App, peer: &str, n: usize) -> Reply {
    let addr: SocketAddr = peer.parse().unwrap();
    let r = Request::post("/oauth2/register")
        .header(header::HOST, host(app).await)
        .header(header::CONTENT_TYPE, "application/json")
        .extension(ConnectInfo(addr));
    let body = json!({ "client_name": format!("c{n}"), "redirect_uris": [REDIRECT] });
    send(app, r, Body::from(body.to_string())).await
}

async fn registration_is_throttled_per_address(db: TestDb) {
    // A limit other than the default's 20: the configured one is the one in force.
    let mut config = ControlConfig::default();
    config.login.registrations.free = 4;
    let app = App::with_config(db, config).await;
    let free = 4;
    for n in 0..free {
        let r = register_from(&app, "198.51.100.7:40000", n).await;
        assert_eq!(r.status, 201, "registration {n}: {}", r.text);
    }
    let over = register_from(&app, "198.51.100.7:40001", free).await;
    assert_eq!(over.status, 429, "{}", over.text);
    assert_eq!(over.json()["error"], "temporarily_unavailable");
    assert!(
        over.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("too many client registrations from this address"),
        "{}",
        over.text
    );
    let wait: u64 = over.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "Retry-After {wait}");
    assert_eq!(over.headers[header::CACHE_CONTROL], "no-store");
    // Another address is not held up by this one.
    let other = register_from(&app, "203.0.113.9:40000", 0).await;
    assert_eq!(other.status, 201, "{}", other.text);
    let mut c = app.store.conn().await.unwrap();
    use sqlx::Row;
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM mcp_clients")
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .get("n");
    assert_eq!(n as usize, free + 1, "the refused one stored nothing");
}

async fn preflight(app: &App, path: &str, origin: &str, method: &str, headers: &str) -> Reply {
    let r = Request::builder()
        .method(Method::OPTIONS)
        .uri(path)
        .header(header::HOST, host(app).await)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, headers);
    send(app, r, Body::empty()).await
}

fn allowed_origin(r: &Reply) -> Option<String> {
    r.headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().unwrap().to_string())
}

async fn browser_clients_get_cors_answers(db: TestDb) {
    let app = App::new(db).await;
    let web = "https://inspector.example";
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/oauth2/register",
        "/oauth2/token",
        "/oauth2/revoke",
    ] {
        let p = preflight(&app, path, web, "POST", "content-type,mcp-protocol-version").await;
        assert!(p.status.is_success(), "{path}: {}", p.status);
        assert_eq!(allowed_origin(&p).as_deref(), Some("*"), "{path}");
        let methods = p.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .to_ascii_uppercase();
        assert!(methods.contains("POST"), "{path}: {methods}");
    }
    // The real request carries the header too, and the 401's challenge is readable.
    let meta = send(
        &app,
        Request::get("/.well-known/oauth-authorization-server")
            .header(header::HOST, host(&app).await)
            .header(header::ORIGIN, web),
        Body::empty(),
    )
    .await;
    assert_eq!(allowed_origin(&meta).as_deref(), Some("*"));
    // The consent step is a top-level navigation: no CORS there.
    let authz = preflight(&app, "/oauth2/authorize", web, "GET", "content-type").await;
    assert_eq!(allowed_origin(&authz), None, "{:?}", authz.headers);

    // /mcp: the public URL's origin (and allow-listed ones) only.
    // The issuer is the public URL's origin (no path).
    let own = metadata(&app).await.1["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    let p = preflight(
        &app,
        "/mcp",
        &own,
        "POST",
        "authorization,content-type,mcp-session-id,mcp-protocol-version",
    )
    .await;
    assert!(p.status.is_success(), "{}: {}", p.status, p.text);
    assert_eq!(allowed_origin(&p).as_deref(), Some(own.as_str()));
    let allowed = p.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in ["authorization", "mcp-session-id", "mcp-protocol-version"] {
        assert!(allowed.contains(h), "{h}: {allowed}");
    }
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "web", "version": "1" } } });
    let unauth = send(
        &app,
        Request::post("/mcp")
            .header(header::HOST, host(&app).await)
            .header(header::ORIGIN, &own)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream"),
        Body::from(init.to_string()),
    )
    .await;
    assert_eq!(unauth.status, 401);
    assert_eq!(allowed_origin(&unauth).as_deref(), Some(own.as_str()));
    let exposed = unauth.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"),
        "{exposed}"
    );
    // A page of another origin gets no CORS answer, and its request the gateway's 403.
    let foreign = preflight(&app, "/mcp", web, "POST", "authorization,content-type").await;
    assert_eq!(allowed_origin(&foreign), None);
    let refused = send(
        &app,
        Request::post("/mcp")
            .header(header::HOST, host(&app).await)
            .header(header::ORIGIN, web)
            .header(header::CONTENT_TYPE, "application/json"),
        Body::from(init.to_string()),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
}
