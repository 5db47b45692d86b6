//! Toolbelt as the MCP gateway's OAuth authorization server, in-process: the metadata
//! documents and the 401 challenge, registration rules, the authorization request's
//! refusals (PKCE plain, a foreign redirect URI), consent with a dashboard session, the
//! token endpoint's errors (wrong verifier, mismatched redirect_uri; a code used twice is
//! `mcp_auth_hardening.rs`),
//! refresh rotation with replay detection, revocation, and audience binding — every case
//! on SQLite and PostgreSQL. The official SDK's whole dance is
//! `tests/e2e/mcp_oauth_sdk_browser.rs`.

use crate::support::{ADMIN, App};
use axum::body::Body;
use base64::Engine;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;
use tower::ServiceExt;

backend_tests!(
    metadata_and_the_401_challenge,
    registration_refuses_bad_redirect_uris,
    the_code_flow_with_its_refusals
);

pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

pub(crate) async fn send(app: &App, req: http::request::Builder, body: Body) -> Reply {
    let res = app
        .router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub(crate) async fn get(app: &App, path: &str, cookie: Option<&str>) -> Reply {
    let mut r = Request::get(path).header(header::HOST, host(app).await);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    send(app, r, Body::empty()).await
}

pub(crate) async fn form(
    app: &App,
    path: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut r = Request::post(path)
        .header(header::HOST, host(app).await)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    send(app, r, Body::from(body)).await
}

pub(crate) async fn metadata(app: &App) -> (Value, Value) {
    let prm = get(app, "/.well-known/oauth-protected-resource/mcp", None).await;
    assert_eq!(prm.status, 200, "{}", prm.text);
    let asm = get(app, "/.well-known/oauth-authorization-server", None).await;
    assert_eq!(asm.status, 200, "{}", asm.text);
    (prm.json(), asm.json())
}

/// The authority of the app's public URL (the gateway admits that Host).
pub(crate) async fn host(app: &App) -> String {
    let url = app.app.options().public_url.clone();
    let url = url.unwrap_or_else(|| format!("http://{}", app.app.options().listen));
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// A bare `initialize` at `/mcp` with `token`.
pub(crate) async fn mcp(app: &App, token: Option<&str>) -> Reply {
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "raw", "version": "1" } } });
    let mut r = Request::post("/mcp")
        .header(header::HOST, host(app).await)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    send(app, r, Body::from(init.to_string())).await
}

async fn metadata_and_the_401_challenge(db: TestDb) {
    let app = App::new(db).await;
    let (prm, asm) = metadata(&app).await;
    let issuer = asm["issuer"].as_str().unwrap();
    assert_eq!(prm["resource"], format!("{issuer}/mcp"));
    assert_eq!(prm["authorization_servers"], json!([issuer]));
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(asm["token_endpoint"], format!("{issuer}/oauth2/token"));
    assert_eq!(
        asm["registration_endpoint"],
        format!("{issuer}/oauth2/register")
    );
    // The root form and a toolset endpoint's form name the same resource.
    for p in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp/toolsets/triage",
    ] {
        assert_eq!(get(&app, p, None).await.json()["resource"], prm["resource"]);
    }
    let want = format!("resource_metadata=\"{issuer}/.well-known/oauth-protected-resource/mcp\"");
    let none = mcp(&app, None).await;
    assert_eq!(none.status, 401);
    let challenge = none.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(&want),
        "{challenge}"
    );
    assert!(!challenge.contains("error="), "{challenge}");
    for bad in ["tba_nonsense", "tbo_nonsense"] {
        let r = mcp(&app, Some(bad)).await;
        assert_eq!(r.status, 401);
        let c = r.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            c.contains(&want) && c.contains("error=\"invalid_token\""),
            "{c}"
        );
    }
}

pub(crate) async fn register(app: &App, body: Value) -> Reply {
    let r = Request::post("/oauth2/register")
        .header(header::HOST, host(app).await)
        .header(header::CONTENT_TYPE, "application/json");
    send(app, r, Body::from(body.to_string())).await
}

async fn clients(app: &App) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    sqlx_count(&mut c).await
}

async fn sqlx_count(c: &mut toolbelt_store::AnyConnection) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM mcp_clients")
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .get::<i64, _>("n")
}

async fn registration_refuses_bad_redirect_uris(db: TestDb) {
    let app = App::new(db).await;
    for (uris, code, says) in [
        (
            json!(["http://app.example/cb"]),
            "invalid_redirect_uri",
            "loopback",
        ),
        (
            json!(["http://10.0.0.7/cb"]),
            "invalid_redirect_uri",
            "loopback",
        ),
        (
            json!(["javascript:alert(1)"]),
            "invalid_redirect_uri",
            "scheme",
        ),
        (
            json!(["https://app.example/cb#x"]),
            "invalid_redirect_uri",
            "fragment",
        ),
        (json!([]), "invalid_redirect_uri", "at least one"),
    ] {
        let r = register(&app, json!({ "client_name": "x", "redirect_uris": uris })).await;
        assert_eq!(r.status, 400, "{uris}: {}", r.text);
        assert_eq!(r.json()["error"], code, "{uris}");
        assert!(
            r.json()["error_description"]
                .as_str()
                .unwrap()
                .contains(says),
            "{uris}: {}",
            r.text
        );
    }
    let r = register(
        &app,
        json!({ "redirect_uris": ["https://app.example/cb"], "grant_types": ["client_credentials"] }),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_client_metadata", "{}", r.text);
    assert_eq!(clients(&app).await, 0, "nothing registered by a refusal");
    let ok = register(
        &app,
        json!({ "client_name": "Claude", "redirect_uris": ["http://127.0.0.1:9/cb", "https://claude.ai/cb"],
                "token_endpoint_auth_method": "client_secret_post" }),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let v = ok.json();
    assert!(v["client_id"].as_str().unwrap().starts_with("mcl_"));
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert!(v.get("client_secret").is_none());
    assert_eq!(clients(&app).await, 1);
}

pub(crate) fn s256(v: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

pub(crate) fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

pub(crate) const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more_0123456789";
pub(crate) const REDIRECT: &str = "http://127.0.0.1:33333/callback";

async fn the_code_flow_with_its_refusals(db: TestDb) {
    let app = App::new(db).await;
    let (_, asm) = metadata(&app).await;
    let issuer = asm["issuer"].as_str().unwrap().to_string();
    let resource = format!("{issuer}/mcp");
    // Ann, with a password (for the dashboard) and an agent.
    let ann = app
        .ok(
            "/api/v1/users",
            ADMIN,
            json!({ "email": "ann@example.com", "role": "member", "password": "correct horse battery" }),
        )
        .await;
    let ann_id = ann["user"]["id"].as_str().unwrap().to_string();
    let ann_api = ann["token"]["token"].as_str().unwrap().to_string();
    let login = send(
        &app,
        Request::post("/api/v1/login")
            .header(header::HOST, host(&app).await)
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
        .ok("/api/v1/agents", ADMIN, json!({ "name": "admins-bot" }))
        .await;
    let admins_agent = agent["agent"]["id"].as_str().unwrap().to_string();
    let reg = register(
        &app,
        json!({ "client_name": "Test Client", "redirect_uris": [REDIRECT] }),
    )
    .await
    .json();
    let client_id = reg["client_id"].as_str().unwrap().to_string();
    let authorize = |method: &str, redirect: &str| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client_id.as_str()),
                ("redirect_uri", redirect),
                ("state", "st-1"),
                ("code_challenge", &s256(VERIFIER)),
                ("code_challenge_method", method),
                ("resource", &resource),
            ])
            .finish();
        format!("/oauth2/authorize?{q}")
    };
    // PKCE plain goes back to the client as invalid_request (with its state).
    let plain = get(&app, &authorize("plain", REDIRECT), None).await;
    assert!(plain.status.is_redirection(), "{}", plain.status);
    let back = query_of(&plain.location());
    assert!(plain.location().starts_with(REDIRECT));
    assert_eq!(back["error"], "invalid_request");
    assert!(back["error_description"].contains("plain"), "{back:?}");
    assert_eq!(back["state"], "st-1");
    // A redirect URI the client never registered is shown, never redirected to.
    let foreign = get(&app, &authorize("S256", "https://evil.example/cb"), None).await;
    assert_eq!(foreign.status, 400);
    assert!(
        foreign.text.contains("invalid_redirect_uri"),
        "{}",
        foreign.text
    );
    // A good request goes on to the consent page; without a session, to sign in first.
    let ok = get(&app, &authorize("S256", REDIRECT), None).await;
    assert!(
        ok.location().starts_with("/oauth2/consent?"),
        "{}",
        ok.location()
    );
    let anon = get(&app, &ok.location(), None).await;
    assert!(
        anon.location()
            .starts_with("/login?next=%2Foauth2%2Fconsent"),
        "{}",
        anon.location()
    );
    // Ann has no agent: the page says so and offers only refusal.
    let page = get(&app, &ok.location(), Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Test Client") && page.text.contains("consent-no-agents"));
    let ann_agent = app
        .ok("/api/v1/agents", &ann_api, json!({ "name": "ann-bot" }))
        .await["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = get(&app, &ok.location(), Some(&cookie)).await;
    assert!(
        page.text.contains(&format!("value=\"{ann_agent}\"")),
        "{}",
        page.text
    );
    let csrf = {
        let at = page.text.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
        page.text[at..at + page.text[at..].find('"').unwrap()].to_string()
    };
    let mut fields: Vec<(String, String)> = query_of(&ok.location()).into_iter().collect();
    fields.push(("csrf".into(), csrf.clone()));
    let with = |extra: &[(&str, &str)]| {
        let mut f: Vec<(String, String)> = fields.clone();
        f.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        f
    };
    let post = |f: Vec<(String, String)>| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            form(app, "/oauth2/consent", &refs, Some(&cookie)).await
        }
    };
    // Another user's agent (the admin's) is refused; nothing issued.
    let other = post(with(&[("agent", &admins_agent), ("decision", "approve")])).await;
    assert_eq!(other.status, 400, "{}", other.text);
    // Refusing sends access_denied back.
    let no = post(with(&[("agent", &ann_agent), ("decision", "deny")])).await;
    assert_eq!(
        query_of(&no.location())["error"],
        "access_denied",
        "{}",
        no.location()
    );
    let yes = post(with(&[("agent", &ann_agent), ("decision", "approve")])).await;
    assert_eq!(yes.status, StatusCode::SEE_OTHER, "{}", yes.text);
    let back = query_of(&yes.location());
    assert!(yes.location().starts_with(REDIRECT));
    assert_eq!(back["state"], "st-1");
    let code = back["code"].clone();
    let exchange = |verifier: &str, redirect: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.clone()),
            ("client_id".into(), client_id.clone()),
            ("code_verifier".into(), verifier.to_string()),
            ("redirect_uri".into(), redirect.to_string()),
            ("resource".into(), resource.clone()),
        ]
    };
    let token = |f: Vec<(String, String)>| {
        let app = &app;
        async move {
            let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            form(app, "/oauth2/token", &refs, None).await
        }
    };
    let wrong = token(exchange(&format!("{VERIFIER}x"), REDIRECT)).await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.json()["error"].clone()),
        (400, json!("invalid_grant"))
    );
    assert!(wrong.text.contains("code_verifier"), "{}", wrong.text);
    let elsewhere = token(exchange(VERIFIER, "http://127.0.0.1:33333/other")).await;
    assert_eq!(elsewhere.json()["error"], "invalid_grant");
    assert!(
        elsewhere.text.contains("redirect_uri"),
        "{}",
        elsewhere.text
    );
    let granted = token(exchange(VERIFIER, REDIRECT)).await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    assert_eq!(granted.headers[header::CACHE_CONTROL], "no-store");
    let t = granted.json();
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh1 = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 600);
    // (A code presented again is refused and revokes these: mcp_auth_hardening.rs.)
    assert_eq!(mcp(&app, Some(&access)).await.status, 200);
    // Stored as digests only.
    {
        use sqlx::Row;
        let mut c = app.store.conn().await.unwrap();
        let rows = sqlx::query("SELECT hash FROM mcp_tokens")
            .fetch_all(&mut *c)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        for r in rows {
            let h: String = r.get("hash");
            assert!(h != access && h != refresh1 && h.len() == 64);
        }
    }
    // Refresh rotates; the old refresh token replayed kills the family.
    let refresh = |rt: &str| {
        vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("refresh_token".into(), rt.to_string()),
            ("client_id".into(), client_id.clone()),
            ("resource".into(), resource.clone()),
        ]
    };
    let r2 = token(refresh(&refresh1)).await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    let access2 = r2.json()["access_token"].as_str().unwrap().to_string();
    let refresh2 = r2.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh1);
    assert_eq!(mcp(&app, Some(&access2)).await.status, 200);
    let replay = token(refresh(&refresh1)).await;
    assert_eq!(replay.json()["error"], "invalid_grant", "{}", replay.text);
    assert!(replay.text.contains("already used"));
    assert_eq!(
        mcp(&app, Some(&access2)).await.status,
        401,
        "family revoked"
    );
    assert_eq!(
        token(refresh(&refresh2)).await.json()["error"],
        "invalid_grant"
    );
    // Unknown grant types and clients.
    let gt = token(vec![("grant_type".into(), "password".into())]).await;
    assert_eq!(gt.json()["error"], "unsupported_grant_type");
    let mut unknown = refresh(&refresh2);
    unknown[2].1 = "mcl_nobody".into();
    let uc = token(unknown).await;
    assert_eq!(
        (uc.status.as_u16(), uc.json()["error"].clone()),
        (401, json!("invalid_client"))
    );
    // A second consent; revoking its access token stops it (RFC 7009 answers 200).
    let second = post(with(&[("agent", &ann_agent), ("decision", "approve")])).await;
    code_exchange_then_revoke(&app, &second.location(), &client_id, &resource, &token).await;
    // A token minted for another resource is refused by the gateway.
    let foreign = minted_for(
        &app,
        &client_id,
        &ann_id,
        &ann_agent,
        "https://elsewhere.example/mcp",
    )
    .await;
    let r = mcp(&app, Some(&foreign)).await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("resource_metadata=")
    );
}

async fn code_exchange_then_revoke<F, Fut>(
    app: &App,
    location: &str,
    client_id: &str,
    resource: &str,
    token: &F,
) where
    F: Fn(Vec<(String, String)>) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let code = query_of(location)["code"].clone();
    let t = token(vec![
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), code),
        ("client_id".into(), client_id.into()),
        ("code_verifier".into(), VERIFIER.into()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("resource".into(), resource.into()),
    ])
    .await
    .json();
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(mcp(app, Some(&access)).await.status, 200);
    let r = form(
        app,
        "/oauth2/revoke",
        &[("token", &access), ("client_id", client_id)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mcp(app, Some(&access)).await.status, 401, "revoked");
    let unknown = form(
        app,
        "/oauth2/revoke",
        &[("token", "tbo_unknown"), ("client_id", client_id)],
        None,
    )
    .await;
    assert_eq!(
        unknown.status, 200,
        "RFC 7009: unknown tokens are a success"
    );
}

/// An access token of a family bound to `resource`, written straight into the store (no
/// endpoint here mints one for another resource: that is the point).
async fn minted_for(app: &App, client: &str, user: &str, agent: &str, resource: &str) -> String {
    use toolbelt_store::mcp_auth::{self, Grant, TokenKind};
    let mut c = app.store.conn().await.unwrap();
    let grant = Grant {
        client_id: client.into(),
        user_id: toolbelt_model::UserId::from_db(user.into()),
        agent_id: toolbelt_model::AgentId::from_db(agent.into()),
        resource: resource.into(),
        scope: None,
    };
    mcp_auth::insert_family(&mut c, "mcf_foreign", &grant)
        .await
        .unwrap();
    let t = toolbelt_model::token::issue_prefixed("tbo_");
    mcp_auth::insert_token(
        &mut c,
        "mct_foreign",
        "mcf_foreign",
        TokenKind::Access,
        &t.digest,
        toolbelt_model::now() + chrono::TimeDelta::minutes(5),
    )
    .await
    .unwrap();
    t.secret.clone()
}
