//! `PATCH /api/v1/users/{user}`: an admin changes another user's role (audited); members
//! may not, a role that does not exist is the `role` field's error, and no admin changes
//! their own role — so the last admin stays one.

use crate::support::{ADMIN, App};
use http::Method;
use serde_json::json;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(admins_change_roles_members_cannot_and_nobody_changes_their_own);

async fn patch(app: &App, user: &str, token: &str, body: serde_json::Value) -> crate::support::Res {
    app.call(
        Method::PATCH,
        &format!("/api/v1/users/{user}"),
        Some(token),
        Some(body),
    )
    .await
}

/// The newest audit event's action and outcome.
async fn last_event(app: &App) -> (String, String, serde_json::Value) {
    let r = app.get("/api/v1/audit?limit=1", ADMIN).await;
    let e = &r.body["items"][0];
    (
        e["action"].as_str().unwrap_or("").into(),
        e["outcome"].as_str().unwrap_or("").into(),
        serde_json::from_str(e["detail"].as_str().unwrap_or("null")).unwrap(),
    )
}

async fn admins_change_roles_members_cannot_and_nobody_changes_their_own(db: TestDb) {
    let app = App::new(db).await;
    let (ann_id, ann) = app.member("ann@example.com").await;
    let (_, bob) = app.member("bob@example.com").await;

    // An admin makes Ann an admin (by id), then a member again (by email); both audited.
    let r = patch(&app, &ann_id, ADMIN, json!({ "role": "admin" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["role"], "admin");
    assert_eq!(r.body["id"], ann_id.as_str());
    let (action, outcome, detail) = last_event(&app).await;
    assert_eq!(
        (action.as_str(), outcome.as_str()),
        ("user.role", "success")
    );
    assert_eq!(
        (detail["from"].as_str(), detail["role"].as_str()),
        (Some("member"), Some("admin"))
    );
    // Now an admin, Ann may change Bob's role.
    let r = patch(&app, "bob@example.com", &ann, json!({ "role": "admin" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = patch(&app, "ann@example.com", ADMIN, json!({ "role": "member" })).await;
    assert_eq!(
        (r.status.as_u16(), r.body["role"].as_str()),
        (200, Some("member"))
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{ann_id}"), ADMIN)
            .await
            .body["role"],
        "member"
    );

    // A member may not — on anyone, themselves included — and the refusal is audited.
    let before = app.audit_count().await;
    for who in [ann_id.as_str(), "bob@example.com", "admin@toolbelt.local"] {
        let r = patch(&app, who, &ann, json!({ "role": "admin" })).await;
        assert_eq!(
            (r.status.as_u16(), r.problem()),
            (403, "forbidden"),
            "{who}: {}",
            r.body
        );
    }
    assert_eq!(app.audit_count().await, before + 3);
    let (action, outcome, _) = last_event(&app).await;
    assert_eq!((action.as_str(), outcome.as_str()), ("user.role", "denied"));
    assert_eq!(
        app.get(&format!("/api/v1/users/{ann_id}"), ADMIN)
            .await
            .body["role"],
        "member"
    );

    // Bad input: a role that does not exist, a missing role, an unknown field — 422 naming
    // the field; nothing changes.
    for (body, field) in [
        (json!({ "role": "root" }), "role"),
        (json!({}), "body"),
        (json!({ "role": "admin", "email": "x@y.z" }), "email"),
    ] {
        let r = patch(&app, &ann_id, ADMIN, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.fields(), vec![field.to_string()], "{body}: {}", r.body);
    }
    assert_eq!(
        app.get(&format!("/api/v1/users/{ann_id}"), ADMIN)
            .await
            .body["role"],
        "member"
    );
    // An unknown user is 404.
    let r = patch(
        &app,
        "nobody@example.com",
        ADMIN,
        json!({ "role": "admin" }),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.problem()), (404, "not-found"));

    // Nobody changes their own role: the bootstrap admin, once the only other admin (Bob)
    // is demoted, stays the last admin.
    let r = patch(&app, "bob@example.com", ADMIN, json!({ "role": "member" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = patch(
        &app,
        "admin@toolbelt.local",
        ADMIN,
        json!({ "role": "member" }),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.problem()),
        (409, "conflict"),
        "{}",
        r.body
    );
    let admins: Vec<_> = app.get("/api/v1/users", ADMIN).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "admin")
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(admins, vec!["admin@toolbelt.local".to_string()]);
    // Bob, a member again, is refused like any member.
    let r = patch(&app, &ann_id, &bob, json!({ "role": "admin" })).await;
    assert_eq!(r.status, 403, "{}", r.body);
}
