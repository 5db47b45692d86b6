//! Outbound HTTPS (issue 11, item 1): the OAuth provider and the remote MCP server served
//! over TLS with certificates of a CA the test makes, which Toolbelt trusts only through
//! `TOOLBELT_CA_FILE`; a server whose certificate another CA signed is refused with the
//! cause named; plain `http://` off loopback is refused before anything is sent.

use crate::oauth_world::*;
use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::oauth::{self, CLIENT_ID};
use toolbelt_e2e::tls::TestCa;
use toolbelt_e2e::{Cli, Server};

/// The server's discovery error once it names `what`.
async fn discovery_error(url: &str, token: &str, server: &str, what: &str) -> String {
    let mut last = Value::Null;
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, s) = api(
                url,
                token,
                "GET",
                &format!("/api/v1/servers/{server}"),
                None,
            )
            .await;
            if let Some(e) = s["discovery"]["error"].as_str()
                && e.contains(what)
            {
                return e.to_string();
            }
            last = s;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no discovery error naming {what:?}: {last}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_provider_and_remote_server_work_through_the_ca_file_and_another_ca_is_named() {
    let w = world_with(60, Some(TestCa::new("trusted"))).await;
    assert!(w.auth.url.starts_with("https://"), "{}", w.auth.url);
    assert!(w.mcp.url.starts_with("https://"), "{}", w.mcp.url);

    // Discovery (at `provider add`), the authorization code exchange, then a call to the
    // remote server with alice's token: all over HTTPS.
    let con = w.connect().await;
    w.cli(&w.alice_token).ok(&[
        "grant",
        "create",
        "--agent",
        "bot",
        "--connection",
        &con,
        "--server",
        "notes",
    ]);
    let mut sdk = w.agent().await;
    let me = whoami(&sdk.call("notes__whoami", json!({})).await);
    assert_eq!(me["user"], "alice", "{me}");
    sdk.quit().await;
    // Revocation goes out over HTTPS as well.
    let r = w
        .cli(&w.alice_token)
        .ok(&["connection", "revoke", &con, "-o", "json"])
        .json();
    assert_eq!(r["provider_revoked"], true, "{r}");

    // A provider and a remote server whose certificate another CA signed: the error says why.
    let other = TestCa::new("other");
    let rogue = oauth::authorization_server_with(
        &format!("{}/oauth/rogue/callback", w.server.url),
        60,
        Some(&other),
    )
    .await;
    let r = w.cli("admin").run(&[
        "provider",
        "add",
        "rogue",
        "--kind",
        "custom",
        "--issuer",
        &rogue.url,
        "--client-id",
        CLIENT_ID,
        "--from-file",
        w.dir.path().join("client-secret").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("UnknownIssuer"), "{}", r.stderr);
    let (s, v) = api(
        &w.server.url,
        ADMIN,
        "POST",
        "/api/v1/catalog",
        Some(json!({
            "slug": "rogue", "source": { "type": "remote", "url": format!("{}/mcp", rogue.url) },
            "transport": "streamable_http",
        })),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    w.cli(&w.alice_token).ok(&[
        "server",
        "create",
        "rogue",
        "--catalog",
        "rogue",
        "--toolbox",
        "mine",
    ]);
    let e = discovery_error(&w.server.url, &w.alice_token, "rogue", "UnknownIssuer").await;
    assert!(e.contains("certificate"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_http_to_a_provider_or_remote_server_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::up(
        &dir.path().join("data"),
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_RUNTIME", "process"),
        ],
    )
    .await;
    let admin = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: dir.path().join("cli.json"),
    };
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    // 192.0.2.0/24 is TEST-NET-1: the SSRF guard lets it through, nothing answers there.
    // The refusal comes before any connection (discovery would wait out its timeout).
    for args in [
        &["--issuer", "http://192.0.2.1:9"][..],
        &[
            "--authorization-endpoint",
            "https://192.0.2.1/authorize",
            "--token-endpoint",
            "http://192.0.2.1/token",
        ][..],
    ] {
        let mut cmd = vec!["provider", "add", "plain", "--kind", "custom"];
        cmd.extend_from_slice(args);
        cmd.extend_from_slice(&["--client-id", "x", "--from-file", secret.to_str().unwrap()]);
        let r = admin.run(&cmd);
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("refused plain http:// to 192.0.2.1")
                && r.stderr.contains("TOOLBELT_ALLOW_PLAIN_HTTP"),
            "{}",
            r.stderr
        );
    }

    let (s, v) = api(
        &server.url,
        ADMIN,
        "POST",
        "/api/v1/catalog",
        Some(json!({
            "slug": "far", "source": { "type": "remote", "url": "http://192.0.2.1:9/mcp" },
            "transport": "streamable_http",
        })),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    admin.ok(&["toolbox", "create", "far", "--kind", "remote"]);
    admin.ok(&[
        "server",
        "create",
        "far",
        "--catalog",
        "far",
        "--toolbox",
        "far",
    ]);
    let e = discovery_error(&server.url, ADMIN, "far", "refused plain http://").await;
    assert!(e.contains("TOOLBELT_ALLOW_PLAIN_HTTP"), "{e}");
}
