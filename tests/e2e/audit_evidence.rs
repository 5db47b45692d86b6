//! Audit evidence outside the database, as an auditor uses it: `toolbelt up` writes signed
//! checkpoints to `TOOLBELT_AUDIT_CHECKPOINT_FILE` (on its timer, on demand, at a clean
//! stop); someone with the database file rewrites an event and re-hashes the rest of the
//! chain and the head; `audit verify` still passes, `audit verify --checkpoint F
//! --public-key K` fails naming where the rewrite lies, and a forged line is refused.

use sqlx::{AssertSqlSafe, Connection, Row};
use std::time::Duration;
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::{Cli, Server};
use toolbelt_model::audit::ChainFields;

const ADMIN: &str = "tbu_e2e-bootstrap-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_chain_passes_alone_and_fails_against_signed_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let evidence = dir.path().join("evidence");
    std::fs::create_dir_all(&evidence).unwrap();
    let cp_file = evidence.join("checkpoints.jsonl");
    let cp = cp_file.to_str().unwrap();
    let env = [
        ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
        ("TOOLBELT_AUDIT_CHECKPOINT_FILE", cp),
        ("TOOLBELT_AUDIT_CHECKPOINT_MS", "200"),
    ];
    let server = Server::serve(&data, &env).await;
    let config = dir.path().join("cli.json");
    let admin = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: config.clone(),
    };
    let key = admin.ok(&["audit", "public-key"]).stdout.trim().to_string();
    assert_eq!(key.len(), 43, "{key}");
    for name in ["a1", "a2", "a3"] {
        admin.ok(&["agent", "create", name]);
    }
    // The timer signs the head within a few ticks of it moving.
    let head = admin.ok(&["audit", "verify", "-o", "json"]).json()["head_seq"]
        .as_i64()
        .unwrap();
    eventually(
        "a periodic checkpoint",
        Duration::from_secs(10),
        async || {
            let text = std::fs::read_to_string(&cp_file).unwrap_or_default();
            let seen = seqs(&text).iter().any(|s| *s >= head);
            if seen { Ok(()) } else { Err(text) }
        },
    )
    .await;
    let on_demand = admin.ok(&["audit", "checkpoint", "-o", "json"]).json();
    let signed = on_demand["seq"].as_i64().unwrap();
    for name in ["b1", "b2"] {
        admin.ok(&["agent", "create", name]);
    }
    let ok = admin.ok(&["audit", "verify", "--checkpoint", cp, "--public-key", &key]);
    assert!(
        ok.stdout.contains("intact") && ok.stdout.contains("signed checkpoints match"),
        "{}",
        ok.stdout
    );
    let log_path = server.log.clone();
    server.stop();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let seed = std::fs::read_to_string(data.join("audit.key")).unwrap();
    assert!(!log.contains(seed.trim()), "the audit key is never logged");
    // The clean stop signed the tail too.
    let text = std::fs::read_to_string(&cp_file).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["seq"].as_i64().unwrap() >= signed + 2, "{text}");

    // Event 3 says something else now; every later hash and the head follow it.
    rewrite_consistently(&data.join("toolbelt.db"), 3).await;

    let server = Server::serve(&data, &env).await;
    let admin = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config,
    };
    let alone = admin.run(&["audit", "verify"]);
    assert_eq!(
        alone.code, 0,
        "consistent, so the chain alone passes: {}",
        alone.stdout
    );
    let broken = admin.run(&["audit", "verify", "--checkpoint", cp, "--public-key", &key]);
    assert_eq!(broken.code, 1, "{}\n{}", broken.stdout, broken.stderr);
    assert!(
        broken.stdout.contains("BROKEN at event"),
        "{}",
        broken.stdout
    );
    assert!(broken.stdout.contains("rewritten"), "{}", broken.stdout);
    let json = admin
        .run(&[
            "audit",
            "verify",
            "--checkpoint",
            cp,
            "--public-key",
            &key,
            "-o",
            "json",
        ])
        .json();
    // The rewrite lies after the last checkpoint below event 3 (if any) and is named so.
    let vouched = seqs(&text)
        .into_iter()
        .filter(|s| *s < 3)
        .max()
        .unwrap_or(0);
    assert_eq!(
        json["first_broken_seq"].as_i64(),
        Some(vouched + 1),
        "{json}"
    );
    assert_eq!(json["ok"], false);

    // Forged: the attacker edits a line's hash to their chain's; the signature gives it away.
    let forged_file = evidence.join("forged.jsonl");
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let mut forged: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let at = forged["seq"].as_i64().unwrap();
    forged["hash"] = serde_json::Value::String(hash_at(&data.join("toolbelt.db"), at).await);
    let mut out = lines[..lines.len() - 1].join("\n");
    out.push('\n');
    out.push_str(&forged.to_string());
    std::fs::write(&forged_file, out).unwrap();
    let ff = forged_file.to_str().unwrap();
    let r = admin.run(&["audit", "verify", "--checkpoint", ff, "--public-key", &key]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("FORGED") && r.stdout.contains(&format!("line {}", lines.len())),
        "{}",
        r.stdout
    );
    // A key that is not one is a usage error; another real key refuses every line.
    let r = admin.run(&[
        "audit",
        "verify",
        "--checkpoint",
        cp,
        "--public-key",
        "nope",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let other = toolbelt_model::audit_checkpoint::AuditKey::generate().public_b64();
    let r = admin.run(&[
        "audit",
        "verify",
        "--checkpoint",
        cp,
        "--public-key",
        &other,
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("line 1"), "{}", r.stdout);
    let r = admin.run(&["audit", "verify", "--checkpoint", cp]);
    assert_eq!(r.code, 2, "--checkpoint needs --public-key: {}", r.stderr);
    server.stop();
}

fn seqs(text: &str) -> Vec<i64> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

async fn open(db: &std::path::Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap()
}

async fn hash_at(db: &std::path::Path, seq: i64) -> String {
    let mut c = open(db).await;
    let r = sqlx::query("SELECT hash FROM audit_events WHERE seq = ?")
        .bind(seq)
        .fetch_one(&mut c)
        .await
        .unwrap();
    r.get("hash")
}

async fn rewrite_consistently(db: &std::path::Path, at: i64) {
    let mut c = open(db).await;
    sqlx::raw_sql(AssertSqlSafe(
        "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete".to_string(),
    ))
    .execute(&mut c)
    .await
    .unwrap();
    let mut prev: String = sqlx::query("SELECT hash FROM audit_events WHERE seq = ?")
        .bind(at - 1)
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get("hash");
    let rows = sqlx::query("SELECT * FROM audit_events WHERE seq >= ? ORDER BY seq")
        .bind(at)
        .fetch_all(&mut c)
        .await
        .unwrap();
    for r in &rows {
        let seq: i64 = r.get("seq");
        let detail: String = if seq == at {
            "{}".into()
        } else {
            r.get("detail")
        };
        let s = |k: &str| -> String { r.get(k) };
        let o = |k: &str| -> Option<String> { r.get(k) };
        let (ak, action, tk, outcome) =
            (s("actor_kind"), s("action"), s("target_kind"), s("outcome"));
        let (actor, owner, target) = (o("actor_id"), o("owner_id"), o("target_id"));
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
        .hash(&prev);
        sqlx::query("UPDATE audit_events SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(&detail)
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(&mut c)
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = ? WHERE id = 1")
        .bind(&prev)
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}
