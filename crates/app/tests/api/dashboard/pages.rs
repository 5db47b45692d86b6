//! Every page renders for its owner; sign-in and sign-out; CSRF and Origin on form posts.

use super::browser::{Browser, PASSWORD, catalog_fx, deployed, member};
use crate::support::{ADMIN, App};
use http::StatusCode;
use toolbelt_testkit::db::TestDb;

async fn app() -> App {
    // SQLite only: the dashboard adds no query of its own (tenancy and rules are the
    // services', whose suites run on both backends).
    App::new(TestDb::sqlite().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_for_its_owner() {
    let app = app().await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (_, srv) = deployed(&app, &ann, "ann").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    for path in [
        "/".to_string(),
        "/servers".into(),
        format!("/servers/{srv}"),
        format!("/servers/{srv}/delete"),
        "/approvals".into(),
    ] {
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "GET {path}: {}", p.html);
        assert!(p.has(r#"id="sign-out""#), "{path} has the layout");
        assert!(
            p.has(r#"name="csrf""#),
            "{path}'s sign-out form carries the token"
        );
    }
    let list = b.get("/servers").await;
    assert!(list.has(r#"id="server-status-ann-srv""#), "{}", list.html);
    let detail = b.get(&format!("/servers/{srv}")).await;
    assert!(detail.has(r#"id="server-stop""#) && detail.has("ann-box"));

    // The empty states say what to do next.
    let mut admin = Browser::new(&app);
    admin.cookie = None;
    let approvals = b.get("/approvals").await;
    assert!(approvals.has(r#"id="approvals-empty""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_embedded_and_cached_and_there_is_a_favicon() {
    let app = app().await;
    let mut b = Browser::new(&app);
    let login = b.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    let css = login
        .html
        .split('"')
        .find(|s| s.starts_with("/assets/app.css?v="))
        .expect("the page links its stylesheet by content hash")
        .to_string();
    for path in [
        css.as_str(),
        "/assets/app.js",
        "/assets/favicon.svg",
        "/favicon.ico",
    ] {
        let res = app
            .raw(
                http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        let cache = res.headers["cache-control"].to_str().unwrap();
        assert!(cache.contains("immutable"), "{path}: {cache}");
    }
    let missing = app
        .raw(
            http::Request::get("/assets/nope.js")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_pages_lead_to_sign_in_and_back() {
    let app = app().await;
    member(&app, "ann@example.com").await;
    let mut b = Browser::new(&app);
    let p = b.get("/servers?toolbox=x").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(
        p.location.as_deref(),
        Some("/login?next=%2Fservers%3Ftoolbox%3Dx")
    );
    let home = b.get("/").await;
    assert_eq!(home.location.as_deref(), Some("/login"));
    // After signing in, `next` takes the user back — and only to this site.
    let back = b
        .post_raw(
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("next", "/servers"),
            ],
        )
        .await;
    assert_eq!(back.location.as_deref(), Some("/servers"));
    let cookie = back.set_cookie.unwrap();
    assert!(
        cookie.contains("SameSite=Lax") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let mut c = Browser::new(&app);
    let away = c
        .post_raw(
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(away.location.as_deref(), Some("/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_an_error_and_sets_no_cookie() {
    let app = app().await;
    member(&app, "ann@example.com").await;
    let mut b = Browser::new(&app);
    let p = b
        .post_raw(
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.has(r#"id="login-error""#), "{}", p.html);
    assert!(p.has("wrong email, password or login token"));
    assert!(p.has(r#"value="ann@example.com""#), "the email is kept");
    assert!(p.set_cookie.is_none() && b.cookie.is_none());
    let bad = b
        .post_raw("/login", &[("email", "not an email"), ("password", "x")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.has(r#"id="login-error""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_time_login_token_signs_in_once() {
    let db = TestDb::sqlite().await;
    let data = tempfile::tempdir().unwrap();
    let app = App::build(db, data, None, Default::default()).await;
    let token = app.app.first_start().login_token.clone().unwrap();
    let mut b = Browser::new(&app);
    let ok = b.post_raw("/login", &[("login_token", &token)]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.has("badge\">admin"), "the first user is the admin");
    let mut again = Browser::new(&app);
    let no = again.post_raw("/login", &[("login_token", &token)]).await;
    assert_eq!(no.status, StatusCode::UNAUTHORIZED);
    assert!(no.has(r#"id="login-error""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = app().await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (_, srv) = deployed(&app, &ann, "ann").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let stop = format!("/servers/{srv}/stop");
    let desired = || async {
        app.get(&format!("/api/v1/servers/{srv}"), &ann).await.body["desired"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = app.audit_count().await;
    let none = b.post_raw(&stop, &[]).await;
    assert_eq!(none.status, StatusCode::FORBIDDEN, "{}", none.html);
    assert!(none.has("CSRF"));
    let wrong = b.post_raw(&stop, &[("csrf", "AAAA")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // Another session's token is not this one's.
    let mut other = Browser::new(&app);
    other.sign_in("ann@example.com", PASSWORD).await;
    let theirs = other.csrf.clone().unwrap();
    assert_ne!(Some(&theirs), b.csrf.as_ref());
    let swapped = b.post_raw(&stop, &[("csrf", &theirs)]).await;
    assert_eq!(swapped.status, StatusCode::FORBIDDEN);
    // A cross-site post with the right token is refused by the Origin check.
    let token = b.csrf.clone().unwrap();
    let req = http::Request::post(&stop)
        .header("host", "toolbelt.test")
        .header("origin", "https://evil.example")
        .header("cookie", b.cookie.clone().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("csrf={token}")))
        .unwrap();
    assert_eq!(app.raw(req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(desired().await, "running", "nothing changed");
    let logins = 1; // `other` signed in
    assert_eq!(
        app.audit_count().await,
        before + logins,
        "no change was audited"
    );

    let ok = b.post(&stop, &[]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    assert_eq!(desired().await, "stopped");
    let after = b.get(ok.location.as_deref().unwrap()).await;
    assert!(after.has(r#"id="notice""#), "{}", after.html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session() {
    let app = app().await;
    member(&app, "ann@example.com").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let old = b.cookie.clone();
    let out = b.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    b.cookie = old;
    let p = b.get("/servers").await;
    assert_eq!(
        p.status,
        StatusCode::SEE_OTHER,
        "the revoked session no longer signs in"
    );
    // An API token is no dashboard session.
    let mut api = Browser::new(&app);
    let req = http::Request::get("/servers")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.raw(req).await.status, StatusCode::SEE_OTHER);
    api.cookie = None;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_is_for_signed_in_users() {
    use tower::ServiceExt;
    let app = app().await;
    member(&app, "ann@example.com").await;
    let mut b = Browser::new(&app);
    let anon = b.get("/events").await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    b.sign_in("ann@example.com", PASSWORD).await;
    let req = http::Request::get("/events")
        .header("cookie", b.cookie.clone().unwrap())
        .body(axum::body::Body::empty())
        .unwrap();
    // Only the head: the body is a stream that does not end.
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
}
