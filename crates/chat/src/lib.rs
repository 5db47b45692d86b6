//! Chat: an agent converses with an LLM and uses exactly its granted MCP tools, through
//! the gateway, as that agent. See README.md for the contract and the design.
//!
//! Layers: `wire` (the two LLM protocols, pure parsing + one HTTP client), `mcp` (the
//! gateway's `/mcp` called in process with the turn's minted credential), `tools` (MCP →
//! function definitions and tool-result text), `turn` (the loop), `service` (the rules:
//! endpoints, settings, conversations, a turn's set-up and its storage), `api` (the REST
//! routes over the services, mounted by the app into the control plane's OpenAPI router).

pub mod api;
pub mod events;
pub mod mcp;
pub mod service;
pub mod tools;
pub mod turn;
pub mod wire;

use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use toolbelt_control::AppState;
use toolbelt_net::ssrf::{AllowList, Guard};

/// Chat's settings (`TOOLBELT_CHAT_*`, and the gateway's SSRF allow-list).
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// LLM tokens per user and UTC day.
    pub daily_tokens: u64,
    /// A whole turn at most.
    pub turn_timeout: Duration,
    /// The longest silence of an LLM within one reply.
    pub llm_idle: Duration,
    /// An answer's length limit per LLM call.
    pub max_tokens: u32,
    /// Private and loopback LLM addresses allowed (`TOOLBELT_SSRF_ALLOW`).
    pub ssrf_allow: AllowList,
    pub outbound: toolbelt_net::http::Outbound,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            daily_tokens: 1_000_000,
            turn_timeout: Duration::from_secs(600),
            llm_idle: Duration::from_secs(120),
            max_tokens: 4096,
            ssrf_allow: AllowList::default(),
            outbound: Default::default(),
        }
    }
}

/// The chat runtime: the control plane's state, the gateway's `/mcp` router it calls as
/// agents, and its own HTTP client for LLMs (every address through the SSRF guard).
#[derive(Clone)]
pub struct Chat(Arc<Inner>);

pub struct Inner {
    pub state: AppState,
    pub mcp: Router,
    /// The Host header of in-process `/mcp` requests (one the gateway answers to).
    pub host: String,
    pub config: ChatConfig,
    pub guard: Arc<Guard>,
    pub http: reqwest::Client,
}

impl std::ops::Deref for Chat {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Chat {
    /// `public_url`: where the gateway is reached (its host goes into the Host header).
    pub fn new(state: AppState, mcp: Router, public_url: &str, config: ChatConfig) -> Chat {
        let host = url::Url::parse(public_url)
            .ok()
            .and_then(|u| {
                let h = u.host_str()?.to_string();
                Some(match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h,
                })
            })
            .unwrap_or_else(|| "127.0.0.1".into());
        let guard = Arc::new(Guard {
            allow: config.ssrf_allow.clone(),
        });
        let http = config
            .outbound
            .guarded(guard.clone())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client builds");
        Chat(Arc::new(Inner {
            state,
            mcp,
            host,
            config,
            guard,
            http,
        }))
    }
}
