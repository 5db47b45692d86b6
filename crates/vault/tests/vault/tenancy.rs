//! Ownership: members see and open only their own secrets; shared secrets are the admins';
//! admins manage members' secrets but never open them.

use crate::{name, user, vault};
use toolbelt_model::Role;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;
use toolbelt_vault::{Owner, SecretKind, VaultError};

backend_tests!(members_and_admins_reach_only_what_is_theirs);

async fn members_and_admins_reach_only_what_is_theirs(db: TestDb) {
    let v = vault(&db).await;
    let s = v.store().clone();
    let (ann, bob) = (
        user(&s, "ann@x.io", Role::Member).await,
        user(&s, "bob@x.io", Role::Member).await,
    );
    let admin = user(&s, "root@x.io", Role::Admin).await;
    let anns = v
        .put(
            &ann,
            Owner::Caller,
            &name("github"),
            SecretKind::OauthToken,
            "ann-token".into(),
        )
        .await
        .unwrap();

    // Bob: neither by id nor by name, for reading, metadata or deleting — NotFound, as if
    // it did not exist.
    for key in [anns.id.as_str(), "github"] {
        assert!(
            matches!(v.get(&bob, key).await, Err(VaultError::NotFound)),
            "{key}"
        );
        assert!(
            matches!(v.meta(&bob, key).await, Err(VaultError::NotFound)),
            "{key}"
        );
        assert!(
            matches!(v.delete(&bob, key).await, Err(VaultError::NotFound)),
            "{key}"
        );
    }
    assert!(v.list(&bob).await.unwrap().is_empty());
    // The same name in Bob's namespace is a different secret.
    let bobs = v
        .put(
            &bob,
            Owner::Caller,
            &name("github"),
            SecretKind::OauthToken,
            "bob-token".into(),
        )
        .await
        .unwrap();
    assert_ne!(bobs.id, anns.id);
    assert_eq!(v.get(&bob, "github").await.unwrap().expose(), b"bob-token");
    assert_eq!(v.get(&ann, "github").await.unwrap().expose(), b"ann-token");

    // Shared secrets: admins only.
    let err = v
        .put(
            &ann,
            Owner::Shared,
            &name("client"),
            SecretKind::OauthClientSecret,
            "x".into(),
        )
        .await;
    assert!(matches!(err, Err(VaultError::Forbidden(_))));
    let shared = v
        .put(
            &admin,
            Owner::Shared,
            &name("client"),
            SecretKind::OauthClientSecret,
            "client-secret".into(),
        )
        .await
        .unwrap();
    assert!(shared.owner_id.is_none());
    assert_eq!(
        v.get(&admin, "client").await.unwrap().expose(),
        b"client-secret"
    );
    assert_eq!(
        v.get(&admin, shared.id.as_str()).await.unwrap().expose(),
        b"client-secret"
    );
    assert!(matches!(
        v.get(&ann, shared.id.as_str()).await,
        Err(VaultError::NotFound)
    ));
    assert!(matches!(
        v.get(&ann, "client").await,
        Err(VaultError::NotFound)
    ));
    assert!(
        v.list(&ann)
            .await
            .unwrap()
            .iter()
            .all(|m| m.owner_id.as_ref() == Some(&ann.user_id))
    );
    // An admin's own secret of the same name comes first by name; the shared one by id.
    v.put(
        &admin,
        Owner::Caller,
        &name("client"),
        SecretKind::Generic,
        "admins-own".into(),
    )
    .await
    .unwrap();
    assert_eq!(
        v.get(&admin, "client").await.unwrap().expose(),
        b"admins-own"
    );
    assert_eq!(
        v.get(&admin, shared.id.as_str()).await.unwrap().expose(),
        b"client-secret"
    );

    // Admins see every secret's metadata and may delete a member's, but never open it.
    assert_eq!(v.list(&admin).await.unwrap().len(), 4);
    assert_eq!(
        v.meta(&admin, anns.id.as_str())
            .await
            .unwrap()
            .name
            .as_str(),
        "github"
    );
    assert!(matches!(
        v.get(&admin, anns.id.as_str()).await,
        Err(VaultError::NotFound)
    ));
    assert_eq!(
        v.delete(&admin, anns.id.as_str()).await.unwrap().id,
        anns.id
    );
    assert!(matches!(
        v.get(&ann, "github").await,
        Err(VaultError::NotFound)
    ));
    assert_eq!(v.get(&bob, "github").await.unwrap().expose(), b"bob-token");
}
