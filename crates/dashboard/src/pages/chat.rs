//! Chat with one of your agents (issue 10): `/agents/{id}/chat` lists your conversations
//! with it, shows one's transcript and takes a message. Without JavaScript the message form
//! runs the turn here and redirects back to the stored transcript (post/redirect/get); with
//! it, `assets/chat.js` posts the same form to `/agents/{id}/chat/stream` and reads the
//! turn's events as they come — the same stream `POST /api/v1/chats/{id}/messages` answers,
//! from the same service, so closing it cancels the turn as in the CLI.
//!
//! A no-JavaScript turn that stops for an `ask` is parked (`chat_live`) and the page shows
//! Approve/Deny form posts; the settings form is `chat_settings`'s.
//!
//! Only the agent's owner chats with it (the turn's credential is minted for the owner's
//! agent): anyone else's agent — an admin's look at a member's included — is 404 here.

use super::chat_live::{LiveTurn, Parked, run_to_page};
use super::chat_settings::SettingsForm;
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Chrome, Errors, ago, when};
use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use toolbelt_chat::Chat as Runtime;
use toolbelt_chat::service::chats::CreateChat;
use toolbelt_chat::service::run::{PostMessage, TurnStream};
use toolbelt_chat::service::{chats, run, settings};
use toolbelt_control::AppState;
use toolbelt_control::service::{self, ServiceError};
use toolbelt_model::agent::Agent;
use toolbelt_model::chat::{Chat as ChatInfo, TurnRecord};

/// The response header naming the conversation a streamed turn belongs to (a new one is
/// made when the form names none).
pub const CHAT_HEADER: &str = "x-toolbelt-chat";

#[derive(Debug, Default, Deserialize)]
pub struct Pick {
    pub chat: Option<String>,
    pub done: Option<String>,
}

pub struct ChatRow {
    pub id: String,
    pub turns: u32,
    pub created: String,
    pub updated: String,
    pub current: bool,
}

pub struct CallView {
    pub name: String,
    pub arguments: String,
    pub is_error: bool,
    pub text: String,
}

pub struct TurnView {
    pub user: String,
    pub answer: String,
    pub calls: Vec<CallView>,
    pub usage: String,
}

impl TurnView {
    fn of(t: TurnRecord) -> TurnView {
        TurnView {
            usage: format!("{} in, {} out", t.usage.input_tokens, t.usage.output_tokens),
            calls: t
                .tool_calls
                .into_iter()
                .map(|c| CallView {
                    arguments: c.arguments.to_string(),
                    name: c.name,
                    is_error: c.is_error,
                    text: c.text.chars().take(4000).collect(),
                })
                .collect(),
            user: t.user,
            answer: t.answer,
        }
    }
}

#[derive(Template)]
#[template(path = "chat.html")]
pub(super) struct ChatPage {
    c: Chrome,
    agent_id: String,
    agent_name: String,
    /// "model M on endpoint E", or empty when the agent has no chat settings.
    settings: String,
    chats: Vec<ChatRow>,
    /// The conversation shown (empty: a new one starts with the next message).
    current: String,
    turns: Vec<TurnView>,
    /// The message box's text (kept when a turn failed).
    text: String,
    /// How the last turn failed (`code: message`).
    turn_error: String,
    errors: Errors,
    /// The settings form (saved values, or posted ones with their refusal).
    sf: SettingsForm,
    /// A turn waiting for an approval (no JavaScript): shown with Approve/Deny forms.
    pub(super) live: Option<LiveTurn>,
}

/// The caller's own agent; anyone else's is "not found".
pub(super) async fn own_agent(st: &AppState, d: &Dash, id: &str) -> PageResult<Agent> {
    let a = service::agents::get(st, &d.caller, id).await?;
    if &a.owner_id != d.caller.id() {
        return Err(Page::not_found(&format!("agent {id}")));
    }
    Ok(a)
}

/// The caller's conversation `r` with agent `a` (another agent's is "not found").
async fn own_chat(rt: &Runtime, d: &Dash, a: &Agent, r: &str) -> Result<ChatInfo, ServiceError> {
    let ch = chats::info(rt, &d.caller, r).await?;
    if ch.agent_id != a.id {
        return Err(ServiceError::not_found(format!("chat {r}")));
    }
    Ok(ch)
}

/// What a page shows beyond the stored state.
#[derive(Default)]
pub(super) struct Shown {
    pub current: String,
    pub text: String,
    pub turn_error: String,
    pub errors: Errors,
    /// Posted settings and their refusal (else the saved ones).
    pub settings: Option<SettingsForm>,
}

pub(super) async fn page(
    rt: &Runtime,
    d: &Dash,
    a: &Agent,
    c: Chrome,
    s: Shown,
) -> PageResult<ChatPage> {
    let settings = match settings::get(rt, &d.caller, a.id.as_str()).await {
        Ok(s) => format!(
            "model {} on endpoint {}",
            s.model.as_deref().unwrap_or("(the endpoint's default)"),
            s.llm
        ),
        Err(ServiceError::NotFound(_)) => String::new(),
        Err(e) => return Err(e.into()),
    };
    let sf = match s.settings {
        Some(f) => f,
        None => SettingsForm::saved(rt, &d.caller, a).await?,
    };
    let mine: Vec<ChatInfo> = chats::list(rt, &d.caller)
        .await?
        .into_iter()
        .filter(|ch| ch.agent_id == a.id)
        .collect();
    let turns = if s.current.is_empty() {
        Vec::new()
    } else {
        own_chat(rt, d, a, &s.current).await?;
        chats::transcript(rt, &d.caller, &s.current)
            .await?
            .turns
            .into_iter()
            .map(TurnView::of)
            .collect()
    };
    Ok(ChatPage {
        c,
        agent_id: a.id.to_string(),
        agent_name: a.name.to_string(),
        settings,
        chats: mine
            .iter()
            .map(|ch| ChatRow {
                id: ch.id.to_string(),
                turns: ch.turns,
                created: when(&ch.created_at),
                updated: ago(&ch.updated_at),
                current: ch.id.as_str() == s.current,
            })
            .collect(),
        current: s.current,
        turns,
        text: s.text,
        turn_error: s.turn_error,
        errors: s.errors,
        sf,
        live: None,
    })
}

pub(super) fn chrome(d: &Dash, notice: Option<String>) -> Chrome {
    Chrome::new(d, "agents").with_notice(notice)
}

pub async fn show(
    State(st): State<AppState>,
    Extension(rt): Extension<Runtime>,
    d: Dash,
    Path(id): Path<String>,
    Query(p): Query<Pick>,
) -> PageResult {
    let a = own_agent(&st, &d, &id).await?;
    let s = Shown {
        current: p.chat.unwrap_or_default(),
        ..Shown::default()
    };
    super::render(&page(&rt, &d, &a, chrome(&d, p.done), s).await?)
}

/// Starts a turn of the form's conversation, or of a new one when it names none (made only
/// once the message and the agent's settings would be accepted, so a refusal leaves no
/// empty conversation behind).
async fn start(
    rt: &Runtime,
    d: &Dash,
    a: &Agent,
    f: &Form,
) -> Result<(ChatInfo, TurnStream), ServiceError> {
    let text = f.get("text").unwrap_or("").to_string();
    let ch = match f.text("chat") {
        r if r.is_empty() => {
            if text.trim().is_empty() {
                return Err(ServiceError::invalid("text", "must not be empty"));
            }
            if let Err(ServiceError::NotFound(_)) =
                settings::get(rt, &d.caller, a.id.as_str()).await
            {
                return Err(ServiceError::conflict(format!(
                    "agent {} has no chat settings yet: set its LLM endpoint first",
                    a.name
                )));
            }
            let req = CreateChat {
                agent: a.id.to_string(),
            };
            chats::create(rt, &d.caller, req).await?
        }
        r => own_chat(rt, d, a, &r).await?,
    };
    let turn = run::post_message(rt, &d.caller, ch.id.as_str(), PostMessage { text }).await?;
    Ok((ch, turn))
}

/// The status of a page whose turn failed with `code`.
pub(super) fn failed_status(code: &str) -> StatusCode {
    match code {
        "budget_exhausted" => StatusCode::TOO_MANY_REQUESTS,
        "turn_timeout" => StatusCode::GATEWAY_TIMEOUT,
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The message form without JavaScript: the turn runs within this request, then back to
/// the stored transcript; a call held by `ask` answers the page with Approve/Deny forms
/// (`chat_live`) while the turn waits.
pub async fn post(
    State(st): State<AppState>,
    Extension(rt): Extension<Runtime>,
    Extension(parked): Extension<Parked>,
    d: Dash,
    Path(id): Path<String>,
    f: Form,
) -> PageResult {
    let a = own_agent(&st, &d, &id).await?;
    let text = f.get("text").unwrap_or("").to_string();
    let turn = match start(&rt, &d, &a, &f).await {
        Ok((_, t)) => t,
        Err(e @ ServiceError::NotFound(_)) => return Err(e.into()),
        Err(e) => {
            let status = Page::from(e.clone()).status;
            let shown = Shown {
                current: f.text("chat"),
                text,
                errors: Errors::from_service(&e),
                ..Shown::default()
            };
            let mut res = super::render(&page(&rt, &d, &a, chrome(&d, None), shown).await?)?;
            *res.status_mut() = status;
            return Ok(res);
        }
    };
    let live = LiveTurn {
        user: text.clone(),
        ..LiveTurn::default()
    };
    run_to_page(&rt, &parked, &d, &a, turn, live, &text).await
}

/// The message form with JavaScript: the turn's events as `text/event-stream`, exactly as
/// the REST API streams them; the conversation's id in [`CHAT_HEADER`]. A refusal before
/// the turn starts is an error page with its status.
pub async fn stream(
    State(st): State<AppState>,
    Extension(rt): Extension<Runtime>,
    d: Dash,
    Path(id): Path<String>,
    f: Form,
) -> PageResult {
    let a = own_agent(&st, &d, &id).await?;
    let (ch, turn) = start(&rt, &d, &a, &f).await?;
    let mut res: Response = toolbelt_chat::api::event_stream(turn);
    if let Ok(v) = HeaderValue::from_str(ch.id.as_str()) {
        res.headers_mut().insert(CHAT_HEADER, v);
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "chat_delete.html")]
struct ConfirmDelete {
    c: Chrome,
    agent_id: String,
    agent_name: String,
    chat: ChatRow,
}

pub async fn confirm_delete(
    State(st): State<AppState>,
    Extension(rt): Extension<Runtime>,
    d: Dash,
    Path((id, chat)): Path<(String, String)>,
) -> PageResult {
    let a = own_agent(&st, &d, &id).await?;
    let ch = own_chat(&rt, &d, &a, &chat).await?;
    super::render(&ConfirmDelete {
        c: chrome(&d, None),
        agent_id: a.id.to_string(),
        agent_name: a.name.to_string(),
        chat: ChatRow {
            id: ch.id.to_string(),
            turns: ch.turns,
            created: when(&ch.created_at),
            updated: ago(&ch.updated_at),
            current: true,
        },
    })
}

pub async fn delete(
    State(st): State<AppState>,
    Extension(rt): Extension<Runtime>,
    d: Dash,
    Path((id, chat)): Path<(String, String)>,
    _f: Form,
) -> PageResult {
    let a = own_agent(&st, &d, &id).await?;
    let ch = own_chat(&rt, &d, &a, &chat).await?;
    chats::delete(&rt, &d.caller, ch.id.as_str()).await?;
    Ok(super::done(
        &format!("/agents/{}/chat", a.id),
        "conversation deleted",
    ))
}
