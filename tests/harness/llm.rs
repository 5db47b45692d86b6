//! The scripted LLM (`python/llm/server.py`): a model that answers each request with the next
//! step of a script, on the real OpenAI Chat Completions and Anthropic Messages wire (plain
//! and streamed), and records every request so a test can see what the chat runtime sent.
//!
//! ```ignore
//! let llm = Llm::start(json!([llm::call("tools__echo", json!({ "text": "hi" })), "done"])).await;
//! // … point an LLM endpoint (either kind) at llm.base_url() …
//! let sent = llm.requests().await;       // bodies, headers, which step answered, outcome
//! ```
//! Steps and faults: `tests/python/llm/README.md`.

use crate::sdk::python;
use serde_json::{Value, json};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running scripted LLM; stops when dropped (its stdin closes).
pub struct Llm {
    /// `http://127.0.0.1:PORT`, no path.
    pub url: String,
    http: reqwest::Client,
    _child: Child,
}

/// The directory of the fixture's Python files.
pub fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/llm")
}

impl Llm {
    /// Starts the fixture answering with `script`: a JSON list of steps, or an object
    /// `{steps, api_key, select, validate}`.
    pub async fn start(script: Value) -> Llm {
        let mut child = Command::new(python())
            .arg(fixture_dir().join("server.py"))
            .args(["--port", "0", "--exit-on-stdin-eof", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the scripted LLM prints READY")
            .unwrap()
            .expect("the scripted LLM exited before READY");
        let url = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("scripted LLM: {line}"))
            .to_string();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let llm = Llm {
            url,
            http: toolbelt_net::http::client(),
            _child: child,
        };
        llm.script(script).await;
        llm
    }

    /// The base URL an endpoint is given: `…/v1`, under which the fixture serves
    /// `/chat/completions` and `/messages` (the OpenAI SDKs' convention; Anthropic's SDKs
    /// take [`Llm::url`] and add `/v1` themselves).
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// Replaces the script (and forgets the requests seen so far).
    pub async fn script(&self, script: Value) {
        let r = self
            .http
            .post(format!("{}/__script", self.url))
            .json(&script)
            .send()
            .await
            .expect("the scripted LLM answers");
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "script refused: {body}");
    }

    /// Every completion request received, in order: `{seq, api, path, headers, body, stream,
    /// step, outcome, error?, images, frame_times_ns, token_times_ns, received_ns, finished_ns}`
    /// (`images`: each image carried, `{message, role, in, tool_use_id?, media_type, bytes}`)
    /// (outcome: replied, cut, error, garbage, invalid, unauthorized, exhausted, disconnected,
    /// held, pending; times in Unix ns).
    pub async fn requests(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/__requests", self.url))
            .send()
            .await
            .expect("the scripted LLM answers")
            .json()
            .await
            .expect("JSON")
    }

    /// The requests the fixture refused as the real API would (bad tool definitions, tool
    /// results that answer no call, …): a test asserts there are none.
    pub async fn refused(&self) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r["outcome"] == "invalid" || r["outcome"] == "unauthorized")
            .collect()
    }
}

/// A step answering with text.
pub fn text(s: &str) -> Value {
    json!({ "text": s })
}

/// A step calling one tool.
pub fn call(name: &str, arguments: Value) -> Value {
    calls(&[(name, arguments)])
}

/// A step calling several tools at once (parallel tool calls).
pub fn calls(list: &[(&str, Value)]) -> Value {
    let calls: Vec<Value> = list
        .iter()
        .map(|(n, a)| json!({ "name": n, "arguments": a }))
        .collect();
    json!({ "tool_calls": calls })
}

/// The tool definitions a request offered the model, by name (either wire protocol).
pub fn offered_tools(request: &Value) -> Vec<String> {
    let mut names: Vec<String> = request["body"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().or(t["name"].as_str()))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// The tool results a request carried back to the model, as (call id, text), in order
/// (OpenAI `tool` messages or Anthropic `tool_result` blocks).
pub fn tool_results(request: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in request["body"]["messages"].as_array().into_iter().flatten() {
        if m["role"] == "tool" {
            out.push((id_of(&m["tool_call_id"]), content_text(&m["content"])));
        }
        for b in m["content"].as_array().into_iter().flatten() {
            if b["type"] == "tool_result" {
                out.push((id_of(&b["tool_use_id"]), content_text(&b["content"])));
            }
        }
    }
    out
}

fn id_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A message's content as text: a string, or the text parts of a list of blocks.
pub fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}
