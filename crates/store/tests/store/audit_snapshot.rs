//! Verify reads the chain's head and its rows in one snapshot: an event committed while a
//! verification runs is either wholly in what it checks or wholly out of it, never the
//! row without the head that moved with it ("the chain ends at N+1 but the head says N",
//! seen on a sound chain by the PostgreSQL-restart test while calls were being audited).

use crate::audit_chain::{append, event};
use crate::open;
use std::time::Duration;
use toolbelt_store::{Store, audit};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(verify_reads_the_head_and_the_rows_in_one_snapshot);

async fn verify(s: &Store) -> toolbelt_model::audit::VerifyReport {
    let mut c = s.conn().await.unwrap();
    audit::verify(&mut c).await.unwrap()
}

async fn verify_reads_the_head_and_the_rows_in_one_snapshot(db: TestDb) {
    let s = open(&db).await;
    append(&s, 3).await;
    if db.is_postgres() {
        // Deterministically between verify's two reads: a writer holds a lock on the rows'
        // table (readers of it wait; the head's table is free), verify reads the head and
        // waits for the rows, and the writer appends and commits only then.
        let mut w = s.begin_audited().await.unwrap();
        sqlx::query("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *w)
            .await
            .unwrap();
        let verifying = tokio::spawn({
            let s = s.clone();
            async move { verify(&s).await }
        });
        let mut c = s.conn().await.unwrap();
        for tries in 0.. {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_locks \
                 WHERE NOT granted AND relation = 'audit_events'::regclass",
            )
            .fetch_one(&mut *c)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(tries < 500, "verify never waited for the rows");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(c);
        w.commit(event(3)).await.unwrap();
        let r = verifying.await.unwrap();
        assert!(r.ok, "the chain as it was when verify began: {r:?}");
        assert_eq!((r.checked, r.head_seq), (3, 3), "{r:?}");
    }
    // And under appends without pause (SQLite's readers never wait, so no lock can place
    // the append; this is where the race showed there).
    let appending = tokio::spawn({
        let s = s.clone();
        async move { append(&s, 150).await }
    });
    let mut runs = 0;
    while !appending.is_finished() {
        let r = verify(&s).await;
        assert!(r.ok, "verify {runs} while appending: {r:?}");
        runs += 1;
    }
    appending.await.unwrap();
    let r = verify(&s).await;
    let n = if db.is_postgres() { 154 } else { 153 };
    assert!(r.ok && r.head_seq == n, "{r:?}");
}
