//! The gateway in the real binary: `toolbelt stdio` as a stdio MCP server for the same
//! agent, `agent connect` configurations, and durable audit across `kill -9`.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use toolbelt_e2e::eventually::{WAIT, eventually, when};
use toolbelt_e2e::sdk::Sdk;
use toolbelt_e2e::{Cli, Server};
use toolbelt_testkit::fixture::fixture_bin;
use toolbelt_testkit::proc::toolbelt_bin;

const ADMIN: &str = "tbu_gateway-process-admin-00";

async fn up_with_fixture(data: &std::path::Path) -> (Server, String) {
    let server = Server::up(
        data,
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_HEARTBEAT_MS", "300"),
            ("TOOLBELT_RUNTIME", "process"),
        ],
    )
    .await;
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
    let token = cli.ok(&["agent", "create", "bot", "-o", "json"]).json()["token"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    cli.ok(&["grant", "create", "--agent", "bot", "--server", "fx"]);
    wait_running(&cli, &server).await;
    (server, token)
}

/// Waits until `fx` runs healthy; on timeout shows the server's log (newest first).
async fn wait_running(cli: &Cli<'_>, server: &Server) {
    eventually("fx running", WAIT, async || {
        let r = cli.run(&["server", "get", "fx", "-o", "json"]);
        let ok = r.code == 0
            && serde_json::from_str::<Value>(&r.stdout)
                .is_ok_and(|v| v["status"] == "running" && v["health"] == "ok");
        let log = server.log_text();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let seen = format!(
            "{}{}\nserver log (newest first):\n{}",
            r.stdout,
            r.stderr,
            tail.join("\n")
        );
        when(seen, ok)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn toolbelt_stdio_serves_the_agent_to_stdio_clients_and_connect_prints_configs() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = up_with_fixture(&dir.path().join("data")).await;
    let bin = toolbelt_bin().display().to_string();
    let mut sdk = Sdk::connect(
        &format!("stdio:{bin}"),
        &format!("{} {token}", server.url),
        "legacy",
    )
    .await;
    assert!(sdk.tool_names().await.contains(&"fx__echo".to_string()));
    assert_eq!(
        sdk.call("fx__echo", json!({ "text": "through stdio" }))
            .await["text"],
        "through stdio"
    );
    let p = sdk.send(json!({ "op": "call", "name": "fx__progress", "args": { "steps": 2, "delay_ms": 5 }, "progress": true })).await;
    assert_eq!(p["progress"].as_array().unwrap().len(), 2, "{p}");
    sdk.quit().await;

    let cli = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: dir.path().join("cli.json"),
    };
    for client in ["claude", "vscode", "cursor"] {
        let v = cli
            .ok(&["agent", "connect", "bot", "--client", client, "-o", "json"])
            .json();
        let text = v.to_string();
        let new_token = text
            .split("tba_")
            .nth(1)
            .map(|t| format!("tba_{}", &t[..48]))
            .expect("a fresh token in the config");
        assert_ne!(new_token, token, "connect issues a fresh token");
        assert!(
            text.contains(&format!("{}/mcp", server.url)) && text.contains("\"stdio\""),
            "{client}: {text}"
        );
        let tokens = cli
            .ok(&["agent", "token", "list", "bot", "-o", "json"])
            .json();
        assert!(
            tokens.as_array().unwrap().iter().any(|t| t["label"]
                .as_str()
                .unwrap()
                .starts_with(if client == "claude" { "claude" } else { client })),
            "labelled for {client}"
        );
        // The OAuth form: just the URL, and no token issued.
        let o = cli
            .ok(&[
                "agent", "connect", "bot", "--client", client, "--oauth", "-o", "json",
            ])
            .json();
        let text = o["oauth"].to_string();
        assert!(
            text.contains(&format!("{}/mcp", server.url)) && !o.to_string().contains("tba_"),
            "{client}: {o}"
        );
        let after = cli
            .ok(&["agent", "token", "list", "bot", "-o", "json"])
            .json();
        assert_eq!(after, tokens, "--oauth issues no token");
    }
    server.stop();
}

fn args_hash(text: &str) -> String {
    hex::encode(Sha256::digest(
        toolbelt_model::canonical::to_string(&json!({ "text": text })).as_bytes(),
    ))
}

/// Calls in the stateless 2026-07-28 mode (no session to lose when the server dies);
/// remembers every text whose result came back.
async fn load(url: String, token: String, worker: usize, seen: Arc<Mutex<HashSet<String>>>) {
    let http = toolbelt_net::http::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": { "name": "load", "version": "1" } });
    for i in 0.. {
        let text = format!("w{worker}-{i}-{}", rand_suffix());
        let body = json!({ "jsonrpc": "2.0", "id": i, "method": "tools/call", "params": { "name": "fx__echo", "arguments": { "text": text }, "_meta": meta } });
        let res = http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "fx__echo")
            .body(body.to_string())
            .send()
            .await;
        let Ok(res) = res else { return };
        let Ok(text_body) = res.text().await else {
            return;
        };
        let v: Value = serde_json::from_str(
            text_body
                .lines()
                .find(|l| l.starts_with('{'))
                .or_else(|| text_body.lines().find_map(|l| l.strip_prefix("data: ")))
                .unwrap_or("null"),
        )
        .unwrap_or(Value::Null);
        if v["result"]["content"][0]["text"] == text.as_str() {
            seen.lock().unwrap().insert(text);
        }
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_result_a_client_saw_has_its_audit_event_across_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, token) = up_with_fixture(&data).await;
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    for round in 0..4 {
        let url = format!("{}/mcp", server.url);
        let workers: Vec<_> = (0..8)
            .map(|w| {
                tokio::spawn(load(
                    url.clone(),
                    token.clone(),
                    round * 100 + w,
                    seen.clone(),
                ))
            })
            .collect();
        // Kill at a random moment under load.
        let ms = 300 + rand_suffix() % 1200;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let _ = server.child.kill();
        let _ = server.child.wait();
        for w in workers {
            let _ = tokio::time::timeout(Duration::from_secs(15), w).await;
        }
        drop(server);
        server = Server::up(
            &data,
            &[
                ("TOOLBELT_HEARTBEAT_MS", "300"),
                ("TOOLBELT_RUNTIME", "process"),
            ],
        )
        .await;
        let cli = Cli {
            url: &server.url,
            token: Some(ADMIN),
            config: dir.path().join("cli.json"),
        };
        wait_running(&cli, &server).await;
    }
    let cli = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: dir.path().join("cli.json"),
    };
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 50, "the load made calls: {}", seen.len());
    eprintln!("{} results seen by clients across 4 SIGKILLs", seen.len());
    let events = cli.ok(&["audit", "export"]);
    let audited: HashSet<String> = events
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == "tool.call" && e["outcome"] == "success")
        .filter_map(|e| {
            serde_json::from_str::<Value>(e["detail"].as_str()?).ok()?["arguments_sha256"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let missing: Vec<&String> = seen
        .iter()
        .filter(|t| !audited.contains(&args_hash(t)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} results seen by clients have no audit event: {:?}",
        missing.len(),
        seen.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(cli.ok(&["audit", "verify"]).stdout.contains("intact"));
    server.stop();
}
