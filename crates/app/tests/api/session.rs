//! Login (one-time token, password), session cookies, CSRF, logout.

use crate::support::{ADMIN, App};
use axum::body::Body;
use http::Request;
use serde_json::json;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(passwords_and_cookies, one_time_login_works_once);

async fn passwords_and_cookies(db: TestDb) {
    let app = App::new(db).await;
    app.ok("/api/v1/users", ADMIN, json!({ "email": "Pat@Example.com", "role": "member", "password": "correct horse battery" })).await;
    let bad = app
        .call(
            http::Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": "pat@example.com", "password": "wrong password!!" })),
        )
        .await;
    assert_eq!(bad.status, 401);
    let unknown = app
        .call(
            http::Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": "who@example.com", "password": "wrong password!!" })),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["detail"].clone()),
        (bad.status, bad.body["detail"].clone()),
        "no hint which emails exist"
    );

    let ok = app
        .call(
            http::Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": "pat@example.com", "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie = ok.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        // Lax, not Strict: the OAuth provider's redirect back to the callback is a
        // cross-site navigation, and a Strict cookie would not come along.
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && !cookie.contains("Strict"),
        "{cookie}"
    );
    assert!(
        ok.body.get("token").is_none(),
        "a session login returns no bearer token"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let with_cookie = |m: &str, p: &str, origin: Option<&str>| {
        let mut b = Request::builder()
            .method(m)
            .uri(p)
            .header("cookie", &session)
            .header("host", "toolbelt.test");
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        if m == "POST" {
            b.header("content-type", "application/json")
                .body(Body::from(json!({ "name": "from-cookie" }).to_string()))
                .unwrap()
        } else {
            b.body(Body::empty()).unwrap()
        }
    };
    assert_eq!(
        app.raw(with_cookie("GET", "/api/v1/me", None)).await.body["email"],
        "pat@example.com"
    );
    let cross = app
        .raw(with_cookie(
            "POST",
            "/api/v1/agents",
            Some("https://evil.example"),
        ))
        .await;
    assert_eq!((cross.status.as_u16(), cross.problem()), (403, "forbidden"));
    let same = app
        .raw(with_cookie(
            "POST",
            "/api/v1/agents",
            Some("http://toolbelt.test"),
        ))
        .await;
    assert_eq!(same.status, 201, "{}", same.body);
    // A session token is not a bearer token.
    let bearer = session.split_once('=').unwrap().1;
    assert_eq!(app.get("/api/v1/me", bearer).await.status, 401);
    let out = app
        .raw(
            Request::post("/api/v1/logout")
                .header("cookie", &session)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(out.status, 204);
    assert_eq!(
        app.raw(with_cookie("GET", "/api/v1/me", None)).await.status,
        401
    );
}

async fn one_time_login_works_once(db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let mut first = toolbelt_app::Options::new(data.path());
    first.database_url = Some(db.url.clone());
    first.local_toolbox = true;
    let first = toolbelt_app::build(first).await.unwrap();
    let login = first
        .first_start()
        .login_token
        .clone()
        .expect("first start prints a one-time login");
    // A second start creates no second admin and no second login.
    let app = App::build(db, data, None, Default::default()).await;
    let again = app.app.first_start();
    assert!(again.login_token.is_none());
    assert_eq!(again.seeded_entries, 0);
    let body = json!({ "login_token": login, "api_token_label": "cli" });
    let r = app
        .call(
            http::Method::POST,
            "/api/v1/login",
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", token).await.body["role"], "admin");
    let r = app
        .call(http::Method::POST, "/api/v1/login", None, Some(body))
        .await;
    assert_eq!(r.status, 401, "the login token works once");
}
