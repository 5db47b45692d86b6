//! Login throttle counts and named leases, on both backends: concurrent attempts cannot
//! slip past the limit together, quiet rows are swept, one lease holder at a time.

use std::time::Duration;
use toolbelt_model::throttle::Backoff;
use toolbelt_store::leases;
use toolbelt_store::throttle::{self, Key, Verdict};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    concurrent_attempts_get_exactly_the_free_ones,
    a_refusal_on_one_key_counts_on_none,
    quiet_rows_are_swept_and_waiting_ones_kept,
    one_lease_holder_at_a_time,
);

const POLICY: Backoff = Backoff {
    free: 5,
    base: Duration::from_secs(3600),
    max: Duration::from_secs(3600),
    forget: Duration::from_secs(60),
};

async fn concurrent_attempts_get_exactly_the_free_ones(db: TestDb) {
    let store = crate::open(&db).await;
    let now = 1_000_000;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let k = Key {
                key: "addr:198.51.100.7",
                policy: &POLICY,
            };
            throttle::attempt(&store, &[k], now).await.unwrap()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() == Verdict::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
    let mut c = store.conn().await.unwrap();
    let row = throttle::get(&mut c, "addr:198.51.100.7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.failures, row.blocked_until_ms), (5, now + 3_600_000));
}

async fn a_refusal_on_one_key_counts_on_none(db: TestDb) {
    let store = crate::open(&db).await;
    let (addr, acct) = (
        Key {
            key: "addr:1",
            policy: &POLICY,
        },
        Key {
            key: "acct:1",
            policy: &Backoff { free: 1, ..POLICY },
        },
    );
    assert_eq!(
        throttle::attempt(&store, &[addr, acct], 10).await.unwrap(),
        Verdict::Allowed
    );
    assert_eq!(
        throttle::attempt(&store, &[addr, acct], 11).await.unwrap(),
        Verdict::Refused {
            until_ms: 10 + 3_600_000
        }
    );
    let mut c = store.conn().await.unwrap();
    assert_eq!(
        throttle::get(&mut c, "addr:1")
            .await
            .unwrap()
            .unwrap()
            .failures,
        1,
        "the refused attempt did not count against the address"
    );
    drop(c);
    throttle::undo(&store, addr).await.unwrap();
    let mut c = store.conn().await.unwrap();
    throttle::reset(&mut c, "acct:1").await.unwrap();
    assert_eq!(
        throttle::get(&mut c, "addr:1")
            .await
            .unwrap()
            .unwrap()
            .failures,
        0
    );
    assert!(throttle::get(&mut c, "acct:1").await.unwrap().is_none());
}

async fn quiet_rows_are_swept_and_waiting_ones_kept(db: TestDb) {
    let store = crate::open(&db).await;
    let quick = Backoff {
        free: 1,
        base: Duration::from_millis(10),
        max: Duration::from_millis(10),
        ..POLICY
    };
    let long = Backoff { free: 1, ..POLICY };
    for (key, policy) in [("addr:old", &quick), ("addr:waiting", &long)] {
        throttle::attempt(&store, &[Key { key, policy }], 1_000)
            .await
            .unwrap();
    }
    throttle::attempt(
        &store,
        &[Key {
            key: "addr:new",
            policy: &quick,
        }],
        50_000,
    )
    .await
    .unwrap();
    let mut c = store.conn().await.unwrap();
    assert_eq!(throttle::len(&mut c).await.unwrap(), 3);
    // Everything quiet since before 40 s goes, unless its wait runs past that.
    assert_eq!(throttle::sweep(&mut c, 40_000).await.unwrap(), 1);
    assert!(throttle::get(&mut c, "addr:old").await.unwrap().is_none());
    assert!(
        throttle::get(&mut c, "addr:waiting")
            .await
            .unwrap()
            .is_some()
    );
    assert!(throttle::get(&mut c, "addr:new").await.unwrap().is_some());
}

async fn one_lease_holder_at_a_time(db: TestDb) {
    let store = crate::open(&db).await;
    let mut c = store.conn().await.unwrap();
    let name = "audit.checkpoint";
    assert!(
        leases::acquire(&mut c, name, "a", 2_000, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !leases::acquire(&mut c, name, "b", 2_500, 1_500)
            .await
            .unwrap()
    );
    assert!(
        leases::acquire(&mut c, name, "a", 3_000, 1_900)
            .await
            .unwrap(),
        "renewed"
    );
    assert!(
        !leases::acquire(&mut c, name, "b", 3_500, 2_500)
            .await
            .unwrap()
    );
    assert!(
        leases::acquire(&mut c, name, "b", 4_500, 3_001)
            .await
            .unwrap(),
        "taken once it ran out"
    );
    leases::release(&mut c, name, "a").await.unwrap();
    assert!(
        !leases::acquire(&mut c, name, "a", 5_000, 3_100)
            .await
            .unwrap(),
        "not a's to release"
    );
    leases::release(&mut c, name, "b").await.unwrap();
    assert!(
        leases::acquire(&mut c, name, "a", 5_000, 3_100)
            .await
            .unwrap()
    );
}
