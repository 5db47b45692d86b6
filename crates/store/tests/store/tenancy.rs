//! Tenancy enforced in the queries: a member's scope never reads another member's rows.

use crate::{name, open};
use serde_json::{Map, json};
use std::collections::BTreeMap;
use toolbelt_model::grant::{GrantKind, ToolRule};
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_model::{Role, Scope};
use toolbelt_store::{StoreError, agents, catalog, grants, servers, toolboxes, users};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(members_read_only_their_own_rows_and_shared_ones);

async fn members_read_only_their_own_rows_and_shared_ones(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let admin = users::create(&mut c, "a@x.io", Role::Admin, None)
        .await
        .unwrap();
    let ann = users::create(&mut c, "ann@x.io", Role::Member, None)
        .await
        .unwrap();
    let bob = users::create(&mut c, "bob@x.io", Role::Member, None)
        .await
        .unwrap();
    let sc = |u: &toolbelt_model::user::User| Scope {
        user_id: u.id.clone(),
        role: u.role,
    };
    let (sa, sann, sbob) = (sc(&admin), sc(&ann), sc(&bob));

    let shared = toolboxes::create(&mut c, &name("shared"), None, None, ToolboxStatus::Active)
        .await
        .unwrap();
    let anns = toolboxes::create(
        &mut c,
        &name("mine"),
        Some(&ann.id),
        None,
        ToolboxStatus::Active,
    )
    .await
    .unwrap();
    // The same name in another member's namespace is fine (and reveals nothing).
    let bobs = toolboxes::create(
        &mut c,
        &name("mine"),
        Some(&bob.id),
        None,
        ToolboxStatus::Active,
    )
    .await
    .unwrap();
    assert!(matches!(
        toolboxes::create(
            &mut c,
            &name("mine"),
            Some(&bob.id),
            None,
            ToolboxStatus::Active
        )
        .await,
        Err(StoreError::Conflict(_))
    ));

    assert_eq!(
        toolboxes::find_by_name(&mut c, &sann, "mine")
            .await
            .unwrap()
            .id,
        anns.id
    );
    assert_eq!(
        toolboxes::find_by_name(&mut c, &sbob, "mine")
            .await
            .unwrap()
            .id,
        bobs.id
    );
    assert!(matches!(
        toolboxes::get(&mut c, &sbob, &anns.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(toolboxes::get(&mut c, &sbob, &shared.id).await.is_ok());
    assert!(toolboxes::get(&mut c, &sa, &anns.id).await.is_ok());
    let bob_sees: Vec<_> = toolboxes::list(&mut c, &sbob, 100, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(bob_sees, vec![shared.id.clone(), bobs.id.clone()]);
    assert_eq!(
        toolboxes::list(&mut c, &sa, 100, None)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    assert!(matches!(
        toolboxes::delete(&mut c, &sbob, &anns.id).await,
        Err(StoreError::NotFound)
    ));

    let spec = serde_json::from_value(
        json!({"slug": "fx", "source": {"type": "image", "image": "fx"}, "transport": "stdio"}),
    )
    .unwrap();
    let entry = catalog::create(&mut c, &spec).await.unwrap();
    let (cfg, sec) = (Map::new(), BTreeMap::new());
    let srv = servers::create(
        &mut c,
        servers::NewServer {
            name: &name("tools"),
            toolbox_id: &anns.id,
            catalog_id: &entry.id,
            owner_id: Some(&ann.id),
            config: &cfg,
            secrets: &sec,
        },
    )
    .await
    .unwrap();
    let shared_srv = servers::create(
        &mut c,
        servers::NewServer {
            name: &name("tools"),
            toolbox_id: &shared.id,
            catalog_id: &entry.id,
            owner_id: None,
            config: &cfg,
            secrets: &sec,
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        servers::get(&mut c, &sbob, &srv.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        servers::find_by_name(&mut c, &sbob, "tools", None)
            .await
            .unwrap()
            .len(),
        1,
        "bob sees only the shared one"
    );
    assert_eq!(
        servers::find_by_name(&mut c, &sann, "tools", None)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(matches!(
        servers::set_desired(
            &mut c,
            &sbob,
            &srv.id,
            toolbelt_model::server::DesiredState::Stopped,
            false
        )
        .await,
        Err(StoreError::NotFound)
    ));
    // A visible shared server is still not writable by a member.
    assert!(matches!(
        servers::set_desired(
            &mut c,
            &sbob,
            &shared_srv.id,
            toolbelt_model::server::DesiredState::Stopped,
            false
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        matches!(
            toolboxes::delete(&mut c, &sann, &anns.id).await,
            Err(StoreError::Conflict(_))
        ),
        "servers still on it"
    );

    let bot = agents::create(&mut c, &ann.id, &name("bot"), "")
        .await
        .unwrap();
    assert!(matches!(
        agents::get(&mut c, &sbob, &bot.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        agents::find_by_name(&mut c, &sbob, "bot").await,
        Err(StoreError::NotFound)
    ));
    assert!(agents::get(&mut c, &sa, &bot.id).await.is_ok());
    assert!(matches!(
        agents::delete(&mut c, &sbob, &bot.id).await,
        Err(StoreError::NotFound)
    ));

    let g = grants::create(
        &mut c,
        grants::NewGrant {
            agent_id: &bot.id,
            kind: GrantKind::Tool,
            toolbox_id: None,
            server_id: Some(&srv.id),
            tool: Some("echo"),
            connection_id: None,
            rule: ToolRule::Ask,
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        grants::get(&mut c, &sbob, &g.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        grants::list(&mut c, &sbob, None, 100, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        grants::list(&mut c, &sann, Some(&bot.id), 100, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(matches!(
        grants::delete(&mut c, &sbob, &g.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        matches!(
            grants::create(
                &mut c,
                grants::NewGrant {
                    agent_id: &bot.id,
                    kind: GrantKind::Tool,
                    toolbox_id: None,
                    server_id: Some(&srv.id),
                    tool: Some("echo"),
                    connection_id: None,
                    rule: ToolRule::Deny,
                }
            )
            .await,
            Err(StoreError::Conflict(_))
        ),
        "one rule per tool"
    );
    let off = grants::update(&mut c, &sann, &g.id, Some(false), Some(ToolRule::Deny))
        .await
        .unwrap();
    assert!(!off.active);
    assert_eq!(off.rule, ToolRule::Deny);

    // Deleting the agent takes its grants with it.
    agents::delete(&mut c, &sann, &bot.id).await.unwrap();
    assert!(matches!(
        grants::get(&mut c, &sa, &g.id).await,
        Err(StoreError::NotFound)
    ));
}
