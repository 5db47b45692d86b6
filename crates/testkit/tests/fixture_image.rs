//! The `FROM scratch` fixture image. Needs Docker: without it this test fails, it does
//! not skip.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use toolbelt_testkit::fixture::fixture_image;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_image_builds_and_runs_as_root_request() {
    // The first run compiles the static binary too.
    let image = tokio::time::timeout(Duration::from_secs(1800), fixture_image())
        .await
        .expect("the fixture image within 30 min");

    let mut child = tokio::process::Command::new("docker")
        .args(["run", "--rm", "-i", "--network", "none", &image])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run docker");
    let mut stdin = child.stdin.take().expect("stdin");
    let requests = [
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": { "name": "image-test", "version": "0" } } }),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": { "name": "whoami", "arguments": {} } }),
    ];
    for r in requests {
        stdin
            .write_all(format!("{r}\n").as_bytes())
            .await
            .expect("write");
    }
    stdin.flush().await.expect("flush");

    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let whoami: Value = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("a reply within 60 s")
            .expect("read")
            .expect("the container closed stdout before answering whoami");
        let msg: Value = serde_json::from_str(&line).expect("JSON on stdout");
        if msg["id"] == 2 {
            break msg;
        }
    };
    let who = &whoami["result"]["structuredContent"];
    assert_eq!(who["uid"], 0, "{whoami}");
    assert_eq!(who["gid"], 0, "{whoami}");

    // EOF on stdin ends the server, and with it the container.
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the container exits")
        .expect("wait");
    assert!(status.success(), "{status}");
}
