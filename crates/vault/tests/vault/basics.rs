//! Round trip, versions, audit of every decrypt, the database dump, and cost.

use crate::{name, user, vault};
use std::time::Instant;
use toolbelt_model::Role;
use toolbelt_model::audit::Outcome;
use toolbelt_store::audit;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;
use toolbelt_vault::{Actor, Owner, SecretKind, SecretValue, VaultError};

backend_tests!(
    values_round_trip_and_updates_make_new_versions,
    every_decrypt_appends_an_audit_event,
    put_and_get_cost,
);

async fn values_round_trip_and_updates_make_new_versions(db: TestDb) {
    let v = vault(&db).await;
    let ann = user(v.store(), "ann@x.io", Role::Member).await;
    let m1 = v
        .put(
            &ann,
            Owner::Caller,
            &name("github"),
            SecretKind::ApiKey,
            "ghp_one".into(),
        )
        .await
        .unwrap();
    assert_eq!((m1.version, m1.owner_id.as_ref()), (1, Some(&ann.user_id)));
    assert_eq!(v.get(&ann, "github").await.unwrap().expose(), b"ghp_one");
    assert_eq!(
        v.get(&ann, m1.id.as_str()).await.unwrap().expose(),
        b"ghp_one"
    );

    // Binary values and the empty value survive too.
    let bin: Vec<u8> = (0..=255).collect();
    v.put(
        &ann,
        Owner::Caller,
        &name("blob"),
        SecretKind::Generic,
        bin.clone().into(),
    )
    .await
    .unwrap();
    assert_eq!(v.get(&ann, "blob").await.unwrap().expose(), bin.as_slice());
    v.put(
        &ann,
        Owner::Caller,
        &name("empty"),
        SecretKind::Generic,
        "".into(),
    )
    .await
    .unwrap();
    assert!(v.get(&ann, "empty").await.unwrap().is_empty());

    let m2 = v
        .put(
            &ann,
            Owner::Caller,
            &name("github"),
            SecretKind::OauthToken,
            "ghp_two".into(),
        )
        .await
        .unwrap();
    assert_eq!(
        (m2.id.clone(), m2.version, m2.kind),
        (m1.id.clone(), 2, SecretKind::OauthToken)
    );
    assert!(m2.updated_at >= m1.updated_at && m2.created_at == m1.created_at);
    assert_eq!(
        v.get(&ann, "github").await.unwrap().expose_str(),
        Some("ghp_two")
    );

    let names: Vec<String> = v
        .list(&ann)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name.to_string())
        .collect();
    assert_eq!(names, ["github", "blob", "empty"]);
    let meta_json = serde_json::to_string(&v.meta(&ann, "github").await.unwrap()).unwrap();
    assert!(
        !meta_json.contains("ghp_"),
        "metadata carries no value: {meta_json}"
    );

    assert_eq!(v.delete(&ann, "github").await.unwrap().id, m1.id);
    assert!(matches!(
        v.get(&ann, "github").await,
        Err(VaultError::NotFound)
    ));
    assert!(matches!(
        v.delete(&ann, "github").await,
        Err(VaultError::NotFound)
    ));
}

async fn every_decrypt_appends_an_audit_event(db: TestDb) {
    let v = vault(&db).await;
    let ann = user(v.store(), "ann@x.io", Role::Member).await;
    let m = v
        .put(
            &ann,
            Owner::Caller,
            &name("slack"),
            SecretKind::OauthToken,
            "xoxb-canary-1".into(),
        )
        .await
        .unwrap();
    let mut c = v.store().conn().await.unwrap();
    let before = audit::count(&mut c).await.unwrap();
    for _ in 0..3 {
        v.get(&ann, "slack").await.unwrap();
    }
    let agent = toolbelt_model::AgentId::generate();
    v.get_as(&ann, m.id.as_str(), &Actor::agent(&agent, "inject"))
        .await
        .unwrap();
    assert_eq!(audit::count(&mut c).await.unwrap(), before + 4);

    let filter = audit::Filter {
        action: Some("secret.decrypt".into()),
        ..Default::default()
    };
    let page = audit::list(&mut c, &ann, &filter, 100, None).await.unwrap();
    assert_eq!(
        page.items.len(),
        4,
        "the owner sees the decrypts of their secret"
    );
    let last = &page.items[0];
    assert_eq!(last.target_id.as_deref(), Some(m.id.as_str()));
    assert_eq!(last.actor_id.as_deref(), Some(agent.as_str()));
    assert_eq!(last.outcome, Outcome::Success);
    assert!(
        last.detail.contains("\"purpose\":\"inject\""),
        "{}",
        last.detail
    );
    assert!(page.items.iter().all(|e| !e.detail.contains("xoxb")));

    // A failed decrypt is recorded as a failure.
    crate::tamper::flip_ciphertext(v.store(), m.id.as_str()).await;
    assert!(v.get(&ann, "slack").await.is_err());
    let failed = audit::list(&mut c, &ann, &filter, 1, None).await.unwrap();
    assert_eq!(failed.items[0].outcome, Outcome::Failure);
    assert!(
        audit::verify(&mut c).await.unwrap().ok,
        "the chain still verifies"
    );
}

/// End-to-end cost per secret on this backend: `put` (seal + insert + audit event) and `get`
/// (select + unwrap + open + audit event). Prints; never asserts on time.
async fn put_and_get_cost(db: TestDb) {
    let v = vault(&db).await;
    let ann = user(v.store(), "ann@x.io", Role::Member).await;
    let n = 200;
    let value = "v".repeat(256);
    let t = Instant::now();
    for i in 0..n {
        let m = v
            .put(
                &ann,
                Owner::Caller,
                &name(&format!("s{i}")),
                SecretKind::Generic,
                SecretValue::from(value.as_str()),
            )
            .await
            .unwrap();
        assert_eq!(m.version, 1);
    }
    let put_us = t.elapsed().as_micros() / n;
    let t = Instant::now();
    for i in 0..n {
        assert_eq!(v.get(&ann, &format!("s{i}")).await.unwrap().len(), 256);
    }
    let get_us = t.elapsed().as_micros() / n;
    println!(
        "vault on {}: put {put_us} µs/secret, get {get_us} µs/secret (256-byte values, with audit)",
        db.backend
    );
}
