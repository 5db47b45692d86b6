//! The Marketplace's Deploy form in a real browser (headless Chromium): a required secret
//! given as a new value typed in the form — sealed in the vault, bound to the server and
//! delivered to it, never in a page or the API's answers; a refused form showing what was
//! typed (every kind of field) with the error at its field, but never the typed secret;
//! and an entry needing OAuth connecting the account, on another site, with the scopes
//! picked on the form. And the agent builder of an admin who sees two users' toolboxes of
//! one name: every element id unique, each label checking its own toolbox. Element ids are
//! the ones `crates/dashboard/README.md` documents.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::browser::Browser;
use toolbelt_e2e::eventually::{WAIT, eventually};
use toolbelt_e2e::oauth::{self, CLIENT_ID, CLIENT_SECRET};
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::sdk::Sdk;
use toolbelt_net::ssrf::AllowList;
use toolbelt_testkit::fixture::fixture_bin;

const VALUE: &str = "sealed-from-the-browser-93b2";

/// The value of the form control `id` (a checkbox: whether it is checked).
async fn value_of(b: &Browser, id: &str) -> Value {
    b.js(&format!(
        "const e = document.getElementById({id:?}); \
         return e.type === 'checkbox' ? e.checked : e.value;"
    ))
    .await
}

async fn html(b: &Browser) -> String {
    b.js("return document.documentElement.outerHTML;")
        .await
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_deploys_with_a_typed_secret_and_a_refused_form_keeps_what_was_typed() {
    let plane = Plane::up(Duration::from_millis(300)).await;
    let admin = plane.admin().clone();
    let command = [fixture_bin().display().to_string()];
    admin
        .catalog(json!({ "slug": "keyed", "display_name": "Keyed fixture", "transport": "stdio",
            "source": { "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command },
            "secrets": [{ "name": "API_KEY", "description": "The service's key" }],
            "config_schema": { "type": "object", "required": ["greeting"], "properties": {
                "greeting": { "type": "string", "default": "hello" },
                "mode": { "type": "string", "enum": ["fast", "careful"], "default": "fast" },
                "retries": { "type": "integer", "minimum": 0, "maximum": 5 },
                "verbose": { "type": "boolean", "default": true },
                "tags": { "type": "array", "items": { "type": "string" } } } } }))
        .await;
    // An existing secret to pick, so the picker has a choice besides a new value.
    admin
        .rest
        .ok(
            "POST",
            "/api/v1/secrets",
            json!({ "name": "old-key", "value": "old" }),
        )
        .await;
    let local = admin.rest.get("/api/v1/toolboxes/local").await;
    let local = local["id"].as_str().unwrap().to_string();

    let b = Browser::open(&plane.url).await;
    b.sign_in(&admin).await.goto("/marketplace/keyed").await;
    b.checked().await;
    assert_eq!(
        b.attr("#secret-value-API_KEY", "type").await.as_deref(),
        Some("password")
    );

    // Every kind of field changed from its default, one value out of range, a new secret.
    b.fill("#deploy-name", "keyed").await;
    b.select("#deploy-toolbox", &local).await;
    b.fill("#config-greeting", "hi there").await;
    b.select("#config-mode", "careful").await;
    b.fill("#config-retries", "9").await;
    b.click("#config-verbose").await;
    b.fill("#config-tags", r#"["a","b"]"#).await;
    b.fill("#secret-value-API_KEY", VALUE).await;
    b.follow_status("#deploy-submit", 422).await;
    b.until("#config-retries-error").await;
    for (id, want) in [
        ("deploy-name", json!("keyed")),
        ("deploy-toolbox", json!(local)),
        ("config-greeting", json!("hi there")),
        ("config-mode", json!("careful")),
        ("config-retries", json!("9")),
        ("config-verbose", json!(false)),
        ("config-tags", json!(r#"["a","b"]"#)),
        // Never re-rendered, and the hint says so.
        ("secret-value-API_KEY", json!("")),
    ] {
        assert_eq!(value_of(&b, id).await, want, "{id} after the refusal");
    }
    assert!(
        b.text("#secret-value-API_KEY-hint")
            .await
            .contains("not even if the form is refused"),
        "{}",
        b.text("#secret-value-API_KEY-hint").await
    );
    assert!(
        !html(&b).await.contains(VALUE),
        "the typed value is not in the page"
    );
    let secrets = admin.rest.get("/api/v1/secrets").await;
    assert!(
        !secrets.to_string().contains("keyed-api-key"),
        "a refused form seals nothing: {secrets}"
    );
    assert_eq!(admin.rest.get("/api/v1/servers").await["items"], json!([]));

    // Fixed, the value typed again: deployed, sealed as keyed-api-key, delivered.
    b.fill("#config-retries", "2").await;
    b.fill("#secret-value-API_KEY", VALUE).await;
    b.follow("#deploy-submit").await;
    assert!(
        b.path().await.starts_with("/servers/"),
        "{}",
        b.path().await
    );
    b.until_text("#server-status-keyed", "running").await;
    assert!(!html(&b).await.contains(VALUE));
    let srv = admin.server("keyed", "local").get().await;
    assert_eq!(
        srv["secrets"],
        json!({ "API_KEY": "keyed-api-key" }),
        "{srv}"
    );
    assert_eq!(srv["config"]["verbose"], false, "{srv}");
    let meta = admin.rest.get("/api/v1/secrets/keyed-api-key").await;
    assert_eq!(meta["version"], 1, "{meta}");
    for path in [
        "/api/v1/secrets",
        "/api/v1/secrets/keyed-api-key",
        "/api/v1/audit?limit=200",
    ] {
        let body = admin.rest.get(path).await.to_string();
        assert!(!body.contains(VALUE), "{path} shows the value");
    }
    // The server got the vault's value (as a file: the requirement's default delivery).
    let bot = admin.agent("bot").await;
    admin.grant("bot").server("keyed", "local").await;
    let mut sdk = Sdk::connect(&plane.mcp_url(), &bot.token, "legacy").await;
    eventually("keyed__secret listed", WAIT, async || {
        sdk.tool_names()
            .await
            .contains(&"keyed__secret".to_string())
    })
    .await;
    let r = sdk
        .call("keyed__secret", json!({ "name": "API_KEY" }))
        .await;
    assert_eq!(r["structured"]["set"], true, "{r}");
    assert_eq!(r["structured"]["len"], VALUE.len(), "{r}");
    assert_eq!(r["structured"]["prefix"], &VALUE[..3], "{r}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_deploy_form_connects_the_account_with_the_scopes_picked() {
    // Toolbelt at http://localhost:PORT, the provider on 127.0.0.1: another site.
    let port = toolbelt_testkit::proc::free_port();
    let public = format!("http://localhost:{port}");
    let p = public.clone();
    let plane = Plane::start_with(Duration::from_millis(300), move |o| {
        o.listen = format!("127.0.0.1:{port}").parse().unwrap();
        o.public_url = Some(p);
        o.gateway.ssrf_allow = AllowList::parse("127.0.0.1/32").unwrap();
    })
    .await;
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

    let b = Browser::open(&public).await;
    b.sign_in(&ann).await.goto("/marketplace/notes").await;
    b.checked().await;
    // The entry's scope checked, the provider's other default offered; connect is on
    // (ann has no connection yet).
    assert_eq!(
        b.attr("#oauth-scope-0", "value").await.as_deref(),
        Some("read")
    );
    assert_eq!(
        b.attr("#oauth-scope-1", "value").await.as_deref(),
        Some("write")
    );
    assert_eq!(value_of(&b, "oauth-scope-0").await, true);
    assert_eq!(value_of(&b, "oauth-scope-1").await, false);
    assert_eq!(value_of(&b, "oauth-connect").await, true);
    // Nothing picked: refused at the picker, nothing deployed.
    b.fill("#deploy-name", "notes").await;
    b.click("#oauth-scope-0").await;
    b.follow_status("#deploy-submit", 422).await;
    b.until_text("#deploy-oauth-error", "pick at least one scope")
        .await;
    assert_eq!(
        value_of(&b, "oauth-scope-0").await,
        false,
        "the picks as posted"
    );
    assert_eq!(ann.rest.get("/api/v1/servers").await["items"], json!([]));

    // Only `write`: deployed, then at the provider, and back connected with `write`.
    b.click("#oauth-scope-1").await;
    b.follow("#deploy-submit").await;
    assert!(
        b.url().await.starts_with(&auth.url),
        "at the provider: {}",
        b.url().await
    );
    b.until("#user").await;
    b.follow("#approve").await;
    b.until_text("#notice", "Connected to local").await;
    let conns = ann.rest.get("/api/v1/connections").await;
    assert_eq!(conns["items"][0]["scopes"], json!(["write"]), "{conns}");
    let srv = ann.server("notes", "mine").get().await;
    assert_eq!(srv["name"], "notes", "{srv}");

    // Connected now: the form says so and leaves connecting off.
    b.goto("/marketplace/notes").await;
    assert_eq!(value_of(&b, "oauth-connect").await, false);
    assert!(
        b.text("#deploy-oauth-status")
            .await
            .contains("connected to local already")
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_agent_builder_tells_two_users_toolboxes_of_one_name_apart() {
    let plane = Plane::up(Duration::from_millis(300)).await;
    let admin = plane.admin().clone();
    let ann = admin.member("ann@example.com").await;
    let bob = admin.member("bob@example.com").await;
    let mut ids = Vec::new();
    for who in [&ann, &bob] {
        let t = who
            .rest
            .post("/api/v1/toolboxes", json!({ "name": "box" }))
            .await;
        ids.push(t["id"].as_str().unwrap().to_string());
    }
    admin.agent("ops").await;
    let agent = admin.rest.get("/api/v1/agents/ops").await;
    let agent = agent["id"].as_str().unwrap().to_string();

    let b = Browser::open(&plane.url).await;
    b.sign_in(&admin)
        .await
        .goto(&format!("/agents/{agent}"))
        .await;
    b.checked().await;
    let dupes = b
        .js("const seen = {}, dup = []; \
             for (const e of document.querySelectorAll('[id]')) { \
               if (seen[e.id]) dup.push(e.id); seen[e.id] = 1; } return dup;")
        .await;
    assert_eq!(dupes, json!([]), "duplicate element ids");
    // Each label names its own toolbox's checkbox: clicking bob's checks bob's only.
    let bobs = &ids[1];
    b.click(&format!("label[for='grant-toolbox-{bobs}']")).await;
    for (id, want) in [(&ids[0], false), (&ids[1], true)] {
        let on = b
            .js(&format!(
                "return document.querySelector('input[type=checkbox][name=\"toolbox:{id}\"]').checked;"
            ))
            .await;
        assert_eq!(on, want, "toolbox {id}");
    }
    b.follow("#save-toolbelt").await;
    let grants = admin
        .rest
        .get(&format!("/api/v1/grants?agent={agent}"))
        .await;
    let toolboxes: Vec<&str> = grants["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["toolbox_id"].as_str())
        .collect();
    assert_eq!(toolboxes, [bobs.as_str()], "{grants}");
    b.close().await;
}
