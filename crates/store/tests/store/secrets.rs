//! The vault's rows: namespaces, the two visibility rules, compare-and-swap updates, and
//! rotation's queries. The bytes are opaque here (the vault's own suite seals real ones).

use crate::{name, open};
use toolbelt_model::{Role, Scope};
use toolbelt_store::secrets::{self, Sealed, SecretId, SecretKind, SecretRef};
use toolbelt_store::{StoreError, users};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    secrets_are_namespaced_and_scoped,
    updates_are_compare_and_swap_and_rotation_rewraps
);

fn id(n: u32) -> SecretId {
    SecretId::parse(&format!("sec_{n:026}")).unwrap()
}

fn sealed(tag: u8, kek: &str) -> Sealed {
    Sealed {
        nonce: vec![tag; 24],
        ciphertext: vec![tag, 0, 255, tag],
        wrapped_key: vec![tag; 72],
        kek_id: kek.into(),
    }
}

async fn secrets_are_namespaced_and_scoped(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let mut scope = async |email: &str, role| {
        let u = users::create(&mut c, email, role, None).await.unwrap();
        Scope {
            user_id: u.id,
            role,
        }
    };
    let (ann, bob, admin) = (
        scope("ann@x.io", Role::Member).await,
        scope("bob@x.io", Role::Member).await,
        scope("root@x.io", Role::Admin).await,
    );
    let k = SecretKind::ApiKey;
    let a = secrets::insert(
        &mut c,
        &id(1),
        Some(&ann.user_id),
        &name("gh"),
        k,
        &sealed(1, "kek_a"),
    )
    .await
    .unwrap();
    assert_eq!(
        (a.version, a.kek_id.as_str(), a.owner_id.as_ref()),
        (1, "kek_a", Some(&ann.user_id))
    );
    secrets::insert(
        &mut c,
        &id(2),
        Some(&bob.user_id),
        &name("gh"),
        k,
        &sealed(2, "kek_a"),
    )
    .await
    .unwrap();
    secrets::insert(&mut c, &id(3), None, &name("gh"), k, &sealed(3, "kek_a"))
        .await
        .unwrap();
    for owner in [Some(&ann.user_id), None] {
        let dup = secrets::insert(&mut c, &id(4), owner, &name("gh"), k, &sealed(4, "kek_a")).await;
        assert!(
            matches!(dup, Err(StoreError::Conflict(_))),
            "one name per namespace"
        );
    }

    let by_name = SecretRef::parse("gh");
    assert_eq!(SecretRef::parse(id(1).as_str()), SecretRef::Id(id(1)));
    let got = secrets::get_sealed(&mut c, &ann, &by_name).await.unwrap();
    assert_eq!(
        (got.meta.id, got.sealed),
        (id(1), sealed(1, "kek_a")),
        "bytes round-trip"
    );
    assert_eq!(
        secrets::get_sealed(&mut c, &admin, &by_name)
            .await
            .unwrap()
            .meta
            .id,
        id(3)
    );
    let found = secrets::find_in_namespace(&mut c, None, "gh")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.meta.id, id(3));
    assert!(
        secrets::find_in_namespace(&mut c, Some(&admin.user_id), "gh")
            .await
            .unwrap()
            .is_none()
    );

    // Metadata: owner and admins. Sealed material: owner, and admins for shared only.
    let anns = SecretRef::Id(id(1));
    assert!(matches!(
        secrets::get(&mut c, &bob, &anns).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        secrets::get_sealed(&mut c, &bob, &anns).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(secrets::get(&mut c, &admin, &anns).await.unwrap().id, id(1));
    assert!(matches!(
        secrets::get_sealed(&mut c, &admin, &anns).await,
        Err(StoreError::NotFound)
    ));
    let shared = SecretRef::Id(id(3));
    assert!(matches!(
        secrets::get(&mut c, &ann, &shared).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        secrets::get_sealed(&mut c, &ann, &shared).await,
        Err(StoreError::NotFound)
    ));

    let ids = |p: toolbelt_model::Page<secrets::SecretMeta>| {
        p.items.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(secrets::list(&mut c, &ann, 10, None).await.unwrap()),
        [id(1)]
    );
    let first = secrets::list(&mut c, &admin, 2, None).await.unwrap();
    assert_eq!(first.next_cursor.as_deref(), Some(id(2).as_str()));
    assert_eq!(
        ids(secrets::list(&mut c, &admin, 2, Some(id(2).as_str()))
            .await
            .unwrap()),
        [id(3)]
    );

    assert!(matches!(
        secrets::delete(&mut c, &bob, &anns).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        secrets::delete(&mut c, &admin, &anns).await.unwrap().id,
        id(1)
    );
    assert!(matches!(
        secrets::get(&mut c, &ann, &anns).await,
        Err(StoreError::NotFound)
    ));
}

async fn updates_are_compare_and_swap_and_rotation_rewraps(db: TestDb) {
    let s = open(&db).await;
    let mut c = s.conn().await.unwrap();
    let ann = users::create(&mut c, "ann@x.io", Role::Member, None)
        .await
        .unwrap();
    let scope = Scope {
        user_id: ann.id.clone(),
        role: Role::Member,
    };
    for n in 1..=5 {
        let kek = if n <= 3 { "kek_old" } else { "kek_new" };
        let nm = name(&format!("s{n}"));
        secrets::insert(
            &mut c,
            &id(n),
            Some(&ann.id),
            &nm,
            SecretKind::Generic,
            &sealed(1, kek),
        )
        .await
        .unwrap();
    }
    let m = secrets::replace(
        &mut c,
        &id(1),
        1,
        SecretKind::Password,
        &sealed(9, "kek_new"),
    )
    .await
    .unwrap();
    assert_eq!(
        (m.version, m.kind, m.kek_id.as_str()),
        (2, SecretKind::Password, "kek_new")
    );
    let stale = secrets::replace(
        &mut c,
        &id(1),
        1,
        SecretKind::Password,
        &sealed(8, "kek_new"),
    )
    .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict(_))),
        "a stale version loses"
    );
    let row = secrets::get_sealed(&mut c, &scope, &SecretRef::Id(id(1)))
        .await
        .unwrap();
    assert_eq!(row.sealed, sealed(9, "kek_new"));

    assert_eq!(
        secrets::kek_usage(&mut c).await.unwrap(),
        [("kek_new", 3), ("kek_old", 2)].map(|(k, n)| secrets::KekUsage {
            kek_id: k.into(),
            secrets: n,
            records: 0,
        })
    );
    let todo = secrets::not_wrapped_by(&mut c, "kek_new", None, 1)
        .await
        .unwrap();
    assert_eq!(
        todo.iter().map(|r| r.meta.id.clone()).collect::<Vec<_>>(),
        [id(2)]
    );
    let rest = secrets::not_wrapped_by(&mut c, "kek_new", Some(&id(2)), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|r| r.meta.id.clone()).collect::<Vec<_>>(),
        [id(3)]
    );

    assert!(
        secrets::rewrap(&mut c, &id(2), 1, "kek_old", "kek_new", vec![7; 72])
            .await
            .unwrap()
    );
    assert!(
        !secrets::rewrap(&mut c, &id(3), 2, "kek_old", "kek_new", vec![7; 72])
            .await
            .unwrap(),
        "wrong version"
    );
    assert!(
        !secrets::rewrap(&mut c, &id(3), 1, "kek_x", "kek_new", vec![7; 72])
            .await
            .unwrap(),
        "wrong key"
    );
    let row = secrets::get_sealed(&mut c, &scope, &SecretRef::Id(id(2)))
        .await
        .unwrap();
    assert_eq!(
        (row.sealed.wrapped_key, row.meta.version),
        (vec![7; 72], 1),
        "only the wrapped key changes"
    );
    assert_eq!(row.sealed.ciphertext, sealed(1, "").ciphertext);
}
