//! Tool changes (admins): definitions an upstream changed, or tools that appeared or
//! collided after a server's first discovery, held until an admin decides (prompts and
//! resource templates too, each card saying which). Each shows a
//! line diff of the old and new definition ([`crate::diff`]) and the scanner's flags;
//! approve and reject are form posts to `service::tools::decide`. New ones appear live
//! (the list region is re-read when the event stream says a tool changed).

use crate::diff::{self, Line};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::pages::overview::Notice;
use crate::session::Dash;
use crate::view::{Chrome, ago};
use askama::Template;
use axum::extract::{Path, Query, State};
use toolbelt_control::AppState;
use toolbelt_control::service;
use toolbelt_control::service::tools::{ChangeView, Decision};
use toolbelt_model::gateway::PinKind;

pub struct ChangeCard {
    pub id: String,
    /// `tool`, `prompt` or `resource_template`.
    pub kind: String,
    /// What the kind is called on the page.
    pub kind_label: &'static str,
    pub tool: String,
    pub server: String,
    pub server_id: String,
    /// A tool seen for the first time after discovery: nothing to compare with.
    pub is_new: bool,
    pub flags: Vec<String>,
    /// The top-level fields that differ (`description`, `inputSchema`, …).
    pub fields: Vec<String>,
    pub hunks: Vec<Vec<Line>>,
    pub old: String,
    pub new: String,
    pub seen: String,
}

impl ChangeCard {
    fn of(v: &ChangeView) -> ChangeCard {
        let c = &v.change;
        ChangeCard {
            id: c.id.to_string(),
            kind: c.kind.to_string(),
            kind_label: match c.kind {
                PinKind::Tool => "tool",
                PinKind::Prompt => "prompt",
                PinKind::ResourceTemplate => "resource template",
            },
            tool: c.tool.clone(),
            server: if v.server_name.is_empty() {
                c.server_id.to_string()
            } else {
                v.server_name.clone()
            },
            server_id: c.server_id.to_string(),
            is_new: c.old_definition.is_none(),
            flags: c.flags.clone(),
            fields: v.diff.iter().map(|d| d.field.clone()).collect(),
            hunks: diff::hunks(c.old_definition.as_ref(), &c.new_definition),
            old: diff::pretty(c.old_definition.as_ref()),
            new: diff::pretty(Some(&c.new_definition)),
            seen: ago(&c.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "tool_changes.html")]
struct ChangesPage {
    c: Chrome,
    changes: Vec<ChangeCard>,
}

pub async fn list(State(st): State<AppState>, d: Dash, Query(n): Query<Notice>) -> PageResult {
    let list = service::tools::changes(&st, &d.caller, false).await?;
    super::render(&ChangesPage {
        c: Chrome::new(&d, "tool-changes").with_notice(n.done),
        changes: list.iter().map(ChangeCard::of).collect(),
    })
}

pub async fn decide(
    State(st): State<AppState>,
    d: Dash,
    Path((id, decision)): Path<(String, String)>,
    _f: Form,
) -> PageResult {
    let dec = match decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        _ => return Err(Page::not_found("decision")),
    };
    let v = service::tools::decide(&st, &d.caller, &id, dec).await?;
    Ok(super::done(
        "/tool-changes",
        &format!(
            "{} on {}: change {}",
            v.change.tool,
            v.server_name,
            v.change.status.as_str()
        ),
    ))
}
