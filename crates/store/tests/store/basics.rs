use crate::{name, open};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::token::{self, TokenDigest, TokenKind};
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_model::{Role, Scope};
use toolbelt_store::tokens::Subject;
use toolbelt_store::{StoreError, agents, audit, catalog, tokens, toolboxes, users};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    migrations_apply_once_and_report_ready,
    users_are_unique_by_email_and_the_last_admin_stays,
    tokens_match_only_their_own_digest_and_one_time_tokens_work_once,
    a_failing_step_leaves_nothing_behind,
    keyset_pages_walk_every_row_once,
    seeding_the_catalog_never_overwrites_edits,
);

async fn migrations_apply_once_and_report_ready(db: TestDb) {
    let s = open(&db).await;
    s.ready().await.unwrap();
    s.close().await;
    // Opening again runs the migrator over an up-to-date schema.
    let s = open(&db).await;
    s.ready().await.unwrap();
    assert_eq!(s.backend().as_str(), db.backend);
}

async fn users_are_unique_by_email_and_the_last_admin_stays(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let admin = users::create(&mut c, "root@x.io", Role::Admin, None)
        .await
        .unwrap();
    let dup = users::create(&mut c, "root@x.io", Role::Member, None).await;
    assert!(matches!(dup, Err(StoreError::Conflict(m)) if m.contains("root@x.io")));
    let a = users::get_by_email(&mut c, "root@x.io").await.unwrap();
    assert_eq!((a.user.id, a.password_hash), (admin.id.clone(), None));
    let last = users::delete(&mut c, &admin.id).await;
    assert!(matches!(last, Err(StoreError::Conflict(m)) if m.contains("last admin")));
    let m = users::create(&mut c, "m@x.io", Role::Member, Some("$argon2id$fake"))
        .await
        .unwrap();
    users::delete(&mut c, &m.id).await.unwrap();
    assert!(matches!(
        users::get(&mut c, &m.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn tokens_match_only_their_own_digest_and_one_time_tokens_work_once(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let u = users::create(&mut c, "t@x.io", Role::Member, None)
        .await
        .unwrap();
    let a = token::issue(TokenKind::Api);
    let info = tokens::insert(
        &mut c,
        TokenKind::Api,
        &a.digest,
        &Subject::User(u.id.clone()),
        "cli",
        None,
    )
    .await
    .unwrap();
    let found = tokens::find(&mut c, &TokenDigest::of(&a.secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, info.id);
    assert_eq!(found.role, Some(Role::Member));
    // Same lookup prefix, different digest: no match.
    let mut forged = TokenDigest::of(&a.secret);
    let last = if forged.hash.ends_with('0') { "1" } else { "0" };
    forged.hash.replace_range(63..64, last);
    assert!(tokens::find(&mut c, &forged).await.unwrap().is_none());
    assert!(
        tokens::find(&mut c, &TokenDigest::of("tbu_nothing"))
            .await
            .unwrap()
            .is_none()
    );

    let j = token::issue(TokenKind::Join);
    let tb = toolboxes::create(
        &mut c,
        &name("edge"),
        Some(&u.id),
        None,
        ToolboxStatus::AwaitingHeartbeat,
    )
    .await
    .unwrap();
    let ji = tokens::insert(
        &mut c,
        TokenKind::Join,
        &j.digest,
        &Subject::Toolbox(tb.id.clone()),
        "join",
        None,
    )
    .await
    .unwrap();
    assert!(tokens::consume(&mut c, &ji.id).await.unwrap());
    assert!(
        !tokens::consume(&mut c, &ji.id).await.unwrap(),
        "a one-time token works once"
    );

    let revoked = tokens::revoke(&mut c, &Subject::User(u.id.clone()), &info.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let other = users::create(&mut c, "o@x.io", Role::Member, None)
        .await
        .unwrap();
    assert!(matches!(
        tokens::revoke(&mut c, &Subject::User(other.id), &info.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn a_failing_step_leaves_nothing_behind(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let u = users::create(&mut c, "f@x.io", Role::Member, None)
        .await
        .unwrap();
    let scope = Scope {
        user_id: u.id.clone(),
        role: Role::Member,
    };
    agents::create(&mut c, &u.id, &name("taken"), "")
        .await
        .unwrap();
    let before = audit::count(&mut c).await.unwrap();
    drop(c);

    // Step one succeeds, step two conflicts: the transaction (and its audit event) is gone.
    let mut tx = s.begin_audited().await.unwrap();
    agents::create(&mut tx, &u.id, &name("fresh"), "")
        .await
        .unwrap();
    let second = agents::create(&mut tx, &u.id, &name("taken"), "").await;
    assert!(matches!(second, Err(StoreError::Conflict(_))));
    drop(tx);

    let mut c = s.conn().await.unwrap();
    assert!(matches!(
        agents::find_by_name(&mut c, &scope, "fresh").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(audit::count(&mut c).await.unwrap(), before);

    // And a committed one lands with its event.
    let mut tx = s.begin_audited().await.unwrap();
    let a = agents::create(&mut tx, &u.id, &name("fresh"), "")
        .await
        .unwrap();
    tx.commit(NewAuditEvent::new(
        AuditAction::AgentCreate,
        TargetKind::Agent,
        Some(a.id.to_string()),
    ))
    .await
    .unwrap();
    assert_eq!(audit::count(&mut c).await.unwrap(), before + 1);
}

async fn keyset_pages_walk_every_row_once(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let u = users::create(&mut c, "p@x.io", Role::Member, None)
        .await
        .unwrap();
    let scope = Scope {
        user_id: u.id.clone(),
        role: Role::Member,
    };
    for i in 0..25 {
        agents::create(&mut c, &u.id, &name(&format!("a{i}")), "")
            .await
            .unwrap();
    }
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let page = agents::list(&mut c, &scope, 10, cursor.as_deref())
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|a| a.name.to_string()));
        match page.next_cursor {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 25, "no row twice");
    assert_eq!(seen[0], "a0", "oldest first");
}

async fn seeding_the_catalog_never_overwrites_edits(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let spec: toolbelt_model::catalog::CatalogSpec = serde_json::from_value(json!({
        "slug": "time", "description": "edited", "source": {"type": "image", "image": "mcp/time"}, "transport": "stdio"
    })).unwrap();
    catalog::create(&mut c, &spec).await.unwrap();
    let mut seed = spec.clone();
    seed.description = "seed".into();
    assert!(!catalog::create_if_missing(&mut c, &seed).await.unwrap());
    assert_eq!(
        catalog::get(&mut c, "time").await.unwrap().spec.description,
        "edited"
    );
}
