//! The official MCP Python SDK as an agent, one session per driver process
//! (`python/sdk_driver.py`): commands in, answers out, the session kept open between.

use serde_json::{Value, json};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

pub struct Sdk {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    pub protocol: String,
}

pub fn python() -> String {
    std::env::var("TOOLBELT_TEST_PYTHON")
        .expect("TOOLBELT_TEST_PYTHON: a Python with the mcp SDK (scripts/test.sh makes one)")
}

impl Sdk {
    /// Connects as an agent; `mode` is `legacy` or `2026-07-28`.
    pub async fn connect(url: &str, token: &str, mode: &str) -> Sdk {
        Self::connect_with_headers(url, token, mode, &[]).await
    }

    /// [`Sdk::connect`] sending `headers` on every request too (a `traceparent`…).
    pub async fn connect_with_headers(
        url: &str,
        token: &str,
        mode: &str,
        headers: &[(&str, &str)],
    ) -> Sdk {
        let extra: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sdk_driver.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .args([url, token, mode, &Value::Object(extra).to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready: Value = serde_json::from_str(
            &tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
                .await
                .expect("the SDK connects")
                .unwrap()
                .expect("a ready line"),
        )
        .unwrap();
        assert_eq!(ready["ready"], true, "{ready}");
        Sdk {
            child,
            stdin,
            lines,
            protocol: ready["protocol"].as_str().unwrap_or_default().to_string(),
        }
    }

    pub async fn send(&mut self, cmd: Value) -> Value {
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        let line =
            tokio::time::timeout(std::time::Duration::from_secs(150), self.lines.next_line())
                .await
                .expect("the SDK answers")
                .unwrap()
                .expect("an answer");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    pub async fn tool_names(&mut self) -> Vec<String> {
        let r = self.send(json!({ "op": "list_tools" })).await;
        assert_eq!(r["ok"], true, "{r}");
        let mut v: Vec<String> = r["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    pub async fn call(&mut self, name: &str, args: Value) -> Value {
        self.send(json!({ "op": "call", "name": name, "args": args }))
            .await
    }

    pub async fn list_changed(&mut self) -> u64 {
        self.send(json!({ "op": "notifications" })).await["list_changed"]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn quit(mut self) {
        let _ = self.stdin.write_all(b"{\"op\":\"quit\"}\n").await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.child.wait()).await;
    }
}
