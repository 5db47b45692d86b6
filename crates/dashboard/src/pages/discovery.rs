//! How an agent's tools are shown to it (issue 15), on the agent's page: its discovery mode
//! (`all` | `search`), its always-visible tools, and its toolsets (named subsets, each its
//! own MCP endpoint). The forms call `service::discovery` — the same functions as `PATCH
//! /api/v1/agents/{agent}` and `/api/v1/agents/{agent}/toolsets`.

use super::agents;
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Errors, when};
use axum::extract::{Path, State};
use toolbelt_control::AppState;
use toolbelt_control::service::discovery::{CreateToolset, UpdateAgent};
use toolbelt_control::service::{self, Caller, ServiceError};
use toolbelt_model::FieldError;
use toolbelt_model::agent::Discovery;

pub struct ToolsetRow {
    pub name: String,
    pub path: String,
    pub tools: Vec<String>,
    pub created: String,
}

/// The agent page's discovery section.
#[derive(Default)]
pub struct View {
    pub mode: &'static str,
    pub always_visible: Vec<String>,
    pub toolsets: Vec<ToolsetRow>,
    /// Why the section could not be read (no gateway in this process), else empty.
    pub error: String,
}

impl View {
    pub fn is_always_visible(&self, name: &str) -> bool {
        self.always_visible.iter().any(|n| n == name)
    }
}

pub async fn view(st: &AppState, caller: &Caller, agent: &str) -> View {
    let read = async {
        let d = service::discovery::get(st, caller, agent).await?;
        let sets = service::discovery::list_toolsets(st, caller, agent).await?;
        Ok::<_, ServiceError>(View {
            mode: d.agent.discovery.as_str(),
            always_visible: d.always_visible,
            toolsets: sets
                .into_iter()
                .map(|s| ToolsetRow {
                    created: when(&s.created_at),
                    name: s.name,
                    path: s.path,
                    tools: s.tools,
                })
                .collect(),
            error: String::new(),
        })
    };
    read.await.unwrap_or_else(|e| View {
        mode: "all",
        error: e.to_string(),
        ..View::default()
    })
}

/// The service's field names as the page's forms name their fields: `tools[2]` is the
/// tools checkboxes, and the toolset form's fields are told apart from the others'.
fn errors_of(e: &ServiceError, form: &str) -> Errors {
    let mut errors = Errors::from_service(e);
    errors.fields = errors
        .fields
        .into_iter()
        .map(|f| {
            let base = f.field.split('[').next().unwrap_or("").to_string();
            FieldError {
                field: format!("{form}.{base}"),
                message: f.message,
            }
        })
        .collect();
    errors
}

/// Back to the agent page with the notice, or the page again with the refusal next to its
/// fields.
async fn answer(
    st: &AppState,
    d: &Dash,
    id: &str,
    form: &str,
    res: Result<String, ServiceError>,
) -> PageResult {
    match res {
        Ok(notice) => Ok(super::done(&format!("/agents/{id}"), &notice)),
        Err(e) => {
            agents::refused(st, d, id, Page::from(e.clone()).status, errors_of(&e, form)).await
        }
    }
}

/// `discovery` (`all` | `search`) and the checked `always_visible` tools.
pub async fn save(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    f: Form,
) -> PageResult {
    let a = service::agents::get(&st, &d.caller, &id).await?;
    let res = async {
        let mode = f.text("discovery");
        let discovery = Discovery::parse(&mode)
            .ok_or_else(|| ServiceError::invalid("discovery", "must be all or search"))?;
        let always_visible =
            f.0.iter()
                .filter(|(k, _)| k == "always_visible")
                .map(|(_, v)| v.clone())
                .collect();
        let req = UpdateAgent {
            discovery: Some(discovery),
            always_visible: Some(always_visible),
        };
        let done = service::discovery::update(&st, &d.caller, a.id.as_str(), req).await?;
        Ok::<String, ServiceError>(format!(
            "discovery: {}, {} always visible",
            done.agent.discovery.as_str(),
            done.always_visible.len()
        ))
    }
    .await;
    answer(&st, &d, a.id.as_str(), "discovery", res).await
}

/// A toolset: `name` and the checked `tools`.
pub async fn create_toolset(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    f: Form,
) -> PageResult {
    let a = service::agents::get(&st, &d.caller, &id).await?;
    let req = CreateToolset {
        name: f.text("name"),
        tools: f
            .0
            .iter()
            .filter(|(k, _)| k == "tools")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let res = service::discovery::create_toolset(&st, &d.caller, a.id.as_str(), req)
        .await
        .map(|t| format!("toolset {} created: {}", t.name, t.path));
    answer(&st, &d, a.id.as_str(), "toolset", res).await
}

pub async fn delete_toolset(
    State(st): State<AppState>,
    d: Dash,
    Path((id, name)): Path<(String, String)>,
    _f: Form,
) -> PageResult {
    let a = service::agents::get(&st, &d.caller, &id).await?;
    let t = service::discovery::delete_toolset(&st, &d.caller, a.id.as_str(), &name).await?;
    Ok(super::done(
        &format!("/agents/{}", a.id),
        &format!("toolset {} deleted", t.name),
    ))
}
