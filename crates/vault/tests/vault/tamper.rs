//! An attacker with write access to the database, and a vault given the wrong key: each
//! fails to open with a precise error, never a panic and never another row's value.

use crate::{name, sql, store, user, vault, vault_with};
use sqlx::Row;
use std::sync::Arc;
use toolbelt_model::Role;
use toolbelt_store::Store;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;
use toolbelt_vault::{EnvKeyProvider, KeyRing, Owner, SecretKind, VaultError, kek_id_of};
use zeroize::Zeroizing;

backend_tests!(
    a_tampered_ciphertext_or_wrapped_key_fails_to_decrypt,
    ciphertexts_swapped_between_rows_fail_to_decrypt,
    a_ciphertext_moved_to_another_version_or_owner_fails,
    a_wrong_kek_fails_cleanly_with_a_precise_error,
);

async fn column(s: &Store, id: &str, col: &str) -> Vec<u8> {
    let q = format!("SELECT {col} AS b FROM secrets WHERE id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(id.to_string())
        .fetch_one(s.pool())
        .await
        .unwrap();
    r.get::<Vec<u8>, _>("b")
}

async fn set_column(s: &Store, id: &str, col: &str, b: Vec<u8>) {
    let q = format!("UPDATE secrets SET {col} = $1 WHERE id = $2");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(b)
        .bind(id.to_string())
        .execute(s.pool())
        .await
        .unwrap();
}

pub async fn flip_ciphertext(s: &Store, id: &str) {
    let mut ct = column(s, id, "ciphertext").await;
    ct[0] ^= 0x01;
    set_column(s, id, "ciphertext", ct).await;
}

async fn a_tampered_ciphertext_or_wrapped_key_fails_to_decrypt(db: TestDb) {
    let v = vault(&db).await;
    let ann = user(v.store(), "ann@x.io", Role::Member).await;
    let a = v
        .put(
            &ann,
            Owner::Caller,
            &name("a"),
            SecretKind::ApiKey,
            "value-a".into(),
        )
        .await
        .unwrap();
    let b = v
        .put(
            &ann,
            Owner::Caller,
            &name("b"),
            SecretKind::ApiKey,
            "value-b".into(),
        )
        .await
        .unwrap();
    flip_ciphertext(v.store(), a.id.as_str()).await;
    let err = v.get(&ann, "a").await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Decrypt { secret_id } if *secret_id == a.id.to_string()),
        "{err}"
    );
    assert!(err.to_string().contains(a.id.as_str()), "{err}");

    let mut wk = column(v.store(), b.id.as_str(), "wrapped_key").await;
    let last = wk.len() - 1;
    wk[last] ^= 0x80;
    set_column(v.store(), b.id.as_str(), "wrapped_key", wk).await;
    let err = v.get(&ann, "b").await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Unwrap { kek_id, .. } if *kek_id == b.kek_id),
        "{err}"
    );

    // A truncated nonce is just another failure.
    set_column(v.store(), b.id.as_str(), "nonce", vec![1, 2, 3]).await;
    assert!(v.get(&ann, "b").await.is_err());
}

async fn ciphertexts_swapped_between_rows_fail_to_decrypt(db: TestDb) {
    let v = vault(&db).await;
    let ann = user(v.store(), "ann@x.io", Role::Member).await;
    let a = v
        .put(
            &ann,
            Owner::Caller,
            &name("a"),
            SecretKind::ApiKey,
            "value-a".into(),
        )
        .await
        .unwrap();
    let b = v
        .put(
            &ann,
            Owner::Caller,
            &name("b"),
            SecretKind::ApiKey,
            "value-b".into(),
        )
        .await
        .unwrap();
    let (ia, ib) = (a.id.as_str(), b.id.as_str());

    // Nonce and ciphertext swapped: each row's data key meets the other's ciphertext.
    for col in ["nonce", "ciphertext"] {
        let (ca, cb) = (
            column(v.store(), ia, col).await,
            column(v.store(), ib, col).await,
        );
        set_column(v.store(), ia, col, cb).await;
        set_column(v.store(), ib, col, ca).await;
    }
    assert!(matches!(
        v.get(&ann, "a").await,
        Err(VaultError::Decrypt { .. })
    ));
    assert!(matches!(
        v.get(&ann, "b").await,
        Err(VaultError::Decrypt { .. })
    ));

    // Everything sealed swapped (nonce, ciphertext, wrapped key): the data key is bound to
    // its row, so it no longer unwraps.
    let (wa, wb) = (
        column(v.store(), ia, "wrapped_key").await,
        column(v.store(), ib, "wrapped_key").await,
    );
    set_column(v.store(), ia, "wrapped_key", wb).await;
    set_column(v.store(), ib, "wrapped_key", wa).await;
    assert!(matches!(
        v.get(&ann, "a").await,
        Err(VaultError::Unwrap { .. })
    ));
    assert!(matches!(
        v.get(&ann, "b").await,
        Err(VaultError::Unwrap { .. })
    ));
}

async fn a_ciphertext_moved_to_another_version_or_owner_fails(db: TestDb) {
    let v = vault(&db).await;
    let ann = user(v.store(), "ann@x.io", Role::Member).await;
    let bob = user(v.store(), "bob@x.io", Role::Member).await;
    let a = v
        .put(
            &ann,
            Owner::Caller,
            &name("a"),
            SecretKind::ApiKey,
            "value-a".into(),
        )
        .await
        .unwrap();
    sql(
        v.store(),
        &format!("UPDATE secrets SET version = 2 WHERE id = '{}'", a.id),
    )
    .await;
    assert!(matches!(
        v.get(&ann, "a").await,
        Err(VaultError::Unwrap { .. })
    ));
    sql(
        v.store(),
        &format!(
            "UPDATE secrets SET version = 1, owner_id = '{}' WHERE id = '{}'",
            bob.user_id, a.id
        ),
    )
    .await;
    assert!(
        matches!(v.get(&bob, "a").await, Err(VaultError::Unwrap { .. })),
        "bob gains nothing by re-owning it"
    );
    sql(
        v.store(),
        &format!(
            "UPDATE secrets SET owner_id = '{}' WHERE id = '{}'",
            ann.user_id, a.id
        ),
    )
    .await;
    assert_eq!(
        v.get(&ann, "a").await.unwrap().expose(),
        b"value-a",
        "restored, it opens again"
    );
}

async fn a_wrong_kek_fails_cleanly_with_a_precise_error(db: TestDb) {
    let s = store(&db).await;
    let right = KeyRing::generate().unwrap();
    let right_id = right.current().unwrap().to_string();
    let v = vault_with(s.clone(), Arc::new(right)).await;
    let ann = user(&s, "ann@x.io", Role::Member).await;
    let m = v
        .put(
            &ann,
            Owner::Caller,
            &name("a"),
            SecretKind::ApiKey,
            "value-a".into(),
        )
        .await
        .unwrap();
    assert_eq!(m.kek_id, right_id);

    // Another key altogether (here from the environment): the row names a key it lacks.
    let other = "ab".repeat(32);
    let env = EnvKeyProvider::from_value(&other).unwrap();
    let other_id = kek_id_of(&hex::decode(&other).unwrap().try_into().unwrap());
    let wrong = vault_with(s.clone(), Arc::new(env)).await;
    let err = wrong.get(&ann, "a").await.unwrap_err();
    match &err {
        VaultError::UnknownKek {
            secret_id,
            kek_id,
            held,
        } => {
            assert_eq!(
                (secret_id.as_str(), kek_id.as_str()),
                (m.id.as_str(), right_id.as_str())
            );
            assert_eq!(held, &other_id);
        }
        e => panic!("expected UnknownKek, got {e:?}"),
    }
    assert!(
        err.to_string().contains(&right_id) && err.to_string().contains(&other_id),
        "{err}"
    );

    // A different key passed off under the right id: it does not unwrap.
    let mut impostor = KeyRing::default();
    impostor.add(right_id.clone(), Zeroizing::new([7u8; 32]), true);
    let wrong = vault_with(s.clone(), Arc::new(impostor)).await;
    let err = wrong.get(&ann, "a").await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Unwrap { kek_id, .. } if *kek_id == right_id),
        "{err}"
    );
    assert!(!err.to_string().contains("value-a"));

    // Rotation under the wrong key reports the row unreadable and changes nothing.
    let report = wrong.rotate().await.unwrap();
    assert_eq!(
        (report.rewrapped, report.unreadable.len()),
        (0, 0),
        "same id: nothing to move"
    );
    let env = EnvKeyProvider::from_value(&other).unwrap();
    let report = vault_with(s.clone(), Arc::new(env))
        .await
        .rotate()
        .await
        .unwrap();
    assert_eq!(
        (report.rewrapped, report.unreadable.len(), report.remaining),
        (0, 1, 1)
    );
    assert_eq!(
        v.get(&ann, "a").await.unwrap().expose(),
        b"value-a",
        "the right key still opens it"
    );
}
