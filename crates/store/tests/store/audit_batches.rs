//! The audit writer's connection: on SQLite a batch is one INSERT linked to the head the
//! connection's own last batch left; a head moved by another writer meanwhile is found by
//! the `audit_events_link` trigger (nothing written) and the batch goes under the chain
//! lock instead. On PostgreSQL every batch takes the lock. Either way one chain verifies,
//! and the database refuses a row that does not extend the head, whoever sends it.

use crate::audit_chain::{append, event};
use crate::open;
use sqlx::AssertSqlSafe;
use toolbelt_store::{AuditPath, Store, audit};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    batches_link_to_the_head_their_connection_left,
    a_head_moved_by_another_writer_costs_a_locked_batch_not_a_fork,
    a_row_that_does_not_extend_the_head_is_refused,
);

async fn verify(s: &Store) -> toolbelt_model::audit::VerifyReport {
    let mut c = s.conn().await.unwrap();
    audit::verify(&mut c).await.unwrap()
}

fn batch(from: usize, n: usize) -> Vec<toolbelt_model::audit::NewAuditEvent> {
    (from..from + n).map(event).collect()
}

async fn batches_link_to_the_head_their_connection_left(db: TestDb) {
    let s = open(&db).await;
    let mut w = s.audit_connection().await.unwrap();
    let mut paths = Vec::new();
    let mut seqs = Vec::new();
    for (i, n) in [3, 1, 256, 2].into_iter().enumerate() {
        let (done, path) = w.commit(batch(i * 1000, n)).await.unwrap();
        paths.push(path);
        seqs.extend(done.publish().iter().map(|e| e.seq));
    }
    let linked = if db.is_postgres() {
        AuditPath::Locked
    } else {
        AuditPath::Linked
    };
    // The first batch learns the head; the others link to it.
    assert_eq!(
        paths,
        [AuditPath::Locked, linked, linked, linked],
        "{paths:?}"
    );
    assert_eq!(seqs, (1..=262).collect::<Vec<_>>(), "contiguous, in order");
    let r = verify(&s).await;
    assert!(r.ok, "{r:?}");
    assert_eq!((r.checked, r.head_seq), (262, 262), "{r:?}");
    let (empty, _) = w.commit(vec![]).await.unwrap();
    assert!(empty.publish().is_empty());
}

async fn a_head_moved_by_another_writer_costs_a_locked_batch_not_a_fork(db: TestDb) {
    let s = open(&db).await;
    let mut w = s.audit_connection().await.unwrap();
    w.append(batch(0, 2)).await.unwrap();
    // A control-plane change appends on another connection: the writer's head is stale.
    append(&s, 1).await;
    let (done, path) = w.commit(batch(10, 3)).await.unwrap();
    assert_eq!(path, AuditPath::Locked, "the stale head was found");
    let seqs: Vec<_> = done.publish().iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        [4, 5, 6],
        "after the other writer's event, not over it"
    );
    // The head is known again.
    let (done, path) = w.commit(batch(20, 1)).await.unwrap();
    if !db.is_postgres() {
        assert_eq!(path, AuditPath::Linked);
    }
    assert_eq!(done.publish()[0].seq, 7);
    let r = verify(&s).await;
    assert!(r.ok, "{r:?}");
    assert_eq!((r.checked, r.head_seq), (7, 7), "{r:?}");
}

async fn a_row_that_does_not_extend_the_head_is_refused(db: TestDb) {
    let s = open(&db).await;
    append(&s, 2).await;
    let mut c = s.conn().await.unwrap();
    let (seq, hash): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *c)
            .await
            .unwrap();
    let row = |seq: i64, prev: &str| {
        format!(
            "INSERT INTO audit_events (seq, ts, actor_kind, actor_id, owner_id, action, \
             target_kind, target_id, outcome, detail, prev_hash, hash) VALUES \
             ({seq}, 0, 'user', NULL, NULL, 'agent.create', 'agent', NULL, 'success', '{{}}', \
             '{prev}', 'forged')"
        )
    };
    for (what, sql) in [
        ("a wrong previous hash", row(seq + 1, "0000")),
        ("a gap in the sequence", row(seq + 2, &hash)),
        ("a sequence number taken", row(seq, &hash)),
    ] {
        let e = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *c)
            .await
            .expect_err(what);
        assert!(
            e.to_string().contains("audit chain head moved"),
            "{what}: {e}"
        );
    }
    drop(c);
    let r = verify(&s).await;
    assert!(r.ok, "nothing was written: {r:?}");
    assert_eq!(r.head_seq, seq, "the head did not move");
}
