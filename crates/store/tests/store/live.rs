//! Live updates and metrics history: audited changes are published once committed (and
//! reach another process on PostgreSQL), tool calls become per-minute rollups that merge
//! across replicas, members' totals cover only what they can see, old rows are pruned.

use crate::{name, open};
use serde_json::{Map, json};
use std::collections::BTreeMap;
use std::time::Duration;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::server::{Server, ServerStatus};
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_model::{Role, Scope, ServerId, UserId};
use toolbelt_store::events::{Event, Received, Subscription};
use toolbelt_store::metrics::{self, CallMinute, Subject};
use toolbelt_store::{Store, catalog, history, servers, toolboxes, users};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    audited_changes_are_published_once_committed,
    events_reach_the_other_replica_on_postgres_only,
    tool_calls_become_rollups_merged_across_replicas,
    totals_cover_what_the_caller_sees_and_old_rows_are_pruned,
    resources_and_status_history_keep_the_last_word,
);

async fn next(sub: &mut Subscription) -> Option<Event> {
    match tokio::time::timeout(Duration::from_secs(5), sub.recv()).await {
        Ok(Received::Event(e)) => Some((*e).clone()),
        Ok(other) => panic!("{other:?}"),
        Err(_) => None,
    }
}

async fn nothing_within(sub: &mut Subscription, d: Duration) -> bool {
    tokio::time::timeout(d, sub.recv()).await.is_err()
}

fn owned_by(owner: &UserId) -> NewAuditEvent {
    let mut ev = NewAuditEvent::new(
        AuditAction::AgentCreate,
        TargetKind::Agent,
        Some("agt_x".into()),
    );
    ev.owner_id = Some(owner.clone());
    ev
}

async fn audited_changes_are_published_once_committed(db: TestDb) {
    let s = open(&db).await;
    let mut sub = s.events().subscribe();
    let owner = UserId::generate();
    let tx = s.begin_audited().await.unwrap();
    tx.rollback().await.unwrap();
    assert!(
        nothing_within(&mut sub, Duration::from_millis(200)).await,
        "a rolled-back change is not announced"
    );
    let ev = s
        .begin_audited()
        .await
        .unwrap()
        .commit(owned_by(&owner))
        .await
        .unwrap();
    let got = next(&mut sub).await.expect("the commit is announced");
    assert_eq!(
        got,
        Event::Audited {
            seq: ev.seq,
            action: AuditAction::AgentCreate,
            target_kind: TargetKind::Agent,
            target: Some("agt_x".into()),
            owner: Some(owner.clone()),
        }
    );
    assert_eq!(got.owner(), Some(&owner));
    // A batch: tool calls feed the meter, not the bus; other events are announced.
    let mut call = NewAuditEvent::new(AuditAction::ToolCall, TargetKind::Tool, None);
    call.actor_kind = ActorKind::Agent;
    s.append_audit_batch(vec![call, owned_by(&owner)])
        .await
        .unwrap();
    let got = next(&mut sub).await.unwrap();
    assert!(
        matches!(
            got,
            Event::Audited {
                action: AuditAction::AgentCreate,
                ..
            }
        ),
        "{got:?}"
    );
    assert!(nothing_within(&mut sub, Duration::from_millis(200)).await);
}

async fn events_reach_the_other_replica_on_postgres_only(db: TestDb) {
    let a = open(&db).await;
    let b = open(&db).await;
    let relay = tokio::spawn(toolbelt_store::events::relay(b.clone()));
    let mut at_b = b.events().subscribe();
    let mut at_a = a.events().subscribe();
    let ev = Event::Metrics { minute: 42 };
    if db.is_postgres() {
        // The relay LISTENs once connected: keep publishing until it has.
        let mut got = None;
        for _ in 0..50 {
            a.publish(ev.clone()).await;
            if let Ok(Received::Event(e)) =
                tokio::time::timeout(Duration::from_millis(200), at_b.recv()).await
            {
                got = Some((*e).clone());
                break;
            }
        }
        assert_eq!(got, Some(ev.clone()), "B hears what A published");
        // An audited change made through A: announced at B after its commit.
        let owner = UserId::generate();
        a.begin_audited()
            .await
            .unwrap()
            .commit(owned_by(&owner))
            .await
            .unwrap();
        loop {
            let e = next(&mut at_b).await.expect("the audited change reaches B");
            if matches!(e, Event::Audited { .. }) {
                assert_eq!(e.owner(), Some(&owner));
                break;
            }
        }
        // B's own publications are not delivered to it twice through the relay.
        while !nothing_within(&mut at_b, Duration::from_millis(300)).await {}
        b.publish(Event::Metrics { minute: 43 }).await;
        assert_eq!(next(&mut at_b).await, Some(Event::Metrics { minute: 43 }));
        assert!(nothing_within(&mut at_b, Duration::from_millis(500)).await);
    } else {
        a.publish(ev.clone()).await;
        assert_eq!(next(&mut at_a).await, Some(ev), "local subscribers hear it");
        assert!(
            nothing_within(&mut at_b, Duration::from_millis(300)).await,
            "on SQLite each process is its own world"
        );
    }
    relay.abort();
}

/// A member, a shared toolbox with a server, and the member's own toolbox with one.
struct Fixture {
    member: Scope,
    other: Scope,
    shared: Server,
    own: Server,
}

async fn fixture(s: &Store) -> Fixture {
    let mut c = s.conn().await.unwrap();
    let ann = users::create(&mut c, "ann@x.io", Role::Member, None)
        .await
        .unwrap();
    let bob = users::create(&mut c, "bob@x.io", Role::Member, None)
        .await
        .unwrap();
    let shared_tb = toolboxes::create(&mut c, &name("shared"), None, None, ToolboxStatus::Active)
        .await
        .unwrap();
    let own_tb = toolboxes::create(
        &mut c,
        &name("mine"),
        Some(&ann.id),
        None,
        ToolboxStatus::Active,
    )
    .await
    .unwrap();
    let spec = serde_json::from_value(
        json!({"slug": "fx", "source": {"type": "image", "image": "fx"}, "transport": "stdio"}),
    )
    .unwrap();
    let entry = catalog::create(&mut c, &spec).await.unwrap();
    let (cfg, sec) = (Map::new(), BTreeMap::new());
    let mut made = Vec::new();
    for (tb, owner) in [(&shared_tb, None), (&own_tb, Some(&ann.id))] {
        made.push(
            servers::create(
                &mut c,
                servers::NewServer {
                    name: &name("tools"),
                    toolbox_id: &tb.id,
                    catalog_id: &entry.id,
                    owner_id: owner,
                    config: &cfg,
                    secrets: &sec,
                },
            )
            .await
            .unwrap(),
        );
    }
    let own = made.pop().unwrap();
    let scope = |u: &toolbelt_model::user::User| Scope {
        user_id: u.id.clone(),
        role: u.role,
    };
    Fixture {
        member: scope(&ann),
        other: scope(&bob),
        shared: made.pop().unwrap(),
        own,
    }
}

fn call(server: &ServerId, tool: &str, latency_us: u64, ok: bool) -> NewAuditEvent {
    let mut ev = NewAuditEvent::new(AuditAction::ToolCall, TargetKind::Tool, None);
    ev.outcome = if ok {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    ev.detail = json!({ "server": server, "upstream_tool": tool, "latency_us": latency_us });
    ev
}

/// Waits out the last seconds of a minute, so a test's calls all land in one.
async fn away_from_a_minute_edge() {
    while toolbelt_model::now().timestamp() % 60 >= 55 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn tool_calls_become_rollups_merged_across_replicas(db: TestDb) {
    away_from_a_minute_edge().await;
    let s = open(&db).await;
    let f = fixture(&s).await;
    let mut sub = s.events().subscribe();
    let mut batch: Vec<_> = (0..9)
        .map(|_| call(&f.own.id, "echo", 1_000, true))
        .collect();
    batch.push(call(&f.own.id, "echo", 200_000, false));
    s.append_audit_batch(batch).await.unwrap();
    assert_eq!(
        metrics::flush(&s).await.unwrap(),
        1,
        "one row: one minute, one tool"
    );
    assert!(matches!(next(&mut sub).await, Some(Event::Metrics { .. })));
    let now = metrics::this_minute();
    let mut c = s.conn().await.unwrap();
    let pts = metrics::server_calls(&mut c, &f.own.id, now - 5)
        .await
        .unwrap();
    assert_eq!(pts.len(), 1, "{pts:?}");
    assert_eq!((pts[0].calls, pts[0].errors), (10, 1));
    assert!((900..=1_300).contains(&pts[0].p50_us), "{pts:?}");
    assert!(pts[0].p99_us >= 180_000, "{pts:?}");
    // The same minute flushed again rewrites this replica's row, never adds to it.
    s.append_audit_batch(vec![call(&f.own.id, "echo", 1_000, true)])
        .await
        .unwrap();
    metrics::flush(&s).await.unwrap();
    let pts = metrics::server_calls(&mut c, &f.own.id, now - 5)
        .await
        .unwrap();
    assert_eq!(pts[0].calls, 11);
    // Another replica's row for the same minute is added; percentiles combine.
    let other = CallMinute {
        minute: now,
        server_id: f.own.id.clone(),
        tool: "echo".into(),
        calls: 11,
        errors: 0,
        p50_us: 3_000,
        p99_us: 900_000,
    };
    metrics::write_calls(&mut c, "another-replica", &[other])
        .await
        .unwrap();
    let pts = metrics::server_calls(&mut c, &f.own.id, now - 5)
        .await
        .unwrap();
    assert_eq!((pts[0].calls, pts[0].errors), (22, 1));
    assert!((1_900..=2_200).contains(&pts[0].p50_us), "{pts:?}");
    assert_eq!(pts[0].p99_us, 900_000);
    assert!(
        metrics::server_calls(&mut c, &f.shared.id, now - 5)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn totals_cover_what_the_caller_sees_and_old_rows_are_pruned(db: TestDb) {
    away_from_a_minute_edge().await;
    let s = open(&db).await;
    let f = fixture(&s).await;
    let now = metrics::this_minute();
    let row = |server: &Server, minute, calls| CallMinute {
        minute,
        server_id: server.id.clone(),
        tool: "t".into(),
        calls,
        errors: 1,
        p50_us: 10,
        p99_us: 20,
    };
    let mut c = s.conn().await.unwrap();
    metrics::write_calls(
        &mut c,
        "r",
        &[
            row(&f.shared, now, 5),
            row(&f.own, now, 7),
            row(&f.own, now - 120, 100),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        metrics::totals(&mut c, &f.member, now - 60).await.unwrap(),
        (12, 2)
    );
    assert_eq!(
        metrics::totals(&mut c, &f.other, now - 60).await.unwrap(),
        (5, 1),
        "another member sees only the shared server's calls"
    );
    assert_eq!(
        metrics::totals(&mut c, &f.member, now - 600).await.unwrap(),
        (112, 3)
    );
    assert_eq!(metrics::prune(&mut c, now - 60).await.unwrap(), 1);
    assert_eq!(
        metrics::totals(&mut c, &f.member, now - 600).await.unwrap(),
        (12, 2)
    );
}

async fn resources_and_status_history_keep_the_last_word(db: TestDb) {
    let s = open(&db).await;
    let f = fixture(&s).await;
    let now = metrics::this_minute();
    let mut c = s.conn().await.unwrap();
    let subject = Subject::Server(f.own.id.clone());
    metrics::record_resources(&mut c, now, &subject, Some(10.0), Some(1_000))
        .await
        .unwrap();
    metrics::record_resources(&mut c, now, &subject, Some(20.5), Some(2_000))
        .await
        .unwrap();
    metrics::record_resources(&mut c, now - 1, &subject, None, Some(500))
        .await
        .unwrap();
    let pts = metrics::resources(&mut c, &subject, now - 10)
        .await
        .unwrap();
    assert_eq!(pts.len(), 2);
    assert_eq!((pts[0].cpu_percent, pts[0].memory_bytes), (None, Some(500)));
    assert_eq!(
        (pts[1].cpu_percent, pts[1].memory_bytes),
        (Some(20.5), Some(2_000))
    );
    let other = Subject::Toolbox(f.own.toolbox_id.clone());
    assert!(
        metrics::resources(&mut c, &other, now - 10)
            .await
            .unwrap()
            .is_empty()
    );

    history::record(&mut c, &f.own.id, ServerStatus::Running, None, 0)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    history::record(
        &mut c,
        &f.own.id,
        ServerStatus::ErrorRuntime,
        Some("boom"),
        1,
    )
    .await
    .unwrap();
    let h = history::for_server(&mut c, &f.own.id, 10).await.unwrap();
    assert_eq!(
        h.iter().map(|x| x.status).collect::<Vec<_>>(),
        [ServerStatus::ErrorRuntime, ServerStatus::Running],
        "newest first"
    );
    assert_eq!((h[0].error.as_deref(), h[0].restarts), (Some("boom"), 1));
    assert!(
        history::for_server(&mut c, &f.shared.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
