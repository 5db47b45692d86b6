//! The fixture MCP server over stdio, driven by hand-written JSON-RPC lines (no MCP
//! client library), so these tests check the wire format the gateway will see.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use toolbelt_testkit::fixture::fixture_bin;
use toolbelt_testkit::proc::wait_for;

const READ_LIMIT: Duration = Duration::from_secs(10);

/// One fixture process and the lines it wrote to stdout and stderr.
struct Fixture {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    /// Notifications and non-JSON lines seen while waiting for responses.
    seen: Vec<Value>,
    junk: Vec<String>,
}

impl Fixture {
    async fn start(args: &[&str]) -> Fixture {
        let mut child = tokio::process::Command::new(fixture_bin())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn fixture-mcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Fixture {
            child,
            stdin,
            stdout,
            stderr,
            seen: vec![],
            junk: vec![],
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    async fn send(&mut self, msg: Value) {
        let mut line = msg.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to fixture");
        self.stdin.flush().await.expect("flush to fixture");
    }

    /// The next stdout line, parsed; non-JSON lines are kept in `junk` and skipped.
    async fn next(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(READ_LIMIT, self.stdout.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!("no line within {READ_LIMIT:?}; stderr:\n{}", self.stderr())
                })
                .expect("read stdout")
                .unwrap_or_else(|| panic!("fixture closed stdout; stderr:\n{}", self.stderr()));
            match serde_json::from_str(&line) {
                Ok(v) => return v,
                Err(_) => self.junk.push(line),
            }
        }
    }

    /// Sends a request and returns its response, keeping what came before it in `seen`.
    async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        loop {
            let msg = self.next().await;
            if msg["id"] == json!(id) && msg.get("method").is_none() {
                return msg;
            }
            self.seen.push(msg);
        }
    }

    async fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        self.request(id, "tools/call", json!({ "name": tool, "arguments": args }))
            .await
    }

    async fn initialize(&mut self) -> Value {
        let init = self
            .request(
                0,
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": { "name": "fixture-test", "version": "0" },
                }),
            )
            .await;
        self.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        init
    }
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .expect("tools array")
        .iter()
        .map(|t| t["name"].as_str().expect("tool name").to_owned())
        .collect()
}

#[tokio::test]
async fn stdio_fixture_speaks_mcp() {
    let mut f = Fixture::start(&["--stdio"]).await;

    let init = f.initialize().await;
    assert_eq!(
        init["result"]["serverInfo"]["name"], "fixture-mcp",
        "{init}"
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    assert_eq!(
        init["result"]["capabilities"]["tools"]["listChanged"], true,
        "{init}"
    );
    wait_for("the ready line on stderr", READ_LIMIT, || {
        let s = f.stderr();
        async move { s.contains("fixture-mcp ready (stdio)").then_some(()) }
    })
    .await;

    let list = f.request(1, "tools/list", json!({})).await;
    let names = tool_names(&list);
    for want in [
        "echo",
        "add",
        "sleep",
        "fail",
        "progress",
        "change_tools",
        "whoami",
        "junk",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n == "extra"));
    let echo = &list["result"]["tools"][0];
    assert_eq!(
        echo["inputSchema"]["properties"]["text"]["type"], "string",
        "{echo}"
    );
    assert!(echo["outputSchema"].is_object(), "{echo}");

    let echoed = f.call(2, "echo", json!({ "text": "hi there" })).await;
    assert_eq!(
        echoed["result"]["content"][0]["text"], "hi there",
        "{echoed}"
    );
    assert_eq!(
        echoed["result"]["structuredContent"],
        json!({ "text": "hi there" })
    );

    let sum = f.call(3, "add", json!({ "a": 2, "b": 0.5 })).await;
    assert_eq!(
        sum["result"]["structuredContent"],
        json!({ "sum": 2.5 }),
        "{sum}"
    );

    let bad = f.call(4, "add", json!({ "a": 2, "b": "three" })).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("`b`"),
        "{bad}"
    );
    let missing = f.call(5, "add", json!({ "a": 2 })).await;
    assert_eq!(missing["error"]["code"], -32602, "{missing}");
    let unknown = f.call(6, "no_such_tool", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    let tool_err = f.call(7, "fail", json!({ "mode": "tool" })).await;
    assert_eq!(tool_err["result"]["isError"], true, "{tool_err}");
    assert_eq!(
        tool_err["result"]["content"][0]["text"],
        "failed on purpose"
    );
    let proto_err = f.call(8, "fail", json!({ "mode": "protocol" })).await;
    assert_eq!(proto_err["error"]["code"], -32000, "{proto_err}");
    assert_eq!(proto_err["error"]["message"], "failed on purpose");

    f.seen.clear();
    let changed = f.call(9, "change_tools", json!({ "mode": "add" })).await;
    assert!(changed["result"].is_object(), "{changed}");
    assert!(
        f.seen
            .iter()
            .any(|m| m["method"] == "notifications/tools/list_changed"),
        "no list_changed before the reply: {:?}",
        f.seen
    );
    let list = f.request(10, "tools/list", json!({})).await;
    assert!(tool_names(&list).iter().any(|n| n == "extra"), "{list}");

    let junked = f.call(11, "junk", json!({ "lines": 3 })).await;
    assert_eq!(junked["result"]["content"][0]["text"], "junked", "{junked}");
    assert_eq!(f.junk, vec!["this is not json"; 3]);

    // A cancelled sleep ends early, and says so on stderr.
    f.send(json!({ "jsonrpc": "2.0", "id": 12, "method": "tools/call",
                   "params": { "name": "sleep", "arguments": { "ms": 60000 } } }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.send(
        json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": { "requestId": 12, "reason": "test" } }),
    )
    .await;
    let echoed = f.call(13, "echo", json!({ "text": "after" })).await;
    assert_eq!(echoed["result"]["content"][0]["text"], "after", "{echoed}");
    wait_for("sleep cancelled on stderr", READ_LIMIT, || {
        let s = f.stderr();
        async move { s.contains("sleep cancelled").then_some(()) }
    })
    .await;

    // Closing stdin ends the server cleanly.
    drop(f.stdin);
    let status = tokio::time::timeout(READ_LIMIT, f.child.wait())
        .await
        .expect("exit")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn stdio_fixture_progress_and_crash() {
    let mut f = Fixture::start(&[]).await;
    f.initialize().await;

    let params = json!({ "name": "progress", "arguments": { "steps": 3, "delay_ms": 1 },
                         "_meta": { "progressToken": "tok" } });
    let done = f.request(1, "tools/call", params).await;
    assert_eq!(done["result"]["content"][0]["text"], "done", "{done}");
    let progress: Vec<&Value> = f
        .seen
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", f.seen);
    assert_eq!(progress[2]["params"]["progressToken"], "tok");
    assert_eq!(progress[2]["params"]["progress"], 3.0);
    assert_eq!(progress[2]["params"]["total"], 3.0);
    assert_eq!(progress[2]["params"]["message"], "step 3");

    f.send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": { "name": "crash", "arguments": { "code": 7 } } }))
        .await;
    let status = tokio::time::timeout(READ_LIMIT, f.child.wait())
        .await
        .expect("exit")
        .expect("wait");
    assert_eq!(status.code(), Some(7));
}

#[tokio::test]
async fn fixture_crash_on_start_and_junk_on_start() {
    let out = tokio::time::timeout(
        READ_LIMIT,
        tokio::process::Command::new(fixture_bin())
            .args(["--crash-on-start", "3"])
            .output(),
    )
    .await
    .expect("exit")
    .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("crashing on start"));

    let mut f = Fixture::start(&["--junk-on-start", "2"]).await;
    let init = f.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "fixture-mcp");
    assert_eq!(f.junk.len(), 2, "{:?}", f.junk);
}

#[tokio::test]
async fn a_change_on_start_is_there_from_the_first_listing() {
    let mut f = Fixture::start(&["--change-on-start", "describe"]).await;
    f.initialize().await;
    let tools = f.request(2, "tools/list", json!({})).await;
    let echo = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "echo")
        .cloned()
        .unwrap();
    assert_eq!(echo["description"], "Echoes text back, changed", "{echo}");

    let out = tokio::time::timeout(
        READ_LIMIT,
        tokio::process::Command::new(fixture_bin())
            .args(["--change-on-start", "nonsense"])
            .output(),
    )
    .await
    .expect("exit")
    .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mode"));
}
