//! Chat: LLM endpoints, an agent's chat settings, conversations and their transcripts.

use crate::{AgentId, ChatId, LlmId, UserId, name::Name};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

str_enum!(
    /// The wire protocol an LLM endpoint speaks.
    LlmKind {
        /// OpenAI Chat Completions (`POST {base}/chat/completions`, `Authorization: Bearer`):
        /// OpenAI, vLLM, Ollama, LiteLLM, Azure OpenAI's `/openai/v1` API.
        OpenAi = "openai",
        /// Azure OpenAI's deployment API: the same wire as `openai`, at
        /// `POST {deployment URL}/chat/completions?api-version=V` with an `api-key` header.
        Azure = "azure",
        /// Anthropic Messages (`POST {base}/messages`).
        Anthropic = "anthropic",
    }
);

/// The most tools OpenAI accepts in one request; the default `max_tools`.
pub const DEFAULT_MAX_TOOLS: u32 = 128;

/// An LLM endpoint. Its API key is a vault secret, named here, never its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Llm {
    pub id: LlmId,
    #[schema(value_type = String)]
    pub name: Name,
    pub kind: LlmKind,
    pub base_url: String,
    /// The name of the vault secret holding the API key (in the endpoint's namespace).
    pub api_key_secret: Option<String>,
    /// The default model (an agent's settings may name another).
    pub model: Option<String>,
    /// The most tools one request may carry; past it, tool search is used.
    pub max_tools: u32,
    /// None: shared (added by an admin).
    pub owner_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// How an agent chats: which endpoint and model, the system prompt, the limits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatSettings {
    pub agent_id: AgentId,
    pub llm_id: LlmId,
    /// The endpoint's name.
    pub llm: String,
    /// The model asked for (None: the endpoint's default).
    pub model: Option<String>,
    pub system: Option<String>,
    pub temperature: Option<f64>,
    /// Tool rounds per turn at most.
    pub max_steps: u32,
}

/// A conversation, without its turns' content.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Chat {
    pub id: ChatId,
    /// The agent's name.
    pub agent: String,
    pub agent_id: AgentId,
    pub owner_id: UserId,
    /// Finished turns.
    pub turns: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Tokens one turn (or one LLM call) used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, o: Usage) {
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
    }

    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// One tool call of a turn as the transcript shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolCallRecord {
    /// As the agent sees it (`server__tool`).
    pub name: String,
    pub arguments: Value,
    pub is_error: bool,
    /// What went back to the model.
    pub text: String,
}

/// One finished turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TurnRecord {
    pub user: String,
    pub answer: String,
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: Usage,
}

/// A conversation with every turn (`GET /api/v1/chats/{chat}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    pub id: ChatId,
    /// The agent's name.
    pub agent: String,
    pub turns: Vec<TurnRecord>,
}
