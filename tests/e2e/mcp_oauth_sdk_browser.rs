//! The MCP authorization dance as a desktop client does it, against the real binary: the
//! official Python SDK's `OAuthClientProvider` (`python/oauth_sdk_driver.py`) discovers
//! Toolbelt from the gateway's 401, registers itself, sends the browser (headless
//! Chromium, signed in to the dashboard) to the authorization endpoint with PKCE; the user
//! picks one of their agents on the consent page and allows; the SDK gets the answer on
//! its loopback redirect URI (checking `state` and the RFC 9207 `iss`), exchanges the code,
//! lists and calls tools as that agent, refreshes its token by itself, and keeps working.
//! The audit shows the agent and the client. The same with a client metadata document
//! (served by the client over HTTPS with a test CA) instead of registration.

use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use toolbelt_e2e::browser::Browser;
use toolbelt_e2e::eventually::{WAIT, eventually, when};
use toolbelt_e2e::sdk::python;
use toolbelt_e2e::world::Caller;
use toolbelt_e2e::{Cli, Server};
use toolbelt_testkit::fixture::fixture_bin;

const ADMIN: &str = "tbu_mcp-oauth-sdk-admin-0000";

/// `toolbelt up` with the fixture server; agent `bot` granted it, agent `idle` nothing.
async fn up(data: &std::path::Path, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
        ("TOOLBELT_HEARTBEAT_MS", "300"),
        ("TOOLBELT_RUNTIME", "process"),
    ];
    env.extend_from_slice(extra);
    let server = Server::up(data, &env).await;
    let cli = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: data.with_extension("cli.json"),
    };
    cli.ok(&[
        "catalog",
        "create",
        "fx",
        "--command",
        &fixture_bin().display().to_string(),
        "--transport",
        "stdio",
    ]);
    cli.ok(&["server", "create", "fx", "--catalog", "fx"]);
    cli.ok(&["agent", "create", "bot"]);
    cli.ok(&["agent", "create", "idle"]);
    cli.ok(&["grant", "create", "--agent", "bot", "--server", "fx"]);
    eventually("fx running", WAIT, async || {
        let r = cli.run(&["server", "get", "fx", "-o", "json"]);
        let ok = r.code == 0
            && serde_json::from_str::<Value>(&r.stdout)
                .is_ok_and(|v| v["status"] == "running" && v["health"] == "ok");
        when(format!("{}{}", r.stdout, r.stderr), ok)
    })
    .await;
    server
}

/// The SDK driver: its JSON lines, one at a time.
struct Driver {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Driver {
    /// `cimd`: the client's certificate and key, to serve its own metadata document.
    fn start(mcp_url: &str, tool: &str, args: Value, cimd: Option<(&Path, &Path)>) -> Driver {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/oauth_sdk_driver.py");
        let mut cmd = tokio::process::Command::new(python());
        cmd.arg(script).args([mcp_url, tool, &args.to_string()]);
        if let Some((cert, key)) = cimd {
            cmd.arg(format!("cimd:{}:{}", cert.display(), key.display()));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Driver { child, lines }
    }

    /// The next line, which must carry `key` (an `error` line fails the test with it).
    async fn next(&mut self, key: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(120), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the SDK says {key} in time"))
            .unwrap()
            .unwrap_or_else(|| panic!("the SDK ended before {key}"));
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get(key).is_some(), "wanted {key}, the SDK said {v}");
        v[key].clone()
    }

    async fn tell(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }
}

/// The user's part: the browser (signed in) follows the SDK's authorization URL, sees the
/// client named `client` on the consent page, picks `agent_id` and allows; the browser
/// lands on the SDK's loopback redirect URI.
async fn consent(b: &Browser, sdk: &mut Driver, base: &str, client: &str, agent_id: &str) {
    let authorize = sdk.next("authorize").await.as_str().unwrap().to_string();
    assert!(
        authorize.starts_with(&format!("{base}/oauth2/authorize?")),
        "{authorize}"
    );
    for p in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "resource=",
    ] {
        assert!(authorize.contains(p), "{p}: {authorize}");
    }
    b.goto(&authorize).await;
    b.until_text("#consent-client", client).await;
    b.checked().await;
    assert!(
        b.has(&format!("#tools-{agent_id}")).await,
        "the agent's tools shown"
    );
    b.click(&format!("#agent-{agent_id}")).await;
    b.follow("#consent-approve").await;
    b.until("#callback-done").await;
    assert!(
        b.url().await.starts_with("http://127.0.0.1:"),
        "{}",
        b.url().await
    );
}

/// The `tool.call` events of `bot`: each as bot, via OAuth, through `client` (`client_id`).
async fn calls_audited(admin: &Caller, bot_id: &str, client: &str, client_id: &str, n: usize) {
    let audit = admin
        .rest
        .get("/api/v1/audit?agent=bot&action=tool.call&limit=10")
        .await;
    let calls = audit["items"].as_array().unwrap();
    assert_eq!(calls.len(), n, "{audit}");
    for c in calls {
        assert_eq!(c["actor_kind"], "agent", "{c}");
        assert_eq!(c["actor_id"], bot_id, "{c}");
        let d = detail(c);
        assert_eq!(d["via"], "oauth", "{c}");
        let via = d["oauth_client"].as_str().unwrap();
        assert!(via.contains(client) && via.contains(client_id), "{c}");
    }
    let consent = admin
        .rest
        .get(&format!(
            "/api/v1/audit?action=mcp_client.consent&target={}",
            url_encode(client_id)
        ))
        .await;
    assert_eq!(detail(&consent["items"][0])["agent"], bot_id, "{consent}");
}

/// An audit event's detail (the API gives it as JSON text).
fn detail(e: &Value) -> Value {
    serde_json::from_str(e["detail"].as_str().unwrap_or("null")).unwrap_or_default()
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn bot_id(admin: &Caller) -> String {
    admin.rest.get("/api/v1/agents/bot").await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_official_sdk_signs_in_through_the_consent_page_and_refreshes_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(&dir.path().join("data"), &[]).await;
    let admin = Caller::new(&server.url, ADMIN);
    let bot_id = bot_id(&admin).await;
    let b = Browser::open(&server.url).await;
    b.sign_in(&admin).await;

    let mut sdk = Driver::start(
        &format!("{}/mcp", server.url),
        "fx__echo",
        json!({ "text": "as bot, via OAuth" }),
        None,
    );
    // The SDK registered itself and sends the user to authorize (PKCE S256, resource).
    consent(&b, &mut sdk, &server.url, "SDK OAuth e2e", &bot_id).await;

    let called = sdk.next("called").await;
    assert_eq!(called["is_error"], false, "{called}");
    assert_eq!(called["text"], "as bot, via OAuth", "{called}");
    sdk.tell("refresh").await;
    let done = sdk.next("done").await;
    let tools: Vec<&str> = done["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"fx__echo"), "bot's tools: {tools:?}");
    assert_eq!(done["tools_after_refresh"], done["tools"], "{done}");
    assert_eq!(done["call_after_refresh"]["text"], "as bot, via OAuth");
    let client_id = done["client_id"].as_str().unwrap().to_string();
    assert!(client_id.starts_with("mcl_"), "{done}");
    for (before, after) in [
        ("first_access", "second_access"),
        ("first_refresh", "second_refresh"),
    ] {
        assert!(done[before].as_str().unwrap().len() > 10, "{done}");
        assert_ne!(done[before], done[after], "the SDK refreshed: {done}");
    }
    assert!(done["first_access"].as_str().unwrap().starts_with("tbo_"));
    calls_audited(&admin, &bot_id, "SDK OAuth e2e", &client_id, 2).await;
    b.close().await;
    let _ = sdk.child.wait().await;
    server.stop();
}

/// The SDK with a client metadata document instead of registration: the document is served
/// over HTTPS on loopback with a test CA, which only `TOOLBELT_CA_FILE` and an SSRF
/// allow-list entry let Toolbelt fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_official_sdk_names_itself_by_a_client_metadata_document() {
    let dir = tempfile::tempdir().unwrap();
    let ca = toolbelt_e2e::tls::TestCa::new("cimd");
    let ca_file = ca.ca.display().to_string();
    let server = up(
        &dir.path().join("data"),
        &[
            ("TOOLBELT_CA_FILE", &ca_file),
            ("TOOLBELT_SSRF_ALLOW", "127.0.0.1/32"),
        ],
    )
    .await;
    let admin = Caller::new(&server.url, ADMIN);
    let bot_id = bot_id(&admin).await;
    let b = Browser::open(&server.url).await;
    b.sign_in(&admin).await;
    let mut sdk = Driver::start(
        &format!("{}/mcp", server.url),
        "fx__echo",
        json!({ "text": "named by a document" }),
        Some((&ca.cert, &ca.key)),
    );
    consent(&b, &mut sdk, &server.url, "SDK CIMD e2e", &bot_id).await;
    let called = sdk.next("called").await;
    assert_eq!(called["text"], "named by a document", "{called}");
    sdk.tell("done").await;
    let done = sdk.next("done").await;
    let client_id = done["client_id"].as_str().unwrap().to_string();
    assert!(
        client_id.starts_with("https://127.0.0.1:") && client_id.ends_with("/client.json"),
        "{done}"
    );
    assert!(done["document_fetches"].as_u64().unwrap() >= 1, "{done}");
    calls_audited(&admin, &bot_id, "SDK CIMD e2e", &client_id, 1).await;
    b.close().await;
    let _ = sdk.child.wait().await;
    server.stop();
}
