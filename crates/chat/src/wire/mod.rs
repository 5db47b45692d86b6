//! The two LLM wire protocols behind one neutral shape: a conversation of [`Message`]s and
//! the tools as [`ToolDef`]s in, a [`Reply`] (text, tool calls, usage) out, the answer's
//! text handed over piece by piece as it streams. Requests always ask for a stream; a
//! server that answers with one JSON body anyway is read as such.
//!
//! Parsing is pure (`openai::Stream`, `anthropic::Stream`, `*::parse_plain`) so the unit
//! tests feed canned wire bytes; [`Client`] only moves bytes.

pub mod anthropic;
pub mod openai;
pub mod sse;

use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use toolbelt_model::chat::{LlmKind, Usage};

/// A tool as the LLM is told about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// A JSON Schema object.
    pub parameters: Value,
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// Always a JSON object (anything else is [`WireError::Malformed`]).
    pub arguments: Value,
}

/// The conversation, protocol-neutral (and what a stored turn keeps to resume from).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    User {
        text: String,
    },
    Assistant {
        text: String,
        #[serde(default)]
        tool_calls: Vec<StoredCall>,
    },
    Tool {
        id: String,
        name: String,
        text: String,
        is_error: bool,
        /// Images the result carried, forwarded natively (bounded by `tools`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<Image>,
    },
}

/// An image of a tool result, as MCP carries it (base64).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Image {
    pub mime_type: String,
    pub data: String,
}

/// A tool call inside a stored assistant message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

impl From<&ToolCall> for StoredCall {
    fn from(c: &ToolCall) -> StoredCall {
        StoredCall {
            id: c.id.clone(),
            name: c.name.clone(),
            arguments: c.arguments.clone(),
        }
    }
}

/// What one request carries.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub model: &'a str,
    pub system: Option<&'a str>,
    pub temperature: Option<f64>,
    pub messages: &'a [Message],
    pub tools: &'a [ToolDef],
    /// The answer's length limit (Anthropic requires one).
    pub max_tokens: u32,
}

/// The model's reply to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("cannot reach the LLM endpoint: {0}")]
    Unreachable(String),
    #[error("the LLM endpoint answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the LLM's reply is malformed: {0}")]
    Malformed(String),
    #[error("the LLM's reply stream ended before the reply was complete: {0}")]
    Cut(String),
}

impl WireError {
    /// The `error` event's code.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Unreachable(_) => "llm_unreachable",
            WireError::Status { .. } => "llm_error",
            WireError::Malformed(_) => "llm_malformed",
            WireError::Cut(_) => "llm_cut",
        }
    }
}

/// Parses a tool call's arguments: a JSON object, or empty (no arguments).
pub(crate) fn arguments(tool: &str, raw: &str) -> Result<Value, WireError> {
    if raw.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(WireError::Malformed(format!(
            "the arguments of tool call {tool} are not a JSON object: {}",
            clip(raw)
        ))),
        Err(e) => Err(WireError::Malformed(format!(
            "the arguments of tool call {tool} are not valid JSON ({e}): {}",
            clip(raw)
        ))),
    }
}

pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() <= 200 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(200).collect::<String>())
    }
}

/// A reply stream being parsed, whichever protocol.
pub(crate) trait Stream {
    /// One SSE event; text pieces go to `on_text`. An `Err` ends the reply.
    fn event(&mut self, e: &sse::Event, on_text: &mut dyn FnMut(&str)) -> Result<(), WireError>;
    /// The body ended: the reply, or `Cut` when it was not complete.
    fn finish(self: Box<Self>) -> Result<Reply, WireError>;
}

/// An endpoint's client: where, which protocol, with which key.
#[derive(Clone)]
pub struct Client {
    pub kind: LlmKind,
    pub base_url: String,
    pub api_key: Option<String>,
    pub http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Client {
    /// Sends one request and reads the reply, streaming its text to `on_text`.
    /// `idle`: the longest silence between two pieces of the reply.
    pub async fn complete(
        &self,
        req: &Request<'_>,
        idle: Duration,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Reply, WireError> {
        let url = endpoint_url(self.kind, &self.base_url);
        let body = match self.kind {
            LlmKind::OpenAi | LlmKind::Azure => openai::body(req),
            LlmKind::Anthropic => anthropic::body(req),
        };
        let mut rb = self
            .http
            .post(&url)
            .header(http::header::ACCEPT, "text/event-stream, application/json")
            .json(&body);
        rb = match (self.kind, &self.api_key) {
            (LlmKind::OpenAi, Some(k)) => rb.bearer_auth(k),
            (LlmKind::Azure, Some(k)) => rb.header("api-key", k),
            (LlmKind::Anthropic, Some(k)) => rb.header("x-api-key", k),
            (_, None) => rb,
        };
        if self.kind == LlmKind::Anthropic {
            rb = rb.header("anthropic-version", "2023-06-01");
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| WireError::Unreachable(toolbelt_net::http::describe(&e)))?;
        let status = resp.status();
        let is_json = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !status.is_success() {
            let text = read_capped(resp, idle).await.unwrap_or_default();
            return Err(WireError::Status {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        if is_json {
            let text = read_capped(resp, idle).await?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                WireError::Malformed(format!("the reply is not JSON ({e}): {}", clip(&text)))
            })?;
            let reply = match self.kind {
                LlmKind::OpenAi | LlmKind::Azure => openai::parse_plain(&v)?,
                LlmKind::Anthropic => anthropic::parse_plain(&v)?,
            };
            if !reply.text.is_empty() {
                on_text(&reply.text);
            }
            return Ok(reply);
        }
        let mut parser: Box<dyn Stream + Send> = match self.kind {
            LlmKind::OpenAi | LlmKind::Azure => Box::new(openai::Stream::default()),
            LlmKind::Anthropic => Box::new(anthropic::Stream::default()),
        };
        let mut decoder = sse::Decoder::default();
        let mut body = resp.bytes_stream();
        loop {
            let next = tokio::time::timeout(idle, body.next())
                .await
                .map_err(|_| WireError::Cut(format!("nothing for {} s", idle.as_secs())))?;
            match next {
                Some(Ok(chunk)) => {
                    for e in decoder.feed(&chunk) {
                        parser.event(&e, on_text)?;
                    }
                }
                Some(Err(e)) => {
                    return Err(WireError::Cut(toolbelt_net::http::describe(&e)));
                }
                None => break,
            }
        }
        if let Some(e) = decoder.finish() {
            parser.event(&e, on_text)?;
        }
        parser.finish()
    }
}

/// Where one request goes: the base URL's path plus the protocol's route, the base's query
/// (Azure's `api-version`) kept after it.
pub(crate) fn endpoint_url(kind: LlmKind, base: &str) -> String {
    let route = match kind {
        LlmKind::OpenAi | LlmKind::Azure => "chat/completions",
        LlmKind::Anthropic => "messages",
    };
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    let path = path.trim_end_matches('/');
    match query {
        Some(q) => format!("{path}/{route}?{q}"),
        None => format!("{path}/{route}"),
    }
}

/// A plain body, at most 4 MiB.
async fn read_capped(resp: reqwest::Response, idle: Duration) -> Result<String, WireError> {
    const MAX: usize = 4 << 20;
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    loop {
        let next = tokio::time::timeout(idle, body.next())
            .await
            .map_err(|_| WireError::Cut(format!("nothing for {} s", idle.as_secs())))?;
        match next {
            Some(Ok(c)) => {
                out.extend_from_slice(&c);
                if out.len() > MAX {
                    return Err(WireError::Malformed("the reply is over 4 MiB".into()));
                }
            }
            Some(Err(e)) => return Err(WireError::Cut(toolbelt_net::http::describe(&e))),
            None => break,
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The message of an error body of either protocol (`{"error": {"message": …}}`), else
/// the body itself, clipped.
pub(crate) fn error_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["error"]["message"]
        .as_str()
        .or_else(|| v["error"].as_str())
        .or_else(|| v["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| clip(body.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_posts_to_its_route_and_azure_keeps_its_api_version() {
        assert_eq!(
            endpoint_url(LlmKind::OpenAi, "https://api.openai.com/v1/"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            endpoint_url(LlmKind::Anthropic, "https://api.anthropic.com/v1"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            endpoint_url(
                LlmKind::Azure,
                "https://r.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21"
            ),
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
    }
}
