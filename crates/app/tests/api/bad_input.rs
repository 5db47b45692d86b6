//! Bad input gets a precise status and problem type, and changes nothing.

use crate::support::{ADMIN, App};
use axum::body::Body;
use http::{Method, Request};
use serde_json::json;
use toolbelt_control::ControlConfig;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    unknown_things_are_404_and_duplicates_409,
    invalid_fields_are_422_and_named,
    config_must_satisfy_the_catalog_schema,
    oversize_wrong_type_and_unknown_routes,
    credentials_problems_are_401_with_reasons,
);

async fn unknown_things_are_404_and_duplicates_409(db: TestDb) {
    let app = App::new(db).await;
    for path in [
        "/api/v1/agents/agt_01aaaaaaaaaaaaaaaaaaaaaaaa",
        "/api/v1/agents/no-such-agent",
        "/api/v1/toolboxes/nowhere",
        "/api/v1/servers/srv_01aaaaaaaaaaaaaaaaaaaaaaaa",
        "/api/v1/catalog/nothing",
        "/api/v1/grants/grt_01aaaaaaaaaaaaaaaaaaaaaaaa",
        "/api/v1/grants/not-an-id",
        "/api/v1/users/nobody@example.com",
    ] {
        let r = app.get(path, ADMIN).await;
        assert_eq!(
            (r.status.as_u16(), r.problem()),
            (404, "not-found"),
            "{path}: {}",
            r.body
        );
    }
    app.ok("/api/v1/agents", ADMIN, json!({ "name": "twin" }))
        .await;
    let r = app
        .post("/api/v1/agents", ADMIN, json!({ "name": "twin" }))
        .await;
    assert_eq!((r.status.as_u16(), r.problem()), (409, "conflict"));
    app.ok("/api/v1/toolboxes", ADMIN, json!({ "name": "twin" }))
        .await;
    assert_eq!(
        app.post("/api/v1/toolboxes", ADMIN, json!({ "name": "twin" }))
            .await
            .status,
        409
    );
    let r = app
        .post(
            "/api/v1/users",
            ADMIN,
            json!({ "email": "admin@toolbelt.local", "role": "member" }),
        )
        .await;
    assert_eq!(r.status, 409);
    app.ok(
        "/api/v1/servers",
        ADMIN,
        json!({ "name": "one", "catalog": "time" }),
    )
    .await;
    let r = app
        .post(
            "/api/v1/servers",
            ADMIN,
            json!({ "name": "one", "catalog": "time" }),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // Deleting a toolbox that still has servers is a conflict, and deletes nothing.
    let r = app.delete("/api/v1/toolboxes/local", ADMIN).await;
    assert_eq!(r.status, 409);
    assert_eq!(app.get("/api/v1/servers/one", ADMIN).await.status, 200);
}

async fn invalid_fields_are_422_and_named(db: TestDb) {
    let app = App::new(db).await;
    let before = app.audit_count().await;
    let cases = [
        ("/api/v1/agents", json!({ "name": "Bad Name" }), "name"),
        ("/api/v1/agents", json!({ "name": "x".repeat(65) }), "name"),
        ("/api/v1/agents", json!({ "name": 42 }), "name"),
        ("/api/v1/agents", json!({ "nme": "typo" }), "nme"),
        ("/api/v1/toolboxes", json!({ "name": "a/b" }), "name"),
        (
            "/api/v1/toolboxes",
            json!({ "name": "ok", "kind": "docker" }),
            "kind",
        ),
        (
            "/api/v1/users",
            json!({ "email": "nope", "role": "member" }),
            "email",
        ),
        (
            "/api/v1/users",
            json!({ "email": "a@b.c", "role": "root" }),
            "role",
        ),
        (
            "/api/v1/users",
            json!({ "email": "a@b.c", "role": "member", "password": "short" }),
            "password",
        ),
        (
            "/api/v1/catalog",
            json!({ "slug": "x", "source": {"type": "image", "image": "x y"}, "transport": "stdio" }),
            "source.image",
        ),
        (
            "/api/v1/catalog",
            json!({ "slug": "x", "source": {"type": "image", "image": "x"}, "transport": "stdio", "config_schema": {"type": 5} }),
            "config_schema",
        ),
        (
            "/api/v1/catalog",
            json!({ "slug": "x", "source": {"type": "image", "image": "x"}, "transport": "stdio", "privileged": true }),
            "privileged",
        ),
        (
            "/api/v1/servers",
            json!({ "name": "s", "catalog": "nothing" }),
            "catalog",
        ),
        (
            "/api/v1/servers",
            json!({ "name": "s", "catalog": "time", "toolbox": "nowhere" }),
            "toolbox",
        ),
        (
            "/api/v1/servers",
            json!({ "name": "s_1", "catalog": "time" }),
            "name",
        ),
        (
            "/api/v1/servers",
            json!({ "name": "gh", "catalog": "github" }),
            "secrets.GITHUB_PERSONAL_ACCESS_TOKEN",
        ),
        (
            "/api/v1/servers",
            json!({ "name": "s", "catalog": "time", "secrets": {"NOPE": "x"} }),
            "secrets.NOPE",
        ),
        (
            "/api/v1/grants",
            json!({ "agent": "ghost", "toolbox": "local" }),
            "agent",
        ),
        (
            "/api/v1/me/tokens",
            json!({ "label": "x", "expires_in_days": 0 }),
            "expires_in_days",
        ),
    ];
    let n_cases = cases.len() as i64;
    for (path, body, field) in cases {
        let r = app.post(path, ADMIN, body.clone()).await;
        assert_eq!(r.status.as_u16(), 422, "{path} {body}: {}", r.body);
        assert_eq!(r.problem(), "validation");
        assert!(
            r.fields().iter().any(|f| f == field),
            "{path} {body}: want field {field}, got {:?}",
            r.fields()
        );
    }
    let r = app
        .raw(
            Request::post("/api/v1/agents")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json")
                .body(Body::from("{\"name\": "))
                .unwrap(),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.problem()), (422, "malformed-json"));
    // Failures were audited (one event each), nothing else was written.
    let agents = app.get("/api/v1/agents", ADMIN).await;
    assert_eq!(agents.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(app.audit_count().await, before + n_cases + 1);
}

async fn config_must_satisfy_the_catalog_schema(db: TestDb) {
    let app = App::new(db).await;
    app.ok("/api/v1/catalog", ADMIN, json!({
        "slug": "cfg", "source": {"type": "image", "image": "cfg"}, "transport": "stdio",
        "config_schema": {"type": "object", "required": ["port"], "additionalProperties": false,
            "properties": {"port": {"type": "integer", "minimum": 1}, "mode": {"enum": ["a", "b"]}}}
    })).await;
    let r = app
        .post(
            "/api/v1/servers",
            ADMIN,
            json!({ "name": "c", "catalog": "cfg", "config": {"port": 0, "mode": "z"} }),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let f = r.fields();
    assert!(
        f.contains(&"config.port".to_string()) && f.contains(&"config.mode".to_string()),
        "{f:?}"
    );
    let r = app
        .post(
            "/api/v1/servers",
            ADMIN,
            json!({ "name": "c", "catalog": "cfg", "config": {} }),
        )
        .await;
    assert_eq!(r.fields(), vec!["config".to_string()], "{}", r.body);
    let r = app
        .post(
            "/api/v1/servers",
            ADMIN,
            json!({ "name": "c", "catalog": "cfg", "config": {"port": 8080} }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "pending_deploy");
    assert_eq!(r.body["desired"], "running");
}

async fn oversize_wrong_type_and_unknown_routes(db: TestDb) {
    let app = App::with_config(
        db,
        ControlConfig {
            body_limit: 4096,
            ..Default::default()
        },
    )
    .await;
    let big = json!({ "name": "big", "description": "x".repeat(10_000) });
    let r = app.post("/api/v1/agents", ADMIN, big).await;
    assert_eq!((r.status.as_u16(), r.problem()), (413, "payload-too-large"));
    let r = app
        .raw(
            Request::post("/api/v1/agents")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "text/plain")
                .body(Body::from("{\"name\":\"t\"}"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.problem()),
        (415, "unsupported-media-type")
    );
    let r = app
        .call(Method::GET, "/api/v1/nothing-here", Some(ADMIN), None)
        .await;
    assert_eq!((r.status.as_u16(), r.problem()), (404, "route-not-found"));
    let r = app
        .call(Method::PUT, "/api/v1/agents", Some(ADMIN), None)
        .await;
    assert_eq!(
        (r.status.as_u16(), r.problem()),
        (405, "method-not-allowed")
    );
    assert_eq!(r.headers["content-type"], "application/problem+json");
}

async fn credentials_problems_are_401_with_reasons(db: TestDb) {
    let app = App::new(db).await;
    let cases = [
        (None, "send 'Authorization"),
        (Some("Basic YWRtaW46YWRtaW4="), "must be 'Bearer"),
        (Some("Bearer tbu_not-a-real-token"), "invalid token"),
        (Some("Bearer "), "invalid token"),
    ];
    for (auth, want) in cases {
        let mut b = Request::get("/api/v1/agents");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let r = app.raw(b.body(Body::empty()).unwrap()).await;
        assert_eq!(
            (r.status.as_u16(), r.problem()),
            (401, "unauthenticated"),
            "{auth:?}"
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains(want),
            "{auth:?}: {}",
            r.body
        );
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    // A revoked token stops working at once.
    let t = app.ok("/api/v1/me/tokens", ADMIN, json!({})).await;
    let tok = t["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", tok).await.status, 200);
    app.delete(
        &format!("/api/v1/me/tokens/{}", t["info"]["id"].as_str().unwrap()),
        ADMIN,
    )
    .await;
    let r = app.get("/api/v1/me", tok).await;
    assert_eq!(
        (r.status.as_u16(), r.body["detail"].as_str().unwrap()),
        (401, "token revoked")
    );
}
