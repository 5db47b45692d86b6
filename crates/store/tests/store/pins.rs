//! Pins of many servers in one call (the agent builder's tree): each server's own, none of
//! another's, across the statement's chunks; prompts' pins apart from tools' of one name.

use crate::{name, open};
use serde_json::{Map, json};
use std::collections::BTreeMap;
use toolbelt_model::gateway::{Pin, PinKind};
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_store::{catalog, pins, servers, toolboxes};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(pins_of_many_servers_come_back_by_server);

async fn pins_of_many_servers_come_back_by_server(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let tb = toolboxes::create(&mut c, &name("tb"), None, None, ToolboxStatus::Active)
        .await
        .unwrap();
    let spec = serde_json::from_value(
        json!({"slug": "fx", "source": {"type": "image", "image": "fx"}, "transport": "stdio"}),
    )
    .unwrap();
    let entry = catalog::create(&mut c, &spec).await.unwrap();
    let (cfg, sec) = (Map::new(), BTreeMap::new());
    // More servers than one statement binds (500), so the chunks are exercised.
    let mut ids = Vec::new();
    for i in 0..503 {
        let srv = servers::create(
            &mut c,
            servers::NewServer {
                name: &name(&format!("s{i}")),
                toolbox_id: &tb.id,
                catalog_id: &entry.id,
                owner_id: None,
                config: &cfg,
                secrets: &sec,
            },
        )
        .await
        .unwrap();
        ids.push(srv.id);
    }
    let pin = |server: &toolbelt_model::ServerId, tool: &str| Pin {
        server_id: server.clone(),
        kind: Default::default(),
        tool: tool.into(),
        hash: "ab".repeat(32),
        definition: json!({ "name": tool }),
        flags: vec![],
    };
    // Two tools on the first server, one on the last; the rest have none.
    for p in [pin(&ids[0], "b"), pin(&ids[0], "a"), pin(&ids[502], "z")] {
        pins::set(&mut c, &p, None).await.unwrap();
    }
    let got = pins::for_servers(&mut c, &ids).await.unwrap();
    assert_eq!(got.len(), 2, "only servers with pins: {:?}", got.keys());
    let tools = |i: usize| -> Vec<String> { got[&ids[i]].iter().map(|p| p.tool.clone()).collect() };
    assert_eq!(tools(0), ["a", "b"]);
    assert_eq!(tools(502), ["z"]);
    assert_eq!(got[&ids[502]][0].server_id, ids[502]);
    // Asked for other servers only, the pinned ones are not returned.
    let others = pins::for_servers(&mut c, &ids[1..502]).await.unwrap();
    assert!(others.is_empty(), "{others:?}");
    assert!(pins::for_servers(&mut c, &[]).await.unwrap().is_empty());
    // A prompt of a tool's name is pinned (and held) apart from it, and not listed as a tool.
    let prompt = Pin {
        kind: PinKind::Prompt,
        ..pin(&ids[0], "a")
    };
    pins::set(&mut c, &prompt, None).await.unwrap();
    let got = pins::for_servers(&mut c, &ids[..1]).await.unwrap();
    assert_eq!(got[&ids[0]].len(), 2, "tools only: {got:?}");
    let prompts = pins::of_kind(&mut c, &ids[0], PinKind::Prompt)
        .await
        .unwrap();
    assert_eq!((prompts.len(), prompts[0].kind), (1, PinKind::Prompt));
    assert!(
        pins::record_change(&mut c, None, &pin(&ids[0], "a"))
            .await
            .unwrap()
    );
    assert!(pins::record_change(&mut c, None, &prompt).await.unwrap());
    assert!(!pins::record_change(&mut c, None, &prompt).await.unwrap());
    assert_eq!(
        pins::pending_for(&mut c, &ids[0], "a").await.unwrap().kind,
        PinKind::Tool
    );
    // A server's first listing of prompts and templates is recorded once.
    assert!(!pins::listings_pinned(&mut c, &ids[0]).await.unwrap());
    pins::mark_listings_pinned(&mut c, &ids[0]).await.unwrap();
    assert!(pins::listings_pinned(&mut c, &ids[0]).await.unwrap());
}
