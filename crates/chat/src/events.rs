//! The events of a turn, as the SSE stream and the CLI see them (names and shapes are the
//! contract in README.md).

use serde::Serialize;
use serde_json::{Value, json};
use toolbelt_model::chat::Usage;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ChatEvent {
    /// Something the user should know before the first call (e.g. tool search in use).
    Notice {
        code: &'static str,
        message: String,
    },
    Text {
        delta: String,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    ApprovalRequired {
        approval_id: String,
        tool: String,
        arguments: Value,
    },
    ToolResult {
        id: String,
        is_error: bool,
        text: String,
    },
    Done {
        chat_id: String,
        usage: Usage,
    },
    Error {
        code: &'static str,
        message: String,
    },
}

impl ChatEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            ChatEvent::Notice { .. } => "notice",
            ChatEvent::Text { .. } => "text",
            ChatEvent::ToolCall { .. } => "tool_call",
            ChatEvent::ApprovalRequired { .. } => "approval_required",
            ChatEvent::ToolResult { .. } => "tool_result",
            ChatEvent::Done { .. } => "done",
            ChatEvent::Error { .. } => "error",
        }
    }

    /// The SSE `data:` object.
    pub fn data(&self) -> Value {
        match self {
            ChatEvent::Notice { code, message } => json!({ "code": code, "message": message }),
            ChatEvent::Text { delta } => json!({ "delta": delta }),
            ChatEvent::ToolCall {
                id,
                name,
                arguments,
            } => {
                json!({ "id": id, "name": name, "arguments": arguments })
            }
            ChatEvent::ApprovalRequired {
                approval_id,
                tool,
                arguments,
            } => {
                json!({ "approval_id": approval_id, "tool": tool, "arguments": arguments })
            }
            ChatEvent::ToolResult { id, is_error, text } => {
                json!({ "id": id, "is_error": is_error, "text": text })
            }
            ChatEvent::Done { chat_id, usage } => json!({ "chat_id": chat_id, "usage": usage }),
            ChatEvent::Error { code, message } => json!({ "code": code, "message": message }),
        }
    }

    /// The last event of a turn.
    pub fn is_final(&self) -> bool {
        matches!(self, ChatEvent::Done { .. } | ChatEvent::Error { .. })
    }
}
