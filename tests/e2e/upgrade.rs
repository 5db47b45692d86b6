//! Upgrades: a data dir and a joined DTMA made by an earlier release keep working with this
//! binary — the migrations apply, both toolboxes are joined and active, the servers run
//! again and answer the old agent token through the gateway, approved pins stay approved
//! (nothing held), the vault opens the old secret, the audit chain verifies.
//!
//! The fixtures are made by `scripts/make-upgrade-fixture.sh TAG` and described in
//! `tests/fixtures/upgrade/README.md`; each release adds its fixture and one line here.

use serde_json::{Value, json};
use sqlx::Connection;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use toolbelt_e2e::eventually::{WAIT, eventually, when};
use toolbelt_e2e::rest::Rest;
use toolbelt_e2e::sdk::Sdk;
use toolbelt_e2e::{DtmaProc, Server};
use toolbelt_testkit::fixture::fixture_bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_v0_1_0_data_dir_and_dtma_keep_working() {
    upgrade_from("v0.1.0").await;
}

async fn upgrade_from(release: &str) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/upgrade")
        .join(release);
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture.join("manifest.json"))
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.display())),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_private(&fixture, dir.path());
    let up_dir = dir.path().join(m["data_dirs"]["up"].as_str().unwrap());
    let dtma_dir = dir.path().join(m["data_dirs"]["dtma"].as_str().unwrap());
    // The fixture's catalog entry runs `fixture-mcp` from PATH: this build's.
    let path = format!(
        "{}:{}",
        fixture_bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("TOOLBELT_RUNTIME", "process"),
        // The interval the fixture's DTMA was told at join (it keeps it in its credential).
        ("TOOLBELT_HEARTBEAT_MS", "500"),
        ("PATH", path.as_str()),
    ];
    // Ready means the database answers and every migration of this build is applied.
    let cp = Server::up(&up_dir, &env).await;
    let applied = migrations_applied(&up_dir.join("toolbelt.db")).await;
    let shipped = std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/store/migrations/sqlite"),
    )
    .unwrap()
    .count();
    assert_eq!(applied, shipped, "every migration of this build applied");
    let _dtma = DtmaProc::start(&cp.url, None, &dtma_dir, "process", &env[2..]).await;

    let admin = Rest::new(&cp.url, m["admin_token"].as_str().unwrap());
    for t in m["toolboxes"].as_array().unwrap() {
        let path = format!("/api/v1/toolboxes/{}", t.as_str().unwrap());
        eventually(&format!("toolbox {t} active"), WAIT, async || {
            let v = admin.get(&path).await;
            when(v.clone(), v["status"] == "active")
        })
        .await;
    }
    for s in m["servers"].as_array().unwrap() {
        let (name, toolbox) = (s["name"].as_str().unwrap(), s["toolbox"].as_str().unwrap());
        let path = format!("/api/v1/servers/{name}?toolbox={toolbox}");
        eventually(&format!("{toolbox}/{name} running"), WAIT, async || {
            let v = admin.get(&path).await;
            when(v.clone(), v["status"] == "running" && v["health"] == "ok")
        })
        .await;
    }

    // The old agent token sees every tool it saw (fixture-mcp may have gained tools since),
    // under the approved definitions.
    let token = m["agent"]["token"].as_str().unwrap();
    let mut sdk = Sdk::connect(&format!("{}/mcp", cp.url), token, "legacy").await;
    let want: Vec<&str> = m["agent_tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let listed = eventually("the agent's tools after the upgrade", WAIT, async || {
        let r = sdk.send(json!({ "op": "list_tools" })).await;
        let names: Vec<&str> = r["tools"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default();
        let missing: Vec<&&str> = want.iter().filter(|w| !names.contains(w)).collect();
        if missing.is_empty() {
            return Ok(r.clone());
        }
        let held = admin.get("/api/v1/tools/changes").await;
        Err((format!("missing {missing:?}; held changes:"), held))
    })
    .await;
    for s in m["approved_changes"].as_array().unwrap() {
        let name = format!(
            "{}__{}",
            s["server"].as_str().unwrap(),
            s["tool"].as_str().unwrap()
        );
        let tool = listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name.as_str())
            .unwrap();
        assert_eq!(
            tool["description"], m["echo_description"],
            "{name} under its approved definition"
        );
    }
    // Pins made under the old hashing (before icons and `_meta` counted) are re-pinned
    // without a hold; the only held changes are tools fixture-mcp gained since that
    // release, which are new to these servers and wait for an admin like any tool that
    // appears after a server's first discovery.
    let old_tools: Vec<&str> = want.iter().filter_map(|n| n.split("__").nth(1)).collect();
    let pending = admin.get("/api/v1/tools/changes").await;
    for c in pending.as_array().unwrap() {
        let tool = c["tool"].as_str().unwrap();
        assert!(
            !old_tools.contains(&tool) && c["old_hash"].is_null(),
            "a tool the old release pinned is held after the upgrade: {c}"
        );
    }
    for s in m["servers"].as_array().unwrap() {
        let name = format!("{}__echo", s["name"].as_str().unwrap());
        let r = sdk
            .call(&name, json!({ "text": "after the upgrade" }))
            .await;
        assert_eq!(r["text"], "after the upgrade", "{name}: {r}");
    }
    // The vault opens the secret the old release sealed (delivered to `tools` at deploy).
    let r = sdk.call("tools__env", json!({ "name": "API_KEY" })).await;
    assert_eq!(
        r["structured"],
        json!({ "set": true, "len": m["secret"]["length"] }),
        "{r}"
    );
    sdk.quit().await;

    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["checked"].as_i64() > m["audit_events"].as_i64(),
        "the old events and the new ones: {v}"
    );
    cp.stop();
}

/// The fixture copied as the release left it: directories 0700, files 0600 (git keeps
/// neither, and the key files are refused when others may read them).
fn copy_private(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
            copy_private(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

async fn migrations_applied(db: &Path) -> usize {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    n as usize
}
