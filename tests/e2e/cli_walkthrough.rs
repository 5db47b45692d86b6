//! The foundation's "done when": a shell session with only the CLI creates a member, an
//! agent with a token, a toolbox with a join token, a catalog entry and a server request;
//! it all survives a restart; `audit verify` passes, and fails after a row is edited.

use sqlx::{AssertSqlSafe, Connection};
use toolbelt_e2e::{Cli, Server};

const ADMIN: &str = "tbu_e2e-bootstrap-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_session_survives_a_restart_and_the_audit_chain_catches_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::up(&data, &[("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN)]).await;
    let config = dir.path().join("cli.json");
    let admin = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: config.clone(),
    };

    let ann = admin
        .ok(&[
            "user",
            "create",
            "ann@example.com",
            "--role",
            "member",
            "-o",
            "json",
        ])
        .json();
    let ann_token = ann["token"]["token"].as_str().unwrap().to_string();
    assert!(ann_token.starts_with("tbu_"));
    let ann_cli = Cli {
        url: &server.url,
        token: Some(&ann_token),
        config: config.clone(),
    };

    let agent = ann_cli
        .ok(&["agent", "create", "support-bot", "-o", "json"])
        .json();
    assert!(
        agent["token"]["token"]
            .as_str()
            .unwrap()
            .starts_with("tba_")
    );
    ann_cli.ok(&["toolbox", "create", "edge"]);
    let join = ann_cli
        .ok(&["toolbox", "join-token", "edge", "-o", "json"])
        .json();
    assert!(join["token"].as_str().unwrap().starts_with("tbj_"));
    let human = admin.ok(&[
        "catalog",
        "create",
        "fixture",
        "--command",
        "fixture-mcp --stdio",
        "--transport",
        "stdio",
    ]);
    assert!(
        human.stdout.contains("fixture") && human.stdout.contains("package"),
        "{}",
        human.stdout
    );
    let srv = ann_cli
        .ok(&[
            "server",
            "create",
            "tools",
            "--catalog",
            "fixture",
            "--toolbox",
            "edge",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        (srv["desired"].as_str(), srv["status"].as_str()),
        (Some("running"), Some("pending_deploy"))
    );
    ann_cli.ok(&[
        "grant",
        "create",
        "--agent",
        "support-bot",
        "--server",
        "tools",
        "--toolbox",
        "edge",
    ]);
    ann_cli.ok(&[
        "grant",
        "create",
        "--agent",
        "support-bot",
        "--server",
        "tools",
        "--toolbox",
        "edge",
        "--tool",
        "echo",
        "--rule",
        "ask",
    ]);

    // Exit codes: 2 for usage, 1 for what the server refused.
    assert_eq!(
        ann_cli
            .run(&["grant", "create", "--agent", "support-bot"])
            .code,
        2
    );
    assert_eq!(ann_cli.run(&["agent", "frobnicate"]).code, 2);
    let refused = ann_cli.run(&[
        "catalog",
        "create",
        "nope",
        "--image",
        "x",
        "--transport",
        "stdio",
    ]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("only admins"), "{}", refused.stderr);
    let missing = ann_cli.run(&["agent", "get", "ghost"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
    // Roles: an admin changes Ann's and back; Ann may not; a role clap does not know is a
    // usage error.
    let promoted = admin
        .ok(&["user", "set-role", "ann@example.com", "admin", "-o", "json"])
        .json();
    assert_eq!(promoted["role"], "admin", "{promoted}");
    let back = admin.ok(&["user", "set-role", "ann@example.com", "member"]);
    assert!(back.stdout.contains("is now member"), "{}", back.stdout);
    let refused = ann_cli.run(&["user", "set-role", "ann@example.com", "admin"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("only admins"), "{}", refused.stderr);
    assert_eq!(
        admin
            .run(&["user", "set-role", "ann@example.com", "root"])
            .code,
        2
    );

    server.stop();
    let server = Server::up(&data, &[]).await;
    let admin = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: config.clone(),
    };
    let ann_cli = Cli {
        url: &server.url,
        token: Some(&ann_token),
        config: config.clone(),
    };
    let agents = ann_cli.ok(&["agent", "list", "-o", "json"]).json();
    assert_eq!(agents[0]["name"], "support-bot");
    let s = ann_cli
        .ok(&["server", "get", "tools", "--toolbox", "edge", "-o", "json"])
        .json();
    assert_eq!(s["catalog_slug"], "fixture");
    assert_eq!(
        ann_cli
            .ok(&["grant", "list", "--agent", "support-bot", "-o", "json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    ann_cli.ok(&[
        "grant",
        "delete",
        "--agent",
        "support-bot",
        "--server",
        "tools",
        "--toolbox",
        "edge",
        "--tool",
        "echo",
    ]);
    let verify = admin.ok(&["audit", "verify"]);
    assert!(verify.stdout.contains("intact"), "{}", verify.stdout);
    let listed = ann_cli
        .ok(&["audit", "list", "--agent", "support-bot", "-o", "json"])
        .json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "grant.create")
    );
    server.stop();

    // Edit one row by hand, as someone with the database file would.
    let db = data.join("toolbelt.db");
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe("DROP TRIGGER audit_events_no_update; UPDATE audit_events SET outcome = 'denied' WHERE seq = 5".to_string()))
        .execute(&mut c).await.unwrap();
    c.close().await.unwrap();

    let server = Server::up(&data, &[]).await;
    let admin = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config,
    };
    let broken = admin.run(&["audit", "verify"]);
    assert_eq!(broken.code, 1, "{}\n{}", broken.stdout, broken.stderr);
    assert!(
        broken.stdout.contains("BROKEN at event 5"),
        "{}",
        broken.stdout
    );
    let json = admin.run(&["audit", "verify", "-o", "json"]).json();
    assert_eq!(
        (json["ok"].as_bool(), json["first_broken_seq"].as_i64()),
        (Some(false), Some(5))
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_one_time_login_that_the_cli_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::up(&dir.path().join("data"), &[]).await;
    let out = server.log_text();
    assert!(out.contains("Toolbelt is up at http://127.0.0.1:"), "{out}");
    let login = out
        .split_whitespace()
        .find(|w| w.starts_with("tbl_"))
        .expect("a one-time login is printed")
        .to_string();
    let cli = Cli {
        url: &server.url,
        token: None,
        config: dir.path().join("cli.json"),
    };
    let r = cli.ok(&["login", "--login-token", &login]);
    assert!(r.stdout.contains("admin@toolbelt.local"), "{}", r.stdout);
    // The saved login is used from now on, and the login token is spent.
    let me = cli.ok(&["toolbox", "list", "-o", "json"]).json();
    assert_eq!(me[0]["name"], "local");
    assert_eq!(cli.run(&["login", "--login-token", &login]).code, 1);
    let saved = std::fs::metadata(dir.path().join("cli.json")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(saved.permissions().mode() & 0o777, 0o600);
    server.stop();
}
