//! Chat as its users drive it over REST (crates/chat/README.md is the contract): an LLM
//! endpoint, an agent's chat settings, a conversation, and a turn's SSE events —
//!
//! ```ignore
//! ann.llm("fake", "openai", &llm.base_url()).await;
//! ann.chat_settings("ann-bot", "fake").await;
//! let chat = ann.chat("ann-bot").await;
//! let turn = chat.say("hello").await;              // every event, to `done` or `error`
//! let mut live = chat.send("add these").await;     // or event by event
//! let asked = live.until("approval_required").await;
//! ```

use crate::eventually::WAIT;
use crate::rest::Rest;
use crate::world::Caller;
use serde_json::{Value, json};

impl Caller {
    /// Adds an LLM endpoint of this caller's (`kind`: openai | anthropic), default model
    /// `scripted`; its JSON.
    pub async fn llm(&self, name: &str, kind: &str, base_url: &str) -> Value {
        self.llm_with(
            json!({ "name": name, "kind": kind, "base_url": base_url, "model": "scripted" }),
        )
        .await
    }

    /// Adds an LLM endpoint from a full request body (`api_key_secret`, `max_tools`,
    /// `shared`…).
    pub async fn llm_with(&self, body: Value) -> Value {
        self.rest.post("/api/v1/llms", body).await
    }

    /// Points `agent` at the endpoint `llm` (default model, no system prompt).
    pub async fn chat_settings(&self, agent: &str, llm: &str) -> Value {
        self.chat_settings_with(agent, json!({ "llm": llm })).await
    }

    /// The agent's chat settings from a full body (`model`, `system`, `max_steps`…).
    pub async fn chat_settings_with(&self, agent: &str, body: Value) -> Value {
        self.rest
            .ok("PUT", &format!("/api/v1/agents/{agent}/chat"), body)
            .await
    }

    /// A new conversation with `agent`.
    pub async fn chat(&self, agent: &str) -> Chat {
        let made = self
            .rest
            .post("/api/v1/chats", json!({ "agent": agent }))
            .await;
        Chat {
            id: made["id"].as_str().unwrap().into(),
            rest: self.rest.clone(),
        }
    }
}

/// One conversation, as its owner sees it.
pub struct Chat {
    pub id: String,
    pub rest: Rest,
}

/// One server-sent event of a turn.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

impl Chat {
    /// Posts `text` and returns the turn's event stream as it comes.
    pub async fn send(&self, text: &str) -> TurnStream {
        let res = toolbelt_net::http::client()
            .post(format!(
                "{}/api/v1/chats/{}/messages",
                self.rest.url, self.id
            ))
            .bearer_auth(&self.rest.token)
            .json(&json!({ "text": text }))
            .send()
            .await
            .expect("the chat answers");
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if status != 200 || !ct.starts_with("text/event-stream") {
            panic!(
                "POST messages: {status} {ct}: {}",
                res.text().await.unwrap_or_default()
            );
        }
        TurnStream {
            res,
            buf: String::new(),
            seen: Vec::new(),
        }
    }

    /// Posts `text` and reads the turn to its end.
    pub async fn say(&self, text: &str) -> Turn {
        self.send(text).await.finish().await
    }

    /// The transcript (`GET /api/v1/chats/{id}`).
    pub async fn transcript(&self) -> Value {
        self.rest.get(&format!("/api/v1/chats/{}", self.id)).await
    }
}

/// A turn's events while it runs; dropping it hangs up (the turn is cancelled).
pub struct TurnStream {
    res: reqwest::Response,
    buf: String,
    pub seen: Vec<Event>,
}

impl TurnStream {
    /// The next event, or None when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                if let Some(ev) = parse_frame(&frame) {
                    self.seen.push(ev.clone());
                    return Some(ev);
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.res.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {WAIT:?}; seen: {:#?}", self.seen))
                .ok()??;
            self.buf
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }

    /// Reads events until one named `name`; its data. Panics (showing what came) if the
    /// turn ends first.
    pub async fn until(&mut self, name: &str) -> Value {
        while let Some(ev) = self.next().await {
            if ev.name == name {
                return ev.data;
            }
        }
        panic!("the turn ended before `{name}`: {:#?}", self.seen)
    }

    /// Reads the turn to its end.
    pub async fn finish(mut self) -> Turn {
        while self.next().await.is_some() {}
        Turn { events: self.seen }
    }
}

fn parse_frame(frame: &str) -> Option<Event> {
    let mut name = "message".to_string();
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(n) = line.strip_prefix("event:") {
            name = n.trim().to_string();
        } else if let Some(d) = line.strip_prefix("data:") {
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    if data.is_empty() {
        return None; // a comment or keep-alive
    }
    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
    Some(Event { name, data })
}

/// A finished turn's events.
#[derive(Debug)]
pub struct Turn {
    pub events: Vec<Event>,
}

impl Turn {
    /// The data of every event named `name`, in order.
    pub fn of(&self, name: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e.name == name)
            .map(|e| &e.data)
            .collect()
    }

    /// The answer as streamed (the `text` deltas joined).
    pub fn text(&self) -> String {
        self.of("text")
            .iter()
            .filter_map(|d| d["delta"].as_str())
            .collect()
    }

    /// The `done` event's data; panics showing the events when the turn did not end so.
    pub fn done(&self) -> &Value {
        self.last("done")
    }

    /// The `error` event's data; panics showing the events when the turn did not end so.
    pub fn error(&self) -> &Value {
        self.last("error")
    }

    fn last(&self, name: &str) -> &Value {
        match self.events.last() {
            Some(e) if e.name == name => &e.data,
            _ => panic!("the turn did not end with `{name}`: {:#?}", self.events),
        }
    }
}
