//! One turn: the model is asked, the tools it calls are called through the gateway as the
//! agent (in parallel when it asks for several), their results go back to it, until it
//! answers without tools — within `max_steps` tool rounds, the daily token budget and the
//! caller's cancellation. Events stream out as they happen; the caller stores the turn only
//! when it finished.

use crate::events::ChatEvent;
use crate::mcp::{CallOutcome, Mcp, McpError};
use crate::wire::{self, Message, Reply, Request, StoredCall, ToolCall, ToolDef, WireError};
use futures::future::join_all;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;
use toolbelt_model::chat::{ToolCallRecord, TurnRecord, Usage};
use toolbelt_model::{AgentId, UserId};
use toolbelt_store::events::{Event, Received};
use toolbelt_store::{Store, approvals, chats};

/// Why a turn failed: the `error` event's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct TurnError {
    pub code: &'static str,
    pub message: String,
}

impl TurnError {
    pub fn new(code: &'static str, message: impl Into<String>) -> TurnError {
        TurnError {
            code,
            message: message.into(),
        }
    }
}

impl From<WireError> for TurnError {
    fn from(e: WireError) -> TurnError {
        TurnError::new(e.code(), e.to_string())
    }
}

impl From<toolbelt_store::StoreError> for TurnError {
    fn from(e: toolbelt_store::StoreError) -> TurnError {
        tracing::error!(error = %e, "chat turn: store");
        TurnError::new("internal", "the store failed")
    }
}

/// The per-user daily token budget (UTC days).
pub struct Budget {
    pub store: Store,
    pub user: UserId,
    /// Tokens per day (input + output).
    pub limit: u64,
}

impl Budget {
    fn today() -> i64 {
        chrono::Utc::now().timestamp().div_euclid(86_400)
    }

    pub async fn check(&self) -> Result<(), TurnError> {
        let used = {
            let mut c = self.store.conn().await?;
            chats::usage(&mut c, &self.user, Self::today()).await?
        };
        if used >= self.limit {
            return Err(TurnError::new(
                "budget_exhausted",
                format!(
                    "your daily LLM token budget is used up ({used} of {} tokens today); it \
                     resets at 00:00 UTC (TOOLBELT_CHAT_DAILY_TOKENS sets it)",
                    self.limit
                ),
            ));
        }
        Ok(())
    }

    pub async fn charge(&self, u: Usage) -> Result<(), TurnError> {
        if u.total() == 0 {
            return Ok(());
        }
        let mut c = self.store.conn().await?;
        chats::add_usage(&mut c, &self.user, Self::today(), u.total()).await?;
        Ok(())
    }
}

/// Everything one turn runs with.
pub struct Turn<'a> {
    pub llm: &'a wire::Client,
    pub model: &'a str,
    pub system: Option<&'a str>,
    pub temperature: Option<f64>,
    pub max_steps: u32,
    pub max_tokens: u32,
    /// The longest silence of the LLM within one reply.
    pub idle: Duration,
    pub tools: &'a [ToolDef],
    pub mcp: &'a Mcp,
    pub store: &'a Store,
    pub agent: &'a AgentId,
    pub budget: &'a Budget,
    pub events: &'a UnboundedSender<ChatEvent>,
    pub cancel: &'a CancellationToken,
}

/// A finished turn: what the transcript shows, the messages to resume from, and counts.
#[derive(Debug, Clone)]
pub struct Finished {
    pub record: TurnRecord,
    /// This turn's messages (the user's first), appended to the history.
    pub messages: Vec<Message>,
    pub steps: u32,
}

impl Turn<'_> {
    /// Runs the turn over `history`. `usage` counts every LLM call, even when the turn fails.
    pub async fn run(
        &self,
        history: &[Message],
        user: &str,
        usage: &mut Usage,
    ) -> Result<Finished, TurnError> {
        let mut messages: Vec<Message> = history.to_vec();
        let first = messages.len();
        messages.push(Message::User {
            text: user.to_string(),
        });
        let mut answer = String::new();
        let mut calls: Vec<ToolCallRecord> = Vec::new();
        let mut steps = 0u32;
        loop {
            self.budget.check().await?;
            let reply = self.ask(&messages).await?;
            usage.add(reply.usage);
            self.budget.charge(reply.usage).await?;
            answer.push_str(&reply.text);
            if reply.tool_calls.is_empty() {
                messages.push(Message::Assistant {
                    text: reply.text,
                    tool_calls: vec![],
                });
                return Ok(Finished {
                    record: TurnRecord {
                        user: user.to_string(),
                        answer,
                        tool_calls: calls,
                        usage: *usage,
                    },
                    messages: messages.split_off(first),
                    steps,
                });
            }
            if steps >= self.max_steps {
                return Err(TurnError::new(
                    "max_steps",
                    format!(
                        "the model still wanted tools after {steps} tool rounds (the agent's \
                         max_steps is {})",
                        self.max_steps
                    ),
                ));
            }
            steps += 1;
            messages.push(Message::Assistant {
                text: reply.text.clone(),
                tool_calls: reply.tool_calls.iter().map(StoredCall::from).collect(),
            });
            for c in &reply.tool_calls {
                let _ = self.events.send(ChatEvent::ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                });
            }
            let outcomes = self.call_all(&reply.tool_calls).await?;
            for (c, o) in reply.tool_calls.iter().zip(outcomes) {
                let _ = self.events.send(ChatEvent::ToolResult {
                    id: c.id.clone(),
                    is_error: o.is_error,
                    text: o.text.clone(),
                });
                calls.push(ToolCallRecord {
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                    is_error: o.is_error,
                    text: o.text.clone(),
                });
                messages.push(Message::Tool {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    text: o.text,
                    is_error: o.is_error,
                    images: o.images,
                });
            }
        }
    }

    async fn ask(&self, messages: &[Message]) -> Result<Reply, TurnError> {
        let req = Request {
            model: self.model,
            system: self.system,
            temperature: self.temperature,
            messages,
            tools: self.tools,
            max_tokens: self.max_tokens,
        };
        let events = self.events.clone();
        let mut on_text = move |t: &str| {
            let _ = events.send(ChatEvent::Text {
                delta: t.to_string(),
            });
        };
        tokio::select! {
            r = self.llm.complete(&req, self.idle, &mut on_text) => Ok(r?),
            _ = self.cancel.cancelled() => Err(cancelled()),
        }
    }

    /// Calls every tool of one reply at once. While they run, an approval the gateway
    /// creates for this agent is announced (`approval_required`); a cancellation is passed
    /// on to the gateway as MCP cancellation before the turn gives up.
    async fn call_all(&self, calls: &[ToolCall]) -> Result<Vec<CallOutcome>, TurnError> {
        let mut sub = self.store.events().subscribe();
        let ids: Vec<u64> = calls.iter().map(|_| self.mcp.next_id()).collect();
        let all = join_all(
            calls
                .iter()
                .zip(&ids)
                .map(|(c, id)| self.mcp.call(*id, &c.name, &c.arguments)),
        );
        tokio::pin!(all);
        let mut announced = HashSet::new();
        let mut listening = true;
        let results = loop {
            tokio::select! {
                r = &mut all => break r,
                _ = self.cancel.cancelled() => {
                    for id in &ids {
                        self.mcp.cancel(*id, "the chat turn was cancelled").await;
                    }
                    // Give the gateway a moment to end the calls (and audit them) cleanly.
                    let _ = tokio::time::timeout(Duration::from_secs(2), &mut all).await;
                    return Err(cancelled());
                }
                r = sub.recv(), if listening => match r {
                    Received::Event(e) => {
                        if let Event::ApprovalCreated { approval, agent, .. } = &*e
                            && agent == self.agent
                            && announced.insert(approval.clone())
                        {
                            self.announce(approval, calls).await;
                        }
                    }
                    Received::Lagged(_) => {}
                    Received::Closed => listening = false,
                },
            }
        };
        results
            .into_iter()
            .map(|r| {
                r.map_err(|e| match e {
                    McpError::Refused { .. } => TurnError::new("gateway", e.to_string()),
                    other => TurnError::new("gateway", other.to_string()),
                })
            })
            .collect()
    }

    async fn announce(&self, id: &toolbelt_model::ApprovalId, calls: &[ToolCall]) {
        let a = {
            let Ok(mut c) = self.store.conn().await else {
                return;
            };
            match approvals::get_internal(&mut c, id).await {
                Ok(a) => a,
                Err(_) => return,
            }
        };
        // The approval names the server's own tool; the model named it as the agent sees
        // it (`server__tool`). Match on the arguments and the name's tail.
        let suffix = format!("__{}", a.tool);
        let tool = calls
            .iter()
            .find(|c| c.arguments == a.arguments && c.name.ends_with(&suffix))
            .or_else(|| calls.iter().find(|c| c.arguments == a.arguments))
            .map(|c| c.name.clone())
            .unwrap_or_else(|| a.tool.clone());
        let _ = self.events.send(ChatEvent::ApprovalRequired {
            approval_id: a.id.to_string(),
            tool,
            arguments: if a.arguments.is_null() {
                Value::Object(Default::default())
            } else {
                a.arguments
            },
        });
    }
}

fn cancelled() -> TurnError {
    TurnError::new("cancelled", "the turn was cancelled")
}
