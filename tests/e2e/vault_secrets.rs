//! Secrets through the real binary: written from a file (never argv), listed as metadata
//! only, referenced by a server and delivered to it at deploy; references to missing or
//! another member's secrets refused; the key-encryption key rotated while the service runs,
//! the old key deleted, and the server redeployed with its secret under the new key.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::eventually::{WAIT, eventually, when};
use toolbelt_e2e::sdk::Sdk;
use toolbelt_e2e::{Cli, Server};
use toolbelt_testkit::fixture::fixture_bin;

const ADMIN: &str = "tbu_vault-secrets-admin-tok-0";

/// Waits until `name` runs healthy at `min_generation` or later; its JSON.
async fn wait_running(cli: &Cli<'_>, name: &str, min_generation: i64) -> Value {
    let what = format!("{name} running at generation {min_generation}");
    cli.until(&["server", "get", name, "-o", "json"], &what, |v| {
        v["status"] == "running"
            && v["health"] == "ok"
            && v["generation"].as_i64() >= Some(min_generation)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_are_sealed_referenced_delivered_and_survive_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::up(
        &data,
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_RUNTIME", "process"),
            ("TOOLBELT_HEARTBEAT_MS", "300"),
            // Debug logs too must never hold a secret value (checked at the end).
            (
                "TOOLBELT_LOG",
                "debug,hyper=info,h2=info,reqwest=info,sqlx=info",
            ),
        ],
    )
    .await;
    let admin = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: dir.path().join("a.json"),
    };
    let member = |email: &str| {
        admin
            .ok(&["user", "create", email, "--role", "member", "-o", "json"])
            .json()["token"]["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ann_t, bob_t) = (member("ann@example.com"), member("bob@example.com"));
    let ann = Cli {
        url: &server.url,
        token: Some(&ann_t),
        config: dir.path().join("ann.json"),
    };
    let bob = Cli {
        url: &server.url,
        token: Some(&bob_t),
        config: dir.path().join("bob.json"),
    };

    // A catalog entry that needs an API key, delivered as an environment variable.
    let entry = dir.path().join("entry.json");
    std::fs::write(&entry, json!({
        "slug": "keyed", "source": { "type": "package", "manager": "binary", "package": "fixture-mcp", "command": [fixture_bin().display().to_string()] },
        "transport": "stdio",
        "secrets": [{ "name": "API_KEY", "delivery": "env" }],
    }).to_string()).unwrap();
    admin.ok(&[
        "catalog",
        "create",
        "keyed",
        "--file",
        entry.to_str().unwrap(),
    ]);

    let value = "sk-live-0123456789abcdef-CANARY";
    let f = dir.path().join("value");
    std::fs::write(&f, format!("{value}\n")).unwrap();
    let r = ann.run(&["secret", "create", "api-key"]);
    assert_eq!(r.code, 2, "no value source is a usage error: {}", r.stderr);
    let created = ann
        .ok(&[
            "secret",
            "create",
            "api-key",
            "--from-file",
            f.to_str().unwrap(),
            "--kind",
            "api_key",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        (created["version"].as_i64(), created["kind"].as_str()),
        (Some(1), Some("api_key")),
        "{created}"
    );
    assert!(
        !created.to_string().contains(value),
        "the value came back: {created}"
    );
    let r = ann.run(&[
        "secret",
        "create",
        "api-key",
        "--from-file",
        f.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "a second create is a conflict");
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    bob.ok(&[
        "secret",
        "create",
        "bobs-key",
        "--from-file",
        f.to_str().unwrap(),
    ]);
    let listed = ann.ok(&["secret", "list", "-o", "json"]).json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "members see only their own: {listed}"
    );
    assert!(!listed.to_string().contains(value));

    // References: a missing secret, or bob's, are refused at create, naming the field.
    ann.ok(&["toolbox", "create", "box"]);
    for bad in ["nope", "bobs-key"] {
        let r = ann.run(&[
            "server",
            "create",
            "svc",
            "--catalog",
            "keyed",
            "--toolbox",
            "box",
            "--secret",
            &format!("API_KEY={bad}"),
        ]);
        assert_eq!(r.code, 1, "{bad}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("secrets.API_KEY"), "{bad}: {}", r.stderr);
    }
    // Shared secrets for shared servers (admins); a member's server may not use them.
    admin.ok(&[
        "secret",
        "create",
        "shared-key",
        "--shared",
        "--from-file",
        f.to_str().unwrap(),
    ]);
    admin.ok(&[
        "server",
        "create",
        "svc",
        "--catalog",
        "keyed",
        "--secret",
        "API_KEY=shared-key",
    ]);
    let v = wait_running(&admin, "svc", 0).await;
    let agent = admin.ok(&["agent", "create", "probe", "-o", "json"]).json()["token"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    admin.ok(&["grant", "create", "--agent", "probe", "--server", "svc"]);
    let mut sdk = Sdk::connect(&format!("{}/mcp", server.url), &agent, "legacy").await;
    let seen = sdk.call("svc__env", json!({ "name": "API_KEY" })).await;
    assert_eq!(
        seen["structured"],
        json!({ "set": true, "len": value.len() }),
        "{seen}"
    );

    // Rotation while serving: a new current key, every data key re-wrapped, then the old
    // key deleted; the server's secret still opens for a redeploy.
    let keys = admin.ok(&["vault", "keys", "-o", "json"]).json();
    let old = keys[0]["id"].as_str().unwrap().to_string();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    let r = ann.run(&["vault", "rotate"]);
    assert_eq!(r.code, 1, "members do not rotate");
    let rot = admin.ok(&["vault", "rotate", "-o", "json"]).json();
    assert_ne!(rot["kek_id"], old.as_str(), "{rot}");
    assert_eq!(
        (rot["remaining"].as_i64(), rot["rewrapped"].as_i64()),
        (Some(0), Some(3)),
        "{rot}"
    );
    let r = admin.run(&["vault", "delete-key", rot["kek_id"].as_str().unwrap()]);
    assert_eq!(r.code, 1, "the current key is not deletable");
    admin.ok(&["vault", "delete-key", &old]);
    let key_file = std::fs::read_to_string(data.join("vault.key")).unwrap();
    assert!(
        !key_file.contains(&old[4..]),
        "the old key is gone from the key file"
    );
    admin.ok(&["server", "restart", "svc"]);
    wait_running(&admin, "svc", v["generation"].as_i64().unwrap() + 1).await;
    // A call racing the swap of instances may see the old one exit; the next one reaches
    // the new instance.
    let seen = eventually("the secret under the new key", WAIT, async || {
        // Never a hang: a call the swap strands must still be answered (and if not, the
        // server's log says where it stuck).
        let r = match tokio::time::timeout(
            Duration::from_secs(60),
            sdk.call("svc__env", json!({ "name": "API_KEY" })),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                let log = server.log_text();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!("a call hung across the restart; log:\n{}", tail.join("\n"));
            }
        };
        when(r.clone(), r["ok"] == true)
    })
    .await;
    assert_eq!(
        seen["structured"],
        json!({ "set": true, "len": value.len() }),
        "after rotation: {seen}"
    );

    // An update is a new version; delete removes it; OAuth secrets are not writable here.
    std::fs::write(&f, "another").unwrap();
    let up = ann
        .ok(&[
            "secret",
            "update",
            "api-key",
            "--from-file",
            f.to_str().unwrap(),
            "-o",
            "json",
        ])
        .json();
    assert_eq!(up["version"], 2, "{up}");
    let r = ann.run(&[
        "secret",
        "create",
        "tok",
        "--kind",
        "oauth_token",
        "--from-file",
        f.to_str().unwrap(),
    ]);
    assert_eq!(
        r.code, 2,
        "not a kind a user writes (clap refuses it): {}",
        r.stderr
    );
    ann.ok(&["secret", "delete", "api-key"]);
    assert!(
        ann.ok(&["secret", "list", "-o", "json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Values never reach the log, the audit log, or the database in clear.
    assert!(!server.log_text().contains(value));
    let audit = admin.ok(&["audit", "list", "-o", "json"]).stdout;
    assert!(!audit.contains(value));
    assert!(
        audit.contains("secret.decrypt") && audit.contains("vault.rotate"),
        "decrypts and the rotation are audited"
    );
    let mut db = std::fs::read(data.join("toolbelt.db")).unwrap();
    db.extend(std::fs::read(data.join("toolbelt.db-wal")).unwrap_or_default());
    assert!(
        !db.windows(value.len()).any(|w| w == value.as_bytes()),
        "a value is in the database in clear"
    );
    sdk.quit().await;
}
