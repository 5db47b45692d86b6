//! A turn of the chat page without JavaScript that stops for an `ask` (issue 10). The
//! message post follows the turn's events; at `approval_required` it parks the running turn
//! here (it keeps running: the gateway holds the call) and answers the page with the turn
//! so far and Approve/Deny form posts. The decision post decides the approval through the
//! approvals service — the Approvals page's own call — takes the turn back and follows it to
//! its end (the stored transcript) or to its next approval. With JavaScript the page
//! streams instead (`chat.js`) and never parks.

use super::chat::{Shown, chrome, failed_status, own_agent, page};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use toolbelt_chat::Chat as Runtime;
use toolbelt_chat::events::ChatEvent;
use toolbelt_chat::service::run::TurnStream;
use toolbelt_control::AppState;
use toolbelt_control::service::approvals::Decision;
use toolbelt_control::service::{self, ServiceError};
use toolbelt_model::UserId;
use toolbelt_model::agent::Agent;

/// One step of a running turn as the page shows it.
#[derive(Clone)]
pub struct LiveStep {
    pub id: String,
    pub call: String,
    /// "" until the result came.
    pub result: String,
    pub is_error: bool,
    /// "approved: …" / "denied: …" once decided here.
    pub decided: String,
}

/// A call waiting for the owner.
#[derive(Clone)]
pub struct Waiting {
    pub approval_id: String,
    /// `tool(arguments)`.
    pub call: String,
}

/// The running turn, as far as it went.
#[derive(Clone, Default)]
pub struct LiveTurn {
    pub user: String,
    pub steps: Vec<LiveStep>,
    pub answer: String,
    pub waiting: Option<Waiting>,
}

impl LiveTurn {
    fn see(&mut self, e: &ChatEvent) {
        match e {
            ChatEvent::Text { delta } => self.answer.push_str(delta),
            ChatEvent::ToolCall {
                id,
                name,
                arguments,
            } => self.steps.push(LiveStep {
                id: id.clone(),
                call: format!("{name}({arguments})"),
                result: String::new(),
                is_error: false,
                decided: String::new(),
            }),
            ChatEvent::ToolResult { id, is_error, text } => {
                if let Some(s) = self.steps.iter_mut().find(|s| &s.id == id) {
                    s.result = text.chars().take(4000).collect();
                    s.is_error = *is_error;
                }
            }
            ChatEvent::ApprovalRequired {
                approval_id,
                tool,
                arguments,
            } => {
                self.waiting = Some(Waiting {
                    approval_id: approval_id.clone(),
                    call: format!("{tool}({arguments})"),
                });
            }
            _ => {}
        }
    }
}

/// Turns parked at an approval, by chat id (one running turn per conversation here).
#[derive(Clone, Default)]
pub struct Parked(Arc<Mutex<HashMap<String, ParkedTurn>>>);

struct ParkedTurn {
    owner: UserId,
    turn: TurnStream,
    live: LiveTurn,
    since: Instant,
}

impl Parked {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ParkedTurn>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parks `turn`. Turns older than a whole turn's timeout are done by now (the runtime
    /// ends every turn by then): they are dropped, so an abandoned page holds nothing.
    fn park(&self, rt: &Runtime, owner: &UserId, turn: TurnStream, live: LiveTurn) {
        let mut m = self.lock();
        m.retain(|_, p| p.since.elapsed() < rt.config.turn_timeout);
        let chat = turn.chat.id.to_string();
        m.insert(
            chat,
            ParkedTurn {
                owner: owner.clone(),
                turn,
                live,
                since: Instant::now(),
            },
        );
    }

    /// The caller's parked turn of `chat`, taken out.
    fn take(&self, owner: &UserId, chat: &str) -> Option<(TurnStream, LiveTurn)> {
        let mut m = self.lock();
        if m.get(chat).is_some_and(|p| &p.owner == owner) {
            m.remove(chat).map(|p| (p.turn, p.live))
        } else {
            None
        }
    }
}

/// Reads the turn's events into `live` until its last event, or until it waits for an
/// approval (`None`).
async fn follow(turn: &mut TurnStream, live: &mut LiveTurn) -> Option<ChatEvent> {
    loop {
        match turn.events.recv().await {
            Some(e) if e.is_final() => return Some(e),
            Some(e @ ChatEvent::ApprovalRequired { .. }) => {
                live.see(&e);
                return None;
            }
            Some(e) => live.see(&e),
            None => {
                return Some(ChatEvent::Error {
                    code: "internal",
                    message: "the turn ended without a result".into(),
                });
            }
        }
    }
}

/// Follows a started (or resumed) turn of `a` to the page it ends on: the stored
/// transcript, the failure, or — parked — the call waiting for approval.
pub async fn run_to_page(
    rt: &Runtime,
    parked: &Parked,
    d: &Dash,
    a: &Agent,
    mut turn: TurnStream,
    mut live: LiveTurn,
    text: &str,
) -> PageResult {
    let chat = turn.chat.id.to_string();
    let Some(last) = follow(&mut turn, &mut live).await else {
        let shown = Shown {
            current: chat,
            ..Shown::default()
        };
        // The page's own state of the turn, then parked (the turn goes on meanwhile).
        let view = live.clone();
        parked.park(rt, d.caller.id(), turn, live);
        let mut res = render_live(rt, d, a, shown, view).await?;
        *res.status_mut() = StatusCode::ACCEPTED;
        return Ok(res);
    };
    match last {
        ChatEvent::Error { code, message } => {
            let shown = Shown {
                current: chat,
                text: text.to_string(),
                turn_error: format!("{code}: {message}"),
                ..Shown::default()
            };
            let mut res = super::render(&page(rt, d, a, chrome(d, None), shown).await?)?;
            *res.status_mut() = failed_status(code);
            Ok(res)
        }
        _ => Ok(super::done(
            &format!("/agents/{}/chat?chat={chat}", a.id),
            "answered",
        )),
    }
}

async fn render_live(
    rt: &Runtime,
    d: &Dash,
    a: &Agent,
    shown: Shown,
    view: LiveTurn,
) -> PageResult<Response> {
    let mut p = page(rt, d, a, chrome(d, None), shown).await?;
    p.live = Some(view);
    super::render(&p)
}

/// Approve or Deny on a parked turn's page: the approvals service decides (as on the
/// Approvals page), then the turn is followed on.
pub async fn decide(
    State(st): State<AppState>,
    Extension(rt): Extension<Runtime>,
    Extension(parked): Extension<Parked>,
    d: Dash,
    Path(id): Path<String>,
    f: Form,
) -> PageResult {
    let a = own_agent(&st, &d, &id).await?;
    let chat = f.text("chat");
    let dec = match f.text("decision").as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        _ => return Err(ServiceError::invalid("decision", "approve or deny").into()),
    };
    let decided = service::approvals::decide(&st, &d.caller, &f.text("approval"), dec).await;
    let Some((turn, mut live)) = parked.take(d.caller.id(), &chat) else {
        // Not parked here (decided elsewhere meanwhile, or the server restarted): the
        // decision stands or its refusal shows; the conversation's page has the rest.
        let a2 = decided?;
        let to = if chat.is_empty() {
            format!("/agents/{}/chat", a.id)
        } else {
            format!("/agents/{}/chat?chat={chat}", a.id)
        };
        return Ok(super::done(
            &to,
            &format!("{} {}", a2.tool, a2.status.as_str()),
        ));
    };
    let note = match &decided {
        Ok(ap) => format!("{}: ", ap.status.as_str()),
        Err(e) => format!("not decided ({e}): "),
    };
    if let Some(w) = live.waiting.take() {
        // The held call's step: the same `tool(arguments)`, else the last one unanswered.
        let steps = &live.steps;
        let at = steps
            .iter()
            .rposition(|s| s.call == w.call && s.result.is_empty())
            .or_else(|| {
                steps
                    .iter()
                    .rposition(|s| s.result.is_empty() && s.decided.is_empty())
            });
        if let Some(i) = at {
            live.steps[i].decided = format!("{note}{}", w.call);
        }
    }
    if let Err(e @ ServiceError::NotFound(_)) = decided {
        // Not the caller's approval: the turn is left as it was.
        parked.park(&rt, d.caller.id(), turn, live);
        return Err(Page::from(e));
    }
    let user = live.user.clone();
    run_to_page(&rt, &parked, &d, &a, turn, live, &user).await
}
