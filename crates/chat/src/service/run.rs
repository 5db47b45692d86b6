//! A turn, from the request to its stored record: the checks that can refuse it before
//! anything streams (the chat is the caller's, the agent has chat settings), then on its
//! own task: the endpoint's key from the vault, a credential minted for the chat's agent,
//! an MCP session through the gateway with it, the tools (through tool search when there
//! are more than the endpoint takes), the loop, and — only if it finished — the sealed
//! turn and its `chat.turn` event in one transaction. A failed or cancelled turn stores
//! nothing but its `chat.turn` failure event (and the tokens it used, for the budget).

use crate::Chat;
use crate::events::ChatEvent;
use crate::mcp::Mcp;
use crate::service::chats::{self, StoredTurn};
use crate::tools;
use crate::turn::{Budget, Finished, Turn, TurnError};
use crate::wire::{self, Message, ToolDef};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::{CancellationToken, DropGuard};
use toolbelt_control::service::{Caller, Result, ServiceError, found};
use toolbelt_model::agent::{Agent, Discovery};
use toolbelt_model::audit::{AuditAction, Outcome, TargetKind};
use toolbelt_model::chat::{Chat as ChatInfo, ChatSettings, Llm, Usage};
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::{Role, Scope};
use toolbelt_store::{agents, llms, secrets, tokens};
use toolbelt_vault::Actor;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    pub text: String,
}

/// A running turn: its events, and a guard that cancels it when dropped (the client went
/// away, Ctrl-C, a Stop button).
pub struct TurnStream {
    pub chat: ChatInfo,
    pub events: UnboundedReceiver<ChatEvent>,
    pub cancel: DropGuard,
}

/// Everything the turn's task needs, checked before it starts.
struct Plan {
    chat: ChatInfo,
    agent: Agent,
    settings: ChatSettings,
    llm: Llm,
    history: Vec<Message>,
    text: String,
    caller: Caller,
}

pub async fn post_message(
    chat: &Chat,
    caller: &Caller,
    r: &str,
    req: PostMessage,
) -> Result<TurnStream> {
    if req.text.trim().is_empty() {
        return Err(ServiceError::invalid("text", "must not be empty"));
    }
    if req.text.len() > 64 * 1024 {
        return Err(ServiceError::invalid("text", "must be at most 64 KiB"));
    }
    let ch = chats::info(chat, caller, r).await?;
    let (agent, settings, llm) = {
        let mut c = chat.state.store.conn().await?;
        let agent = found(
            format!("agent {}", ch.agent),
            agents::get(&mut c, &caller.scope, &ch.agent_id).await,
        )?;
        if &agent.owner_id != caller.id() {
            return Err(ServiceError::forbidden(
                "only the agent's owner may chat with it",
            ));
        }
        let settings = llms::settings(&mut c, &agent.id).await?.ok_or_else(|| {
            ServiceError::conflict(format!(
                "agent {} has no chat settings: toolbelt agent update {} --llm LLM",
                agent.name, agent.name
            ))
        })?;
        let owner = Scope {
            user_id: agent.owner_id.clone(),
            role: Role::Member,
        };
        let llm = found(
            format!("LLM endpoint {}", settings.llm),
            llms::get(&mut c, &owner, &settings.llm_id).await,
        )?;
        (agent, settings, llm)
    };
    let history = chats::turns(chat, caller.id(), &ch.id)
        .await?
        .into_iter()
        .flat_map(|t| t.messages)
        .collect();
    let (tx, rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    let plan = Plan {
        chat: ch.clone(),
        agent,
        settings,
        llm,
        history,
        text: req.text,
        caller: caller.clone(),
    };
    let (c2, ct) = (chat.clone(), cancel.clone());
    tokio::spawn(async move {
        let last = drive(&c2, plan, &tx, &ct).await;
        let _ = tx.send(last);
    });
    Ok(TurnStream {
        chat: ch,
        events: rx,
        cancel: cancel.drop_guard(),
    })
}

/// Runs the turn and records how it ended; returns the last event (`done` or `error`).
async fn drive(
    chat: &Chat,
    plan: Plan,
    events: &tokio::sync::mpsc::UnboundedSender<ChatEvent>,
    cancel: &CancellationToken,
) -> ChatEvent {
    let model = plan
        .settings
        .model
        .clone()
        .or_else(|| plan.llm.model.clone())
        .unwrap_or_default();
    let mut usage = Usage::default();
    let mut steps = 0;
    let res = tokio::time::timeout(
        chat.config.turn_timeout,
        run(chat, &plan, &model, events, cancel, &mut usage),
    )
    .await
    .unwrap_or_else(|_| {
        Err(TurnError::new(
            "turn_timeout",
            format!(
                "the turn took longer than {} s (TOOLBELT_CHAT_TURN_TIMEOUT_MS)",
                chat.config.turn_timeout.as_secs()
            ),
        ))
    });
    let mut detail = json!({
        "agent": plan.agent.id, "agent_name": plan.agent.name, "llm": plan.llm.name,
        "llm_id": plan.llm.id, "model": model,
        "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
    });
    let mut ev = plan.caller.event(
        AuditAction::ChatTurn,
        TargetKind::Chat,
        &plan.chat.id,
        None,
        json!({}),
    );
    let stored = match res {
        Ok(f) => {
            steps = f.steps;
            detail["steps"] = json!(f.steps);
            detail["tool_calls"] = json!(f.record.tool_calls.len());
            store(chat, &plan, f, ev.clone(), detail.clone()).await
        }
        Err(e) => Err(e),
    };
    match stored {
        Ok(()) => ChatEvent::Done {
            chat_id: plan.chat.id.to_string(),
            usage,
        },
        Err(e) => {
            detail["steps"] = json!(steps);
            detail["error_kind"] = json!(e.code);
            detail["error"] = json!(e.message.chars().take(1024).collect::<String>());
            ev.outcome = Outcome::Failure;
            ev.detail = detail;
            let audited = async { chat.state.store.begin_audited().await?.commit(ev).await };
            if let Err(err) = audited.await {
                tracing::error!(error = %err, "could not audit a failed chat turn");
            }
            ChatEvent::Error {
                code: e.code,
                message: e.message,
            }
        }
    }
}

/// Seals the turn and stores it with its success event, in one transaction.
async fn store(
    chat: &Chat,
    plan: &Plan,
    f: Finished,
    mut ev: toolbelt_model::audit::NewAuditEvent,
    detail: serde_json::Value,
) -> std::result::Result<(), TurnError> {
    let turn = StoredTurn {
        record: f.record,
        messages: f.messages,
    };
    let fail =
        |e: ServiceError| TurnError::new("internal", format!("the turn could not be stored: {e}"));
    let sealed = chats::seal_turn(chat, &plan.chat.owner_id, &plan.chat.id, &turn)
        .await
        .map_err(fail)?;
    let mut tx = chat.state.store.begin_audited().await?;
    toolbelt_store::chats::insert_turn(
        &mut tx,
        &plan.chat.id,
        sealed.seq,
        &sealed.sealed,
        turn.record.usage,
    )
    .await
    .map_err(|e| TurnError::new("internal", format!("the turn could not be stored: {e}")))?;
    ev.detail = detail;
    tx.commit(ev).await?;
    Ok(())
}

/// The turn proper, between its credential's minting and deletion.
async fn run(
    chat: &Chat,
    plan: &Plan,
    model: &str,
    events: &tokio::sync::mpsc::UnboundedSender<ChatEvent>,
    cancel: &CancellationToken,
    usage: &mut Usage,
) -> std::result::Result<Finished, TurnError> {
    let budget = Budget {
        store: chat.state.store.clone(),
        user: plan.caller.id().clone(),
        limit: chat.config.daily_tokens,
    };
    budget.check().await?;
    let client = wire::Client {
        kind: plan.llm.kind,
        base_url: plan.llm.base_url.clone(),
        api_key: api_key(chat, plan).await?,
        http: chat.http.clone(),
    };
    let mut session = Session::open(chat, plan, None).await?;
    let mut defs = session.tools().await;
    let max = plan.llm.max_tools as usize;
    if let Ok(d) = &defs
        && d.len() > max
    {
        let n = d.len();
        session.close(chat).await;
        session = Session::open(chat, plan, Some(Discovery::Search)).await?;
        defs = session.tools().await;
        match &defs {
            Ok(d) if d.len() <= max => {
                let _ = events.send(ChatEvent::Notice {
                    code: "tool_search",
                    message: format!(
                        "agent {} has {n} tools, more than endpoint {} takes ({max}): the model \
                         finds and calls them through the gateway's tool search (find_tools, \
                         call_tool)",
                        plan.agent.name, plan.llm.name
                    ),
                });
            }
            Ok(d) => {
                let m = format!(
                    "agent {} has {n} tools and {} even in search mode (its always-visible \
                     tools), more than endpoint {} takes ({max}): raise --max-tools or make \
                     fewer tools always visible",
                    plan.agent.name,
                    d.len(),
                    plan.llm.name
                );
                session.close(chat).await;
                return Err(TurnError::new("too_many_tools", m));
            }
            Err(_) => {}
        }
    }
    let defs = match defs {
        Ok(d) => d,
        Err(e) => {
            session.close(chat).await;
            return Err(e);
        }
    };
    let turn = Turn {
        llm: &client,
        model,
        system: plan.settings.system.as_deref(),
        temperature: plan.settings.temperature,
        max_steps: plan.settings.max_steps,
        max_tokens: chat.config.max_tokens,
        idle: chat.config.llm_idle,
        tools: &defs,
        mcp: &session.mcp,
        store: &chat.state.store,
        agent: &plan.agent.id,
        budget: &budget,
        events,
        cancel,
    };
    let res = turn.run(&plan.history, &plan.text, usage).await;
    session.close(chat).await;
    res
}

/// The endpoint's API key, opened as the agent for this turn (audited `secret.decrypt`).
async fn api_key(chat: &Chat, plan: &Plan) -> std::result::Result<Option<String>, TurnError> {
    let Some(name) = &plan.llm.api_key_secret else {
        return Ok(None);
    };
    let missing = || {
        TurnError::new(
            "llm_key",
            format!(
                "the API key secret {name} of endpoint {} is gone",
                plan.llm.name
            ),
        )
    };
    let row = {
        let mut c = chat.state.store.conn().await?;
        secrets::find_in_namespace(&mut c, plan.llm.owner_id.as_ref(), name).await?
    }
    .ok_or_else(missing)?;
    let vault = &chat
        .state
        .credentials()
        .map_err(|e| TurnError::new("llm_key", e.to_string()))?
        .vault;
    let v = vault
        .open_by_id(
            &row.meta.id,
            &Actor::agent(
                &plan.agent.id,
                &format!("chat {} llm {}", plan.chat.id, plan.llm.name),
            ),
        )
        .await
        .map_err(|e| {
            TurnError::new(
                "llm_key",
                format!("the API key secret {name} does not open: {e}"),
            )
        })?;
    let key = v.expose_str().ok_or_else(|| {
        TurnError::new("llm_key", format!("the API key secret {name} is not text"))
    })?;
    Ok(Some(key.trim().to_string()))
}

/// The turn's MCP session and the credential it was opened with.
struct Session {
    mcp: Mcp,
    token: toolbelt_model::TokenId,
    agent: toolbelt_model::AgentId,
}

impl Session {
    async fn open(
        chat: &Chat,
        plan: &Plan,
        discovery: Option<Discovery>,
    ) -> std::result::Result<Session, TurnError> {
        let issued = token::issue(TokenKind::Agent);
        let expires = toolbelt_model::now()
            + chrono::Duration::from_std(chat.config.turn_timeout).unwrap_or_default()
            + chrono::Duration::seconds(60);
        let id = {
            let mut c = chat.state.store.conn().await?;
            tokens::insert_chat_token(
                &mut c,
                &issued.digest,
                &plan.agent.id,
                &plan.chat.id,
                discovery,
                expires,
            )
            .await?
        };
        match Mcp::open(chat.mcp.clone(), issued.secret, chat.host.clone()).await {
            Ok(mcp) => Ok(Session {
                mcp,
                token: id,
                agent: plan.agent.id.clone(),
            }),
            Err(e) => {
                forget(chat, &plan.agent.id, &id).await;
                Err(TurnError::new(
                    "gateway",
                    format!("the gateway refused the turn's session: {e}"),
                ))
            }
        }
    }

    async fn tools(&self) -> std::result::Result<Vec<ToolDef>, TurnError> {
        let listed =
            self.mcp.list_tools().await.map_err(|e| {
                TurnError::new("gateway", format!("listing the agent's tools: {e}"))
            })?;
        Ok(listed.iter().filter_map(tools::definition).collect())
    }

    async fn close(&self, chat: &Chat) {
        self.mcp.close().await;
        forget(chat, &self.agent, &self.token).await;
    }
}

async fn forget(chat: &Chat, agent: &toolbelt_model::AgentId, id: &toolbelt_model::TokenId) {
    match chat.state.store.conn().await {
        Ok(mut c) => {
            if let Err(e) = tokens::delete_chat_token(&mut c, agent, id).await {
                tracing::warn!(error = %e, "a chat turn's credential was not deleted (it expires)");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "a chat turn's credential was not deleted (it expires)")
        }
    }
}
