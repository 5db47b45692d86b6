//! The Deploy form's new secret values and OAuth scope picker, over the in-process app: a
//! value typed in the form is sealed in the vault (through the secrets service, under
//! `<server>-<requirement>`) and bound to the server, and is never in a page, the API's
//! answers or the audit log; a refused form seals nothing and does not show the value
//! again; a taken name, or a secret both picked and typed, is refused at its field. An
//! entry needing OAuth offers its and its provider's scopes as checkboxes.

use super::browser::{Browser, PASSWORD, member};
use crate::support::{ADMIN, App};
use http::StatusCode;
use serde_json::json;
use toolbelt_model::ServerId;
use toolbelt_testkit::db::TestDb;

const VALUE: &str = "typed-in-the-form-7c1f";

async fn weather(app: &App) {
    app.ok(
        "/api/v1/catalog",
        ADMIN,
        json!({
            "slug": "weather", "source": {"type": "image", "image": "weather"}, "transport": "stdio",
            "config_schema": {"type": "object", "required": ["port"],
                "properties": {"port": {"type": "integer", "minimum": 1}}},
            "secrets": [{"name": "API_KEY"}],
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_typed_in_the_deploy_form_is_sealed_bound_and_never_shown() {
    let app = App::new(TestDb::sqlite().await).await;
    weather(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let tb = app
        .ok("/api/v1/toolboxes", &ann, json!({ "name": "ann-box" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let form = b.get("/marketplace/weather").await;
    assert!(
        form.has(r#"type="password" id="secret-value-API_KEY" name="secret-value.API_KEY""#),
        "{}",
        form.html
    );
    assert!(
        form.has("server name&gt;-api-key</code>") || form.has("server name&#62;-api-key</code>"),
        "{}",
        form.html
    );

    // Refused for its config: nothing sealed, nothing audited, the value not shown again.
    let before = app.audit_count().await;
    let bad = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "wx"),
                ("toolbox", &tb),
                ("config.port", "zero"),
                ("secret-value.API_KEY", VALUE),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.has(r#"id="config-port-error""#), "{}", bad.html);
    assert!(!bad.has(VALUE), "the typed value is not rendered again");
    assert!(
        bad.has("not even if the form is refused"),
        "the hint says so"
    );
    assert!(bad.has("<code>wx-api-key</code>"), "{}", bad.html);
    let none = app.get("/api/v1/secrets", &ann).await;
    assert_eq!(
        none.body["items"],
        json!([]),
        "nothing sealed: {}",
        none.body
    );
    assert_eq!(app.audit_count().await, before, "nothing audited");

    // Picked and typed: refused at the requirement.
    app.ok(
        "/api/v1/secrets",
        &ann,
        json!({ "name": "old-key", "value": "old" }),
    )
    .await;
    b.get("/marketplace/weather").await;
    let both = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "wx"),
                ("toolbox", &tb),
                ("config.port", "8080"),
                ("secrets.API_KEY", "old-key"),
                ("secret-value.API_KEY", VALUE),
            ],
        )
        .await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(both.has(r#"id="secret-API_KEY-error""#) && both.has("not both"));
    assert!(!both.has(VALUE));

    // A good form: sealed as wx-api-key in ann's namespace and bound to the server.
    let ok = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "wx"),
                ("toolbox", &tb),
                ("config.port", "8080"),
                ("secret-value.API_KEY", VALUE),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let id = ok.location.unwrap();
    let id = id
        .strip_prefix("/servers/")
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let s = app.get(&format!("/api/v1/servers/{id}"), &ann).await;
    assert_eq!(
        s.body["secrets"],
        json!({"API_KEY": "wx-api-key"}),
        "{}",
        s.body
    );
    let meta = app.get("/api/v1/secrets/wx-api-key", &ann).await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.body);
    assert_eq!(meta.body["kind"], "generic");
    assert_eq!(meta.body["owner_id"], s.body["owner_id"], "{}", meta.body);
    for (path, token) in [
        ("/api/v1/secrets", ann.as_str()),
        ("/api/v1/secrets/wx-api-key", ann.as_str()),
        (&format!("/api/v1/servers/{id}"), ann.as_str()),
        ("/api/v1/audit?limit=200", ADMIN),
    ] {
        let r = app.get(path, token).await;
        assert!(
            !r.body.to_string().contains(VALUE),
            "{path} shows the value: {}",
            r.body
        );
    }
    let page = b.get(&format!("/servers/{id}")).await;
    assert!(!page.has(VALUE));
    // The vault holds it: what the server's deploy would be given.
    let st = app.app.state();
    let server = {
        let mut c = app.store.conn().await.unwrap();
        toolbelt_store::servers::get_internal(&mut c, &ServerId::parse(id).unwrap())
            .await
            .unwrap()
    };
    let values = st.secrets.resolve(&server).await.unwrap();
    assert_eq!(values["API_KEY"], VALUE);

    // The same name again: wx-api-key is taken; refused at the requirement, not replaced.
    b.get("/marketplace/weather").await;
    let taken = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "wx"),
                ("toolbox", &tb),
                ("config.port", "8080"),
                ("secret-value.API_KEY", "another"),
            ],
        )
        .await;
    assert_eq!(
        taken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        taken.html
    );
    assert!(
        taken.has(r#"id="secret-API_KEY-error""#) && taken.has("already exists"),
        "{}",
        taken.html
    );
    let meta = app.get("/api/v1/secrets/wx-api-key", &ann).await;
    assert_eq!(meta.body["version"], 1, "not replaced: {}", meta.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_types_a_new_value_only_for_their_own_or_a_shared_toolbox() {
    let app = App::new(TestDb::sqlite().await).await;
    weather(&app).await;
    let admin_pw = app
        .ok(
            "/api/v1/users",
            ADMIN,
            json!({ "email": "root@example.com", "role": "admin", "password": PASSWORD }),
        )
        .await;
    assert!(admin_pw["user"]["id"].is_string());
    let (_, ann) = member(&app, "ann@example.com").await;
    let anns = app
        .ok("/api/v1/toolboxes", &ann, json!({ "name": "ann-box" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shared = app
        .ok(
            "/api/v1/toolboxes",
            ADMIN,
            json!({ "name": "team", "shared": true }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&app);
    b.sign_in("root@example.com", PASSWORD).await;
    b.get("/marketplace/weather").await;
    let theirs = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "wx"),
                ("toolbox", &anns),
                ("config.port", "8080"),
                ("secret-value.API_KEY", VALUE),
            ],
        )
        .await;
    assert_eq!(theirs.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        theirs.has("this toolbox is another user"),
        "{}",
        theirs.html
    );
    let on_shared = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "wx"),
                ("toolbox", &shared),
                ("config.port", "8080"),
                ("secret-value.API_KEY", VALUE),
            ],
        )
        .await;
    assert_eq!(
        on_shared.status,
        StatusCode::SEE_OTHER,
        "{}",
        on_shared.html
    );
    let meta = app.get("/api/v1/secrets/wx-api-key", ADMIN).await;
    assert_eq!(meta.body["owner_id"], json!(null), "shared: {}", meta.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_entry_offers_its_scopes_as_checkboxes() {
    let app = App::new(TestDb::sqlite().await).await;
    app.ok(
        "/api/v1/catalog",
        ADMIN,
        json!({ "slug": "notes", "source": {"type": "image", "image": "notes"}, "transport": "stdio",
                "oauth": {"provider": "nowhere", "scopes": ["read", "files:write"]} }),
    )
    .await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let tb = app
        .ok("/api/v1/toolboxes", &ann, json!({ "name": "ann-box" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let form = b.get("/marketplace/notes").await;
    assert!(form.has(r#"id="deploy-oauth""#), "{}", form.html);
    // The provider is not configured: said so, nothing to connect to.
    assert!(
        form.has(r#"id="deploy-oauth-unconfigured""#),
        "{}",
        form.html
    );
    let asked = b
        .post(
            "/marketplace/notes/deploy",
            &[
                ("name", "notes"),
                ("toolbox", &tb),
                ("oauth.connect", "on"),
                ("oauth.scope", "read"),
            ],
        )
        .await;
    assert_eq!(
        asked.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        asked.html
    );
    assert!(asked.has(r#"id="deploy-oauth-error""#), "{}", asked.html);
    let servers = app.get("/api/v1/servers", &ann).await;
    assert_eq!(servers.body["items"], json!([]), "nothing deployed");

    // Configured: the entry's scopes checked, the provider's other defaults offered.
    app.ok(
        "/api/v1/providers",
        ADMIN,
        json!({
            "name": "nowhere", "kind": "custom", "client_id": "cid", "client_secret": "shh",
            "authorization_endpoint": "http://127.0.0.1:9/authorize",
            "token_endpoint": "http://127.0.0.1:9/token", "default_scopes": ["read", "admin"],
        }),
    )
    .await;
    let form = b.get("/marketplace/notes").await;
    for (i, scope, checked) in [
        (0, "read", true),
        (1, "files:write", true),
        (2, "admin", false),
    ] {
        let tag = format!(
            r#"<input type="checkbox" id="oauth-scope-{i}" name="oauth.scope" value="{scope}"{}>"#,
            if checked { " checked" } else { "" }
        );
        assert!(form.has(&tag), "{tag}: {}", form.html);
    }
    assert!(
        form.has(r#"id="oauth-connect" name="oauth.connect" checked"#),
        "{}",
        form.html
    );
    let bogus = b
        .post(
            "/marketplace/notes/deploy",
            &[
                ("name", "notes"),
                ("toolbox", &tb),
                ("oauth.connect", "on"),
                ("oauth.scope", "root"),
            ],
        )
        .await;
    assert_eq!(bogus.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bogus.has(r#"id="deploy-oauth-error""#) && bogus.has("root is not a scope"));
    let unpicked = b
        .post(
            "/marketplace/notes/deploy",
            &[("name", "notes"), ("toolbox", &tb), ("oauth.connect", "on")],
        )
        .await;
    assert!(unpicked.has("pick at least one scope"), "{}", unpicked.html);
    // Refused: the picks as posted (none), connecting still on.
    assert!(
        !unpicked.has(r#"value="read" checked"#),
        "{}",
        unpicked.html
    );
    assert_eq!(
        app.get("/api/v1/servers", &ann).await.body["items"],
        json!([])
    );
    // Deployed, then off to the provider with the picked scope only.
    let go = b
        .post(
            "/marketplace/notes/deploy",
            &[
                ("name", "notes"),
                ("toolbox", &tb),
                ("oauth.connect", "on"),
                ("oauth.scope", "files:write"),
            ],
        )
        .await;
    assert_eq!(go.status, StatusCode::SEE_OTHER, "{}", go.html);
    let to = go.location.unwrap();
    assert!(to.starts_with("http://127.0.0.1:9/authorize?"), "{to}");
    let scope: Vec<String> = url_query(&to, "scope");
    assert_eq!(scope, ["files:write"], "{to}");
    let servers = app.get("/api/v1/servers", &ann).await;
    assert_eq!(servers.body["items"][0]["name"], "notes");
}

/// The values of `key` in a URL's query.
fn url_query(url: &str, key: &str) -> Vec<String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}
