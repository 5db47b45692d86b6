//! Two replicas refreshing the same connections: each refresh token is presented once.

use crate::{connect, replica, setup};
use std::sync::Arc;
use toolbelt_oauth::RefreshResult;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(two_replicas_refresh_each_connection_exactly_once);

const N: usize = 12;

async fn two_replicas_refresh_each_connection_exactly_once(db: TestDb) {
    let (s, vault) = setup(&db, 300).await;
    let (a, b) = (replica(&s.store, &vault), replica(&s.store, &vault));
    let mut ids = Vec::new();
    for _ in 0..N {
        ids.push(connect(&a, &s).await.id);
    }

    // The same connection from both replicas at once: one refreshes, the other stands by.
    let (ra, rb) = tokio::join!(a.refresh_one(&ids[0]), b.refresh_one(&ids[0]));
    let mut results = [ra.unwrap(), rb.unwrap()];
    results.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(results, [RefreshResult::Refreshed, RefreshResult::Skipped]);

    // Every connection due now; both replicas sweep concurrently.
    sqlx::query("UPDATE oauth_connections SET next_refresh_at = 0")
        .execute(s.store.pool())
        .await
        .unwrap();
    let la = Arc::new(tokio::sync::Semaphore::new(4));
    let lb = Arc::new(tokio::sync::Semaphore::new(4));
    let (x, y) = tokio::join!(a.refresh_due(&la), b.refresh_due(&lb));
    let picked = x.unwrap() + y.unwrap();
    assert!(picked >= N, "picked {picked}");

    let used = s.auth.events("refresh_used").await;
    assert_eq!(
        used.len(),
        N + 1,
        "each due connection refreshed exactly once (+1 above)"
    );
    assert!(
        s.auth.events("refresh_reuse_detected").await.is_empty(),
        "no refresh token was presented twice"
    );
    let scope = toolbelt_model::Scope {
        user_id: s.user.clone(),
        role: toolbelt_model::Role::Member,
    };
    let page = a.list_connections(&scope, 100, None).await.unwrap();
    assert_eq!(page.items.len(), N);
    for c in &page.items {
        assert_eq!(
            c.status,
            toolbelt_model::oauth::ConnectionStatus::Active,
            "{c:?}"
        );
        assert!(
            c.last_refresh_at.is_some() && c.next_refresh_at.is_some(),
            "{c:?}"
        );
        assert!(c.last_error.is_none(), "{c:?}");
    }
}
