//! Every mutating call leaves exactly one audit event; the chain verifies through the API.

use crate::support::{ADMIN, App};
use serde_json::json;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    each_mutation_appends_one_event_and_failures_are_recorded,
    an_action_prefix_lists_every_action_under_it_newest_first_across_pages
);

async fn each_mutation_appends_one_event_and_failures_are_recorded(db: TestDb) {
    let app = App::new(db).await;
    let (_, ann) = app.member("ann@example.com").await;
    let steps: Vec<(&str, &str, serde_json::Value, &str)> = vec![
        (
            "POST",
            "/api/v1/agents",
            json!({ "name": "bot" }),
            "agent.create",
        ),
        (
            "POST",
            "/api/v1/toolboxes",
            json!({ "name": "mine" }),
            "toolbox.create",
        ),
        (
            "POST",
            "/api/v1/toolboxes/mine/join-token",
            json!({}),
            "toolbox.join_token",
        ),
        (
            "POST",
            "/api/v1/servers",
            json!({ "name": "t", "catalog": "time", "toolbox": "mine" }),
            "server.create",
        ),
        ("POST", "/api/v1/servers/t/stop", json!({}), "server.stop"),
        (
            "POST",
            "/api/v1/grants",
            json!({ "agent": "bot", "toolbox": "mine" }),
            "grant.create",
        ),
        (
            "POST",
            "/api/v1/agents/bot/tokens",
            json!({ "label": "two" }),
            "agent.token.issue",
        ),
        (
            "DELETE",
            "/api/v1/agents/bot/tokens",
            json!(null),
            "agent.token.revoke",
        ),
        ("DELETE", "/api/v1/servers/t", json!(null), "server.delete"),
        ("DELETE", "/api/v1/agents/bot", json!(null), "agent.delete"),
    ];
    for (m, path, body, action) in steps {
        let before = app.audit_count().await;
        let body = (!body.is_null()).then_some(body);
        let r = app.call(m.parse().unwrap(), path, Some(&ann), body).await;
        assert!(r.status.is_success(), "{m} {path}: {}", r.body);
        assert_eq!(app.audit_count().await, before + 1, "{m} {path}");
        let last = app
            .get(&format!("/api/v1/audit?limit=1&action={action}"), &ann)
            .await;
        let ev = &last.body["items"][0];
        assert_eq!(
            (ev["action"].as_str(), ev["outcome"].as_str()),
            (Some(action), Some("success")),
            "{path}"
        );
    }
    // Denied: a member writing the catalog. Failure: a duplicate.
    assert_eq!(
        app.post(
            "/api/v1/catalog",
            &ann,
            json!({ "slug": "x", "source": {"type": "image", "image": "x"}, "transport": "stdio" })
        )
        .await
        .status,
        403
    );
    app.ok("/api/v1/agents", &ann, json!({ "name": "dup" }))
        .await;
    assert_eq!(
        app.post("/api/v1/agents", &ann, json!({ "name": "dup" }))
            .await
            .status,
        409
    );
    let denied = app.get("/api/v1/audit?outcome=denied", &ann).await;
    assert_eq!(denied.body["items"][0]["action"], "catalog.create");
    let failed = app
        .get("/api/v1/audit?outcome=failure&action=agent.create", &ann)
        .await;
    assert_eq!(
        failed.body["items"][0]["detail"],
        r#"{"method":"POST","path":"/api/v1/agents","problem":"conflict","status":409}"#
    );
    // Reads leave no events.
    let before = app.audit_count().await;
    app.get("/api/v1/agents", &ann).await;
    app.get("/api/v1/audit", ADMIN).await;
    assert_eq!(app.audit_count().await, before);
    let v = app.get("/api/v1/audit/verify", ADMIN).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
    assert_eq!(v.body["checked"], v.body["head_seq"]);
}

/// `action=agent` is `agent` and everything under it (`agent.create`, `agent.token.*`,
/// …) — one indexed branch per action, merged — newest first, and its pages follow on.
async fn an_action_prefix_lists_every_action_under_it_newest_first_across_pages(db: TestDb) {
    let app = App::new(db).await;
    for name in ["p1", "p2"] {
        app.ok("/api/v1/agents", ADMIN, json!({ "name": name }))
            .await;
        app.ok(
            "/api/v1/toolboxes",
            ADMIN,
            json!({ "name": format!("{name}-box") }),
        )
        .await;
        app.ok(&format!("/api/v1/agents/{name}/tokens"), ADMIN, json!({}))
            .await;
    }
    let all = app.get("/api/v1/audit?action=agent&limit=100", ADMIN).await;
    let items = all.body["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.iter().all(|a| a.starts_with("agent.")),
        "only agent actions: {actions:?}"
    );
    assert_eq!(actions.iter().filter(|a| **a == "agent.create").count(), 2);
    assert!(actions.iter().any(|a| *a != "agent.create"), "{actions:?}");
    let seqs: Vec<i64> = items.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    // A prefix that is not a whole segment matches nothing (`agen` is not `agent`).
    let none = app.get("/api/v1/audit?action=agen", ADMIN).await;
    assert_eq!(none.body["items"].as_array().unwrap().len(), 0);

    // One at a time, the cursor walks the same events in the same order.
    let (mut walked, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?action=agent&limit=1&cursor={c}"),
            None => "/api/v1/audit?action=agent&limit=1".to_string(),
        };
        let page = app.get(&path, ADMIN).await;
        walked.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(walked.len() <= seqs.len(), "the walk ends");
    }
    assert_eq!(walked, seqs);
}
