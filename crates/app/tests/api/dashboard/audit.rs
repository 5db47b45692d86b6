//! The audit page: members see their own things' events, filters, keyset pages, the
//! JSON-lines export, verification for admins.

use super::browser::{Browser, PASSWORD, member};
use crate::support::{ADMIN, App};
use http::StatusCode;
use serde_json::json;
use toolbelt_testkit::db::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_filters_pages_exports_and_verifies() {
    let app = App::new(TestDb::sqlite().await).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (_, bob) = member(&app, "bob@example.com").await;
    for i in 0..55 {
        app.ok(
            "/api/v1/agents",
            &ann,
            json!({ "name": format!("ann-{i}") }),
        )
        .await;
    }
    app.ok(
        "/api/v1/agents",
        &bob,
        json!({ "name": "bob-secret-agent" }),
    )
    .await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;

    let first = b.get("/audit?action=agent.create").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.html);
    assert_eq!(
        first.html.matches(r#"<tr id="event-"#).count(),
        50,
        "a page is 50 events"
    );
    assert!(
        !first.has("bob-secret-agent"),
        "not another member's events"
    );
    let older_at = first
        .html
        .find(r#"id="audit-older""#)
        .expect("an older page");
    let href_at = first.html[..older_at].rfind("href=\"").unwrap() + 6;
    let href = first.html[href_at..href_at + first.html[href_at..].find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let older = b.get(&href).await;
    assert_eq!(older.html.matches(r#"<tr id="event-"#).count(), 5, "{href}");

    let export = b.get("/audit/export?action=agent.create").await;
    assert_eq!(export.status, StatusCode::OK);
    let lines: Vec<serde_json::Value> = export
        .html
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 55);
    assert!(lines.iter().all(|e| e["action"] == "agent.create"));

    let bad = b.get("/audit?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.has(r#"id="audit-since-error""#), "{}", bad.html);
    let ranged = b
        .get("/audit?action=agent.create&since=2000-01-01T00:00&until=2000-01-02T00:00")
        .await;
    assert!(ranged.has(r#"id="audit-empty""#));

    assert!(!first.has(r#"id="audit-verify""#), "members cannot verify");
    assert_eq!(b.get("/audit/verify").await.status, StatusCode::FORBIDDEN);

    let mut admin = Browser::new(&app);
    let token = app
        .ok("/api/v1/me/tokens", ADMIN, json!({ "label": "x" }))
        .await;
    drop(token);
    // The bootstrap admin has no password; give it one to sign in through the form.
    let me = app.get("/api/v1/me", ADMIN).await;
    let email = me.body["email"].as_str().unwrap().to_string();
    let r = app
        .call(
            http::Method::PUT,
            "/api/v1/me/password",
            Some(ADMIN),
            Some(json!({ "new_password": PASSWORD })),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    admin.sign_in(&email, PASSWORD).await;
    let v = admin.get("/audit/verify").await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.html);
    assert!(
        v.has(r#"id="audit-verify-result""#) && v.has("The chain verifies"),
        "{}",
        v.html
    );
    assert!(
        admin.get("/audit").await.has("bob-secret-agent"),
        "admins see every event"
    );
}
