//! Signed checkpoints catch what the chain alone cannot: an event rewritten and every
//! later hash recomputed (and the head moved), or a tail cut with the head moved back.

use crate::audit_chain::{append, tamper};
use crate::open;
use sqlx::Row;
use toolbelt_model::audit::{ChainFields, VerifyReport};
use toolbelt_model::audit_checkpoint::{AuditKey, AuditPublicKey, Checkpoint, read_verified, thin};
use toolbelt_store::{Store, audit};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    a_consistently_rewritten_chain_passes_alone_and_fails_its_checkpoints,
    a_cut_tail_with_the_head_moved_back_fails_its_checkpoints,
    an_untouched_chain_matches_every_checkpoint,
    a_forged_checkpoint_is_not_taken_for_evidence,
);

async fn sign_head(s: &Store, key: &AuditKey) -> Checkpoint {
    let mut c = s.conn().await.unwrap();
    let (seq, hash) = audit::head(&mut c).await.unwrap();
    key.sign(seq, &hash, toolbelt_model::now())
}

async fn verify_with(s: &Store, cps: &[Checkpoint]) -> VerifyReport {
    let mut c = s.conn().await.unwrap();
    audit::verify_against(&mut c, &thin(cps, 4096))
        .await
        .unwrap()
}

async fn verify(s: &Store) -> VerifyReport {
    let mut c = s.conn().await.unwrap();
    audit::verify(&mut c).await.unwrap()
}

/// What an attacker with write access does: event `at` gets a new detail, every event
/// from it on is re-hashed onto its predecessor, the head follows. Nothing is inconsistent.
async fn rewrite_consistently(s: &Store, db: &TestDb, at: i64) {
    tamper(s, db, "SELECT 1").await;
    let mut c = s.conn().await.unwrap();
    let prev: String = sqlx::query("SELECT hash FROM audit_events WHERE seq = $1")
        .bind(at - 1)
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .get("hash");
    let rows = sqlx::query("SELECT * FROM audit_events WHERE seq >= $1 ORDER BY seq")
        .bind(at)
        .fetch_all(&mut *c)
        .await
        .unwrap();
    let mut prev_hash = prev;
    for r in &rows {
        let seq: i64 = r.get("seq");
        let detail: String = if seq == at {
            r#"{"i":0,"note":"nothing happened here"}"#.into()
        } else {
            r.get("detail")
        };
        let (ak, action, tk, outcome): (String, String, String, String) = (
            r.get("actor_kind"),
            r.get("action"),
            r.get("target_kind"),
            r.get("outcome"),
        );
        let (actor, owner, target): (Option<String>, Option<String>, Option<String>) =
            (r.get("actor_id"), r.get("owner_id"), r.get("target_id"));
        let hash = ChainFields {
            seq,
            ts_ms: r.get("ts"),
            actor_kind: &ak,
            actor_id: actor.as_deref(),
            owner_id: owner.as_deref(),
            action: &action,
            target_kind: &tk,
            target_id: target.as_deref(),
            outcome: &outcome,
            detail: &detail,
        }
        .hash(&prev_hash);
        sqlx::query(
            "UPDATE audit_events SET detail = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
        )
        .bind(&detail)
        .bind(&prev_hash)
        .bind(&hash)
        .bind(seq)
        .execute(&mut *c)
        .await
        .unwrap();
        prev_hash = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev_hash)
        .execute(&mut *c)
        .await
        .unwrap();
}

async fn a_consistently_rewritten_chain_passes_alone_and_fails_its_checkpoints(db: TestDb) {
    let s = open(&db).await;
    let key = AuditKey::generate();
    append(&s, 2).await;
    let at2 = sign_head(&s, &key).await;
    append(&s, 3).await;
    let at5 = sign_head(&s, &key).await;
    append(&s, 2).await;
    assert!(verify_with(&s, &[at2.clone(), at5.clone()]).await.ok);

    rewrite_consistently(&s, &db, 3).await;
    let alone = verify(&s).await;
    assert!(
        alone.ok,
        "the rewrite is consistent: the chain alone cannot tell {alone:?}"
    );
    let r = verify_with(&s, &[at5.clone(), at2.clone()]).await;
    assert!(!r.ok, "{r:?}");
    // The last checkpoint that matches is at 2, the first that does not at 5.
    assert_eq!(r.first_broken_seq, Some(3), "{r:?}");
    assert_eq!(
        (r.signed_through, r.checkpoints_checked),
        (Some(2), Some(1))
    );
    let why = r.reason.unwrap();
    assert!(
        why.contains("rewritten") && why.contains("events 3 to 5"),
        "{why}"
    );
    // With only a later checkpoint the rewrite is found all the same, located less narrowly.
    let r = verify_with(&s, &[at5]).await;
    assert_eq!((r.ok, r.first_broken_seq), (false, Some(1)), "{r:?}");
}

async fn a_cut_tail_with_the_head_moved_back_fails_its_checkpoints(db: TestDb) {
    let s = open(&db).await;
    let key = AuditKey::generate();
    append(&s, 4).await;
    let at4 = sign_head(&s, &key).await;
    append(&s, 4).await;
    let at8 = sign_head(&s, &key).await;
    tamper(&s, &db, "SELECT 1").await;
    let mut c = s.conn().await.unwrap();
    sqlx::query("DELETE FROM audit_events WHERE seq > 6")
        .execute(&mut *c)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_head SET seq = 6, hash = (SELECT hash FROM audit_events WHERE seq = 6) \
         WHERE id = 1",
    )
    .execute(&mut *c)
    .await
    .unwrap();
    drop(c);
    assert!(verify(&s).await.ok, "the head moved back too");
    let r = verify_with(&s, &[at4, at8]).await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.first_broken_seq, Some(7), "{r:?}");
    assert_eq!(r.signed_through, Some(4));
    assert!(r.reason.unwrap().contains("cut"));
}

async fn an_untouched_chain_matches_every_checkpoint(db: TestDb) {
    let s = open(&db).await;
    let key = AuditKey::generate();
    let mut cps = Vec::new();
    for _ in 0..3 {
        append(&s, 3).await;
        cps.push(sign_head(&s, &key).await);
    }
    cps.push(cps[1].clone());
    append(&s, 1).await;
    let r = verify_with(&s, &cps).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(
        (r.checked, r.signed_through, r.checkpoints_checked),
        (10, Some(9), Some(3))
    );
    let plain = verify(&s).await;
    assert_eq!(
        (plain.checkpoints_checked, plain.signed_through),
        (None, None)
    );
}

/// A line whose hash was replaced by the rewritten chain's (so the server would agree)
/// does not verify with the audit key: the file is refused before anything is compared.
async fn a_forged_checkpoint_is_not_taken_for_evidence(db: TestDb) {
    let s = open(&db).await;
    let key = AuditKey::generate();
    append(&s, 5).await;
    let genuine = sign_head(&s, &key).await;
    rewrite_consistently(&s, &db, 2).await;
    let mut c = s.conn().await.unwrap();
    let (_, new_hash) = audit::head(&mut c).await.unwrap();
    let forged = Checkpoint {
        hash: new_hash.clone(),
        ..genuine.clone()
    };
    // Signed by a key of the attacker's own, named as ours.
    let theirs = Checkpoint {
        key: genuine.key.clone(),
        ..AuditKey::generate().sign(5, &new_hash, toolbelt_model::now())
    };
    let public = AuditPublicKey::parse(&key.public_b64()).unwrap();
    for (n, bad) in [forged, theirs].into_iter().enumerate() {
        let text = format!("{}\n", serde_json::to_string(&bad).unwrap());
        let e = read_verified(&text, &public).unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{n}: {e}");
        // What the forger hoped for: the server alone would agree with the forged hash.
        assert!(verify_with(&s, &[bad]).await.ok, "{n}");
    }
    assert!(!verify_with(&s, &[genuine]).await.ok);
}
