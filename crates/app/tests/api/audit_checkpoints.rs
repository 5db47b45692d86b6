//! Signed audit checkpoints through the API, on both backends: admins only, written to the
//! file in the data dir, signed by the audit key, vouching for their own event; a chain
//! whose tail was cut and whose head was moved back passes `GET /audit/verify` but not the
//! comparison with its checkpoints.

use crate::support::{ADMIN, App};
use serde_json::json;
use sqlx::AssertSqlSafe;
use toolbelt_model::audit_checkpoint::{AuditPublicKey, Checkpoint, read_verified};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    checkpoints_are_signed_for_admins_and_catch_a_cut_tail,
    bad_verify_requests_are_refused_by_field
);

async fn checkpoints_are_signed_for_admins_and_catch_a_cut_tail(db: TestDb) {
    let app = App::new(db).await;
    let (_, ann) = app.member("ann@example.com").await;
    for (m, path) in [
        ("GET", "/api/v1/audit/public-key"),
        ("POST", "/api/v1/audit/checkpoints"),
    ] {
        let r = app.call(m.parse().unwrap(), path, Some(&ann), None).await;
        assert_eq!(r.status, 403, "{m} {path}: {}", r.body);
    }
    let r = app
        .post(
            "/api/v1/audit/verify",
            &ann,
            json!({ "checkpoints": [{ "seq": 1, "hash": "0".repeat(64) }] }),
        )
        .await;
    assert_eq!(r.status, 403);

    let info = app.get("/api/v1/audit/public-key", ADMIN).await;
    assert_eq!(info.status, 200, "{}", info.body);
    let file = app.data.path().join("audit-checkpoints.jsonl");
    assert_eq!(info.body["checkpoint_file"], file.display().to_string());
    let key = AuditPublicKey::parse(info.body["public_key"].as_str().unwrap()).unwrap();
    // The key file is the audit key, not the control key, and is never what is served.
    let seed = std::fs::read_to_string(app.data.path().join("audit.key")).unwrap();
    assert_ne!(
        seed.trim(),
        std::fs::read_to_string(app.data.path().join("control.key"))
            .unwrap()
            .trim()
    );
    assert!(!info.body.to_string().contains(seed.trim()));

    let r = app.ok("/api/v1/audit/checkpoints", ADMIN, json!({})).await;
    let first: Checkpoint = serde_json::from_value(r.clone()).unwrap();
    assert!(key.verifies(&first));
    let last = app.get("/api/v1/audit?limit=1", ADMIN).await;
    let ev = &last.body["items"][0];
    assert_eq!(
        ev["action"], "audit.checkpoint",
        "it vouches for its own event"
    );
    assert_eq!(ev["seq"].as_i64(), Some(first.seq));

    for i in 0..4 {
        app.ok("/api/v1/agents", &ann, json!({ "name": format!("bot{i}") }))
            .await;
    }
    let second: Checkpoint =
        serde_json::from_value(app.ok("/api/v1/audit/checkpoints", ADMIN, json!({})).await)
            .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let lines = read_verified(&text, &key).unwrap();
    assert_eq!(
        lines,
        vec![first.clone(), second.clone()],
        "the file holds both"
    );
    let expected = json!({ "checkpoints": [
        { "seq": first.seq, "hash": first.hash },
        { "seq": second.seq, "hash": second.hash },
    ] });
    let v = app
        .ok("/api/v1/audit/verify", ADMIN, expected.clone())
        .await;
    assert_eq!(
        (&v["ok"], &v["signed_through"], &v["checkpoints_checked"]),
        (&json!(true), &json!(second.seq), &json!(2)),
        "{v}"
    );

    // Cut the last three events and move the head back, as a database writer could.
    let cut = second.seq - 2;
    let drop_triggers = if app.db.is_postgres() {
        "DROP TRIGGER IF EXISTS audit_events_no_update ON audit_events"
    } else {
        "DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete"
    };
    let mut c = app.store.conn().await.unwrap();
    let sql = format!(
        "{drop_triggers}; DELETE FROM audit_events WHERE seq >= {cut}; \
         UPDATE audit_head SET seq = {prev}, hash = (SELECT hash FROM audit_events WHERE seq = {prev}) WHERE id = 1",
        prev = cut - 1
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *c)
        .await
        .unwrap();
    drop(c);
    let plain = app.get("/api/v1/audit/verify", ADMIN).await;
    assert_eq!(
        plain.body["ok"], true,
        "the chain alone cannot tell: {}",
        plain.body
    );
    let v = app.ok("/api/v1/audit/verify", ADMIN, expected).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_broken_seq"].as_i64(), Some(cut), "{v}");
    assert_eq!(v["signed_through"].as_i64(), Some(first.seq), "{v}");
}

async fn bad_verify_requests_are_refused_by_field(db: TestDb) {
    let app = App::new(db).await;
    let cases = [
        (json!({ "checkpoints": [] }), "checkpoints"),
        (
            json!({ "checkpoints": [{ "seq": 1, "hash": "0".repeat(64) }, { "seq": 0, "hash": "0".repeat(64) }] }),
            "checkpoints[1]",
        ),
        (
            json!({ "checkpoints": [{ "seq": 3, "hash": "not hex" }] }),
            "checkpoints[0]",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/audit/verify", ADMIN, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.fields(), vec![field.to_string()], "{body}");
    }
    let too_many: Vec<_> = (1..=4097)
        .map(|s| json!({ "seq": s, "hash": "0".repeat(64) }))
        .collect();
    let r = app
        .post(
            "/api/v1/audit/verify",
            ADMIN,
            json!({ "checkpoints": too_many }),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = app
        .post(
            "/api/v1/audit/verify",
            ADMIN,
            json!({ "checkpoints": [], "extra": 1 }),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);
}
