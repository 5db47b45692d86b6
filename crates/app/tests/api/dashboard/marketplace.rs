//! The Marketplace and its generated Deploy form: field errors at their inputs, nothing
//! created on a bad form, a good one deploys.

use super::browser::{Browser, PASSWORD, member};
use crate::support::{ADMIN, App};
use http::StatusCode;
use serde_json::json;
use toolbelt_testkit::db::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_form_with_bad_values_shows_field_errors_and_creates_nothing() {
    let app = App::new(TestDb::sqlite().await).await;
    app.ok(
        "/api/v1/catalog",
        ADMIN,
        json!({
            "slug": "weather", "display_name": "Weather", "description": "forecasts",
            "source": {"type": "image", "image": "weather"}, "transport": "stdio",
            "config_schema": {"type": "object", "required": ["port"], "properties": {
                "port": {"type": "integer", "minimum": 1, "description": "where it listens"},
                "units": {"enum": ["metric", "imperial"], "default": "metric"},
                "verbose": {"type": "boolean"}}},
            "secrets": [{"name": "API_KEY", "description": "the weather service's key"}],
        }),
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

    let list = b.get("/marketplace").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.has(r#"id="entry-weather""#), "{}", list.html);
    let found = b.get("/marketplace?q=forecast&transport=stdio").await;
    assert!(found.has(r#"id="entry-weather""#));
    let none = b.get("/marketplace?q=nothing-like-it").await;
    assert!(none.has(r#"id="catalog-empty""#) && !none.has(r#"id="entry-weather""#));

    let form = b.get("/marketplace/weather").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    for id in [
        "deploy-name",
        "deploy-toolbox",
        "config-port",
        "config-units",
        "config-verbose",
        "secret-API_KEY",
    ] {
        assert!(
            form.has(&format!(r#"id="{id}""#)),
            "{id} in the generated form"
        );
    }
    assert!(
        form.has(r#"<option value="metric" selected>"#),
        "the default is chosen"
    );
    assert!(form.has(r#"for="config-port""#) && form.has("where it listens"));

    let before = app.audit_count().await;
    let bad_name = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "no good!"),
                ("toolbox", &tb),
                ("config.port", "8080"),
            ],
        )
        .await;
    assert_eq!(
        bad_name.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_name.html
    );
    assert!(
        bad_name.has(r#"id="deploy-name-error""#),
        "{}",
        bad_name.html
    );
    assert!(bad_name.has(r#"value="8080""#), "what was typed is kept");
    let bad = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "wx"),
                ("toolbox", &tb),
                ("config.port", "zero"),
                ("config.units", "kelvin"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    for id in [
        "config-port-error",
        "config-units-error",
        "secret-API_KEY-error",
    ] {
        assert!(bad.has(&format!(r#"id="{id}""#)), "{id}: {}", bad.html);
    }
    let missing = b
        .post(
            "/marketplace/weather/deploy",
            &[("name", "wx"), ("toolbox", &tb)],
        )
        .await;
    assert!(
        missing.has(r#"id="config-port-error""#),
        "a missing required value is shown at its input: {}",
        missing.html
    );
    let servers = app.get("/api/v1/servers", &ann).await;
    assert!(
        servers.body["items"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
    assert_eq!(app.audit_count().await, before, "nothing was audited");

    // With a secret to pick, the same form deploys.
    app.ok(
        "/api/v1/secrets",
        &ann,
        json!({ "name": "wx-key", "value": "s3cret" }),
    )
    .await;
    b.get("/marketplace/weather").await;
    let ok = b
        .post(
            "/marketplace/weather/deploy",
            &[
                ("name", "wx"),
                ("toolbox", &tb),
                ("config.port", "8080"),
                ("config.units", "imperial"),
                ("config.verbose", "on"),
                ("secrets.API_KEY", "wx-key"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    assert!(ok.location.as_deref().unwrap().starts_with("/servers/srv_"));
    let s = &app.get("/api/v1/servers", &ann).await.body["items"][0];
    assert_eq!(
        s["config"],
        json!({"port": 8080, "units": "imperial", "verbose": true})
    );
    assert_eq!(s["secrets"], json!({"API_KEY": "wx-key"}));
}
