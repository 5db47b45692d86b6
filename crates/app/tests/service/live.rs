//! What live pages rely on: a heartbeat that moves a server publishes the move, records
//! it in the server's history and keeps the minute's CPU and memory; a decided approval
//! is published to its owner.

use crate::support::{World, input};
use serde_json::json;
use std::time::Duration;
use toolbelt_control::service::{approvals, dtma, servers, toolboxes};
use toolbelt_model::dtma::{
    Health, HeartbeatReport, JoinRequest, ObservedServer, RuntimeState, ServerStats, SystemMetrics,
};
use toolbelt_model::gateway::ApprovalStatus;
use toolbelt_model::server::{Server, ServerStatus};
use toolbelt_model::toolbox::{ToolboxKind, ToolboxStatus};
use toolbelt_store::events::{Event, Received, Subscription};
use toolbelt_store::metrics::{self, Subject};
use toolbelt_store::{agents, history};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    heartbeats_publish_moves_and_keep_history_and_resources,
    a_decided_approval_is_published_to_its_owner,
);

/// Events until `pick` finds one (at most 5 s).
async fn wait_for<T>(sub: &mut Subscription, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Received::Event(e)) => {
                if let Some(t) = pick(&e) {
                    return t;
                }
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => panic!("no such event within 5 s"),
        }
    }
}

fn report(s: &Server, status: ServerStatus, stats: Option<ServerStats>) -> HeartbeatReport {
    HeartbeatReport {
        version: "test".into(),
        advertise_url: "http://127.0.0.1:9".into(),
        runtime: RuntimeState {
            kind: ToolboxKind::Process,
            available: true,
            detail: None,
            isolation: None,
            unsandboxed_allowed: false,
        },
        system: SystemMetrics {
            cpu_percent: 12.5,
            mem_used_bytes: 4096,
            ..SystemMetrics::default()
        },
        servers: vec![ObservedServer {
            id: s.id.clone(),
            name: s.name.to_string(),
            generation: s.generation,
            status,
            health: Health::Ok,
            restarts: 0,
            last_error: None,
            container_id: None,
            started_at: None,
            image_digest: None,
            tool_count: None,
            stats,
        }],
        tls_pin: None,
    }
}

async fn heartbeats_publish_moves_and_keep_history_and_resources(db: TestDb) {
    let w = World::new(db).await;
    let tb = toolboxes::create(&w.st, &w.ann, input(json!({ "name": "mine" })))
        .await
        .unwrap();
    let join = toolboxes::join_token(&w.st, &w.ann, "mine").await.unwrap();
    dtma::join(
        &w.st,
        JoinRequest {
            join_token: join.token,
            advertise_url: "http://127.0.0.1:9".into(),
            runtime: ToolboxKind::Process,
            version: "test".into(),
            tls_pin: None,
        },
    )
    .await
    .unwrap();
    let s = servers::create(
        &w.st,
        &w.ann,
        input(json!({ "name": "clock", "catalog": "time", "toolbox": "mine" })),
    )
    .await
    .unwrap();
    let mut sub = w.st.store.events().subscribe();
    let stats = ServerStats {
        cpu_percent: Some(3.0),
        memory_bytes: Some(7_000),
    };
    dtma::heartbeat(
        &w.st,
        &tb.id,
        report(&s, ServerStatus::Running, Some(stats)),
    )
    .await
    .unwrap();
    let (owner, status) = wait_for(&mut sub, |e| match e {
        Event::ServerStatus {
            server,
            owner,
            status,
            ..
        } if *server == s.id => Some((owner.clone(), *status)),
        _ => None,
    })
    .await;
    assert_eq!(
        (owner.as_ref(), status),
        (Some(w.ann.id()), ServerStatus::Running)
    );
    let tb_owner = wait_for(&mut sub, |e| match e {
        Event::ToolboxStatus {
            toolbox,
            owner,
            status: ToolboxStatus::Active,
        } if *toolbox == tb.id => Some(owner.clone()),
        _ => None,
    })
    .await;
    assert_eq!(tb_owner.as_ref(), Some(w.ann.id()));

    // The same report again moves nothing: no server event, no new history.
    dtma::heartbeat(&w.st, &tb.id, report(&s, ServerStatus::Running, None))
        .await
        .unwrap();
    dtma::heartbeat(&w.st, &tb.id, report(&s, ServerStatus::ErrorRuntime, None))
        .await
        .unwrap();
    let next = wait_for(&mut sub, |e| match e {
        Event::ServerStatus { status, .. } => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(
        next,
        ServerStatus::ErrorRuntime,
        "Running was not announced twice"
    );

    let mut c = w.st.store.conn().await.unwrap();
    let h = history::for_server(&mut c, &s.id, 10).await.unwrap();
    assert_eq!(
        h.iter().map(|x| x.status).collect::<Vec<_>>(),
        [ServerStatus::ErrorRuntime, ServerStatus::Running]
    );
    let since = metrics::this_minute() - 2;
    let srv = metrics::resources(&mut c, &Subject::Server(s.id.clone()), since)
        .await
        .unwrap();
    assert_eq!(srv.last().unwrap().memory_bytes, Some(7_000));
    let host = metrics::resources(&mut c, &Subject::Toolbox(tb.id.clone()), since)
        .await
        .unwrap();
    assert_eq!(
        (
            host.last().unwrap().cpu_percent,
            host.last().unwrap().memory_bytes
        ),
        (Some(12.5), Some(4096))
    );
}

async fn a_decided_approval_is_published_to_its_owner(db: TestDb) {
    let w = World::new(db).await;
    let s = servers::create(
        &w.st,
        &w.admin,
        input(json!({ "name": "clock", "catalog": "time", "toolbox": "local" })),
    )
    .await
    .unwrap();
    let mut c = w.st.store.conn().await.unwrap();
    let agent = agents::create(
        &mut c,
        w.ann.id(),
        &toolbelt_model::Name::parse("name", "bot", 64).unwrap(),
        "",
    )
    .await
    .unwrap();
    let a = toolbelt_store::approvals::create(
        &mut c,
        &agent.id,
        w.ann.id(),
        &s.id,
        "get_current_time",
        &json!({}),
        60_000,
    )
    .await
    .unwrap();
    drop(c);
    let mut sub = w.st.store.events().subscribe();
    approvals::decide(&w.st, &w.ann, a.id.as_str(), approvals::Decision::Approve)
        .await
        .unwrap();
    let (owner, status) = wait_for(&mut sub, |e| match e {
        Event::ApprovalResolved {
            approval,
            owner,
            status,
        } if *approval == a.id => Some((owner.clone(), *status)),
        _ => None,
    })
    .await;
    assert_eq!((&owner, status), (w.ann.id(), ApprovalStatus::Approved));
}
