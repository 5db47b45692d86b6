//! The audit chain: appends stay linear under concurrency, and every kind of tampering
//! done directly in the database is found by verify.

use crate::open;
use serde_json::json;
use sqlx::AssertSqlSafe;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::{Role, Scope, UserId};
use toolbelt_store::{Store, audit};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    concurrent_appends_form_one_chain,
    group_commits_chain_like_single_appends,
    the_table_refuses_updates_and_deletes,
    editing_any_column_breaks_the_chain_at_that_row,
    deleting_a_middle_row_is_found,
    deleting_the_newest_rows_is_found,
    members_list_only_their_own_events,
);

pub(crate) fn event(i: usize) -> NewAuditEvent {
    NewAuditEvent {
        actor_kind: ActorKind::User,
        actor_id: Some(format!("usr_{i}")),
        owner_id: Some(UserId::from_db(format!("usr_{}", i % 2))),
        action: AuditAction::AgentCreate,
        target_kind: TargetKind::Agent,
        target_id: Some(format!("t{i}")),
        outcome: Outcome::Success,
        detail: json!({ "i": i, "note": "ünïcode ✓" }),
    }
}

pub(crate) async fn append(s: &Store, n: usize) {
    for i in 0..n {
        s.begin_audited()
            .await
            .unwrap()
            .commit(event(i))
            .await
            .unwrap();
    }
}

async fn verify(s: &Store) -> toolbelt_model::audit::VerifyReport {
    let mut c = s.conn().await.unwrap();
    audit::verify(&mut c).await.unwrap()
}

/// Runs raw SQL as a database administrator would (the append-only triggers dropped first).
pub(crate) async fn tamper(s: &Store, db: &TestDb, sql: &str) {
    let mut c = s.conn().await.unwrap();
    let drop = if db.is_postgres() {
        "DROP TRIGGER IF EXISTS audit_events_no_update ON audit_events"
    } else {
        "DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete"
    };
    sqlx::raw_sql(AssertSqlSafe(drop.to_string()))
        .execute(&mut *c)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *c)
        .await
        .unwrap();
}

async fn concurrent_appends_form_one_chain(db: TestDb) {
    let s = open(&db).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.begin_audited()
                    .await
                    .unwrap()
                    .commit(event(i))
                    .await
                    .unwrap()
                    .seq
            })
        })
        .collect();
    let mut seqs: Vec<i64> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    let r = verify(&s).await;
    assert!(r.ok, "{r:?}");
    assert_eq!((r.checked, r.head_seq), (40, 40));
}

/// The gateway's group commit writes a batch with one multi-row insert: batches of any
/// size, between single audited changes, make one chain that verifies, in order.
async fn group_commits_chain_like_single_appends(db: TestDb) {
    let s = open(&db).await;
    let mut next = 0;
    let mut seqs = Vec::new();
    for size in [1, 5, 256, 2] {
        let batch: Vec<_> = (next..next + size).map(event).collect();
        next += size;
        let written = s.append_audit_batch(batch).await.unwrap();
        assert_eq!(written.len(), size);
        seqs.extend(written.iter().map(|e| e.seq));
        for w in written.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash, "linked inside the batch");
        }
        append(&s, 1).await;
        seqs.push(seqs.last().unwrap() + 1);
    }
    let n = next as i64 + 4;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "contiguous, in order");
    let r = verify(&s).await;
    assert!(r.ok, "{r:?}");
    assert_eq!((r.checked, r.head_seq), (n, n), "{r:?}");
    assert!(s.append_audit_batch(vec![]).await.unwrap().is_empty());
}

async fn the_table_refuses_updates_and_deletes(db: TestDb) {
    let s = open(&db).await;
    append(&s, 2).await;
    let mut c = s.conn().await.unwrap();
    let upd = sqlx::query("UPDATE audit_events SET outcome = 'denied' WHERE seq = 1")
        .execute(&mut *c)
        .await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = sqlx::query("DELETE FROM audit_events WHERE seq = 2")
        .execute(&mut *c)
        .await;
    assert!(del.unwrap_err().to_string().contains("append-only"));
    assert!(verify(&s).await.ok);
}

async fn editing_any_column_breaks_the_chain_at_that_row(db: TestDb) {
    let edits = [
        ("ts", "ts = ts + 1"),
        ("actor_kind", "actor_kind = 'system'"),
        ("actor_id", "actor_id = 'usr_someone_else'"),
        ("owner_id", "owner_id = NULL"),
        ("action", "action = 'test.other'"),
        ("target_kind", "target_kind = 'other'"),
        ("target_id", "target_id = 't999'"),
        ("outcome", "outcome = 'denied'"),
        ("detail", "detail = '{\"i\":99}'"),
        (
            "prev_hash",
            "prev_hash = '1111111111111111111111111111111111111111111111111111111111111111'",
        ),
        (
            "hash",
            "hash = '2222222222222222222222222222222222222222222222222222222222222222'",
        ),
    ];
    for (col, set) in edits {
        let fresh = if db.is_postgres() {
            TestDb::postgres().await
        } else {
            TestDb::sqlite().await
        };
        let s = open(&fresh).await;
        append(&s, 5).await;
        assert!(verify(&s).await.ok);
        tamper(
            &s,
            &fresh,
            &format!("UPDATE audit_events SET {set} WHERE seq = 3"),
        )
        .await;
        let r = verify(&s).await;
        assert!(!r.ok, "editing {col} went unnoticed");
        // A forged hash on row 3 shows as row 3's content not matching (or row 4's link).
        let at = r.first_broken_seq.unwrap();
        assert_eq!(at, 3, "editing {col}: {:?}", r.reason);
        s.close().await;
    }
}

async fn deleting_a_middle_row_is_found(db: TestDb) {
    let s = open(&db).await;
    append(&s, 6).await;
    tamper(&s, &db, "DELETE FROM audit_events WHERE seq = 3").await;
    let r = verify(&s).await;
    assert!(!r.ok);
    assert_eq!(r.first_broken_seq, Some(3));
    assert!(r.reason.unwrap().contains("missing"));
}

async fn deleting_the_newest_rows_is_found(db: TestDb) {
    let s = open(&db).await;
    append(&s, 6).await;
    tamper(&s, &db, "DELETE FROM audit_events WHERE seq >= 5").await;
    let r = verify(&s).await;
    assert!(
        !r.ok,
        "the head outside the table must catch a truncated tail"
    );
    assert_eq!(r.first_broken_seq, Some(5));
    assert_eq!(r.head_seq, 6);
}

async fn members_list_only_their_own_events(db: TestDb) {
    let s = open(&db).await;
    append(&s, 6).await;
    let mut c = s.conn().await.unwrap();
    let member = Scope {
        user_id: UserId::from_db("usr_0".into()),
        role: Role::Member,
    };
    let page = audit::list(&mut c, &member, &audit::Filter::default(), 100, None)
        .await
        .unwrap();
    assert!(
        page.items
            .iter()
            .all(|e| e.owner_id.as_ref().map(|o| o.as_str()) == Some("usr_0")
                || e.actor_id.as_deref() == Some("usr_0"))
    );
    assert_eq!(page.items.len(), 3);
    let admin = Scope {
        user_id: UserId::from_db("usr_admin".into()),
        role: Role::Admin,
    };
    let f = audit::Filter {
        target_id: Some("t4".into()),
        ..Default::default()
    };
    let page = audit::list(&mut c, &admin, &f, 100, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let first = audit::list(&mut c, &admin, &audit::Filter::default(), 4, None)
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![6, 5, 4, 3]
    );
    let cursor = first.next_cursor.unwrap().parse().unwrap();
    let rest = audit::list(&mut c, &admin, &audit::Filter::default(), 4, Some(cursor))
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert!(rest.next_cursor.is_none());
}
