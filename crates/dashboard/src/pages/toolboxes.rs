//! Toolboxes: the list with a create form (private, or shared for admins; a `remote`
//! toolbox for URL servers), one toolbox's page with its servers, the join command with
//! its one-time token, and delete behind a confirmation page.

use super::overview::{Notice, ToolboxRow};
use super::servers::{DetailQuery, ranges};
use super::servers::{ServerRow, rows};
use crate::charts::series::{self, Of, Window};
use crate::charts::{Figure, Range};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Chrome, Errors, when};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use toolbelt_control::AppState;
use toolbelt_control::service::toolboxes::CreateToolbox;
use toolbelt_control::service::{self, Paging};
use toolbelt_model::toolbox::ToolboxKind;

#[derive(Template)]
#[template(path = "toolboxes.html")]
struct ListPage {
    c: Chrome,
    toolboxes: Vec<ToolboxRow>,
    errors: Errors,
    name: String,
}

async fn list_page(
    st: &AppState,
    d: &Dash,
    c: Chrome,
    errors: Errors,
    name: String,
) -> PageResult<ListPage> {
    let all = Paging {
        limit: Some(1000),
        cursor: None,
    };
    let t = service::toolboxes::list(st, &d.caller, &all).await?;
    Ok(ListPage {
        c,
        toolboxes: t.items.iter().map(ToolboxRow::of).collect(),
        errors,
        name,
    })
}

pub async fn list(State(st): State<AppState>, d: Dash, Query(n): Query<Notice>) -> PageResult {
    let c = Chrome::new(&d, "toolboxes").with_notice(n.done);
    super::render(&list_page(&st, &d, c, Errors::default(), String::new()).await?)
}

pub async fn create(State(st): State<AppState>, d: Dash, f: Form) -> PageResult {
    let req = CreateToolbox {
        name: f.text("name"),
        shared: f.checked("shared"),
        kind: f.checked("remote").then_some(ToolboxKind::Remote),
        allowed_registries: Vec::new(),
    };
    match service::toolboxes::create(&st, &d.caller, req).await {
        Ok(t) => Ok(super::done(
            &format!("/toolboxes/{}", t.id),
            &format!("toolbox {} created", t.name),
        )),
        Err(e) => {
            let errors = Errors::from_service(&e);
            let status = Page::from(e).status;
            let c = Chrome::new(&d, "toolboxes");
            let mut res = super::render(&list_page(&st, &d, c, errors, f.text("name")).await?)?;
            *res.status_mut() = status;
            Ok(res)
        }
    }
}

#[derive(Template)]
#[template(path = "toolbox.html")]
struct DetailPage {
    c: Chrome,
    t: ToolboxRow,
    kind: &'static str,
    version: String,
    isolation: String,
    servers: Vec<ServerRow>,
    remote: bool,
    join: Option<Join>,
    figures: Vec<Figure>,
    ranges: Vec<(&'static str, &'static str)>,
}

pub struct Join {
    pub token: String,
    pub expires: String,
    pub command: String,
}

async fn detail_page(
    st: &AppState,
    d: &Dash,
    id: &str,
    c: Chrome,
    join: Option<Join>,
    range: Range,
) -> PageResult<DetailPage> {
    let t = service::toolboxes::get(st, &d.caller, id).await?;
    let window = Window::new(range, toolbelt_store::metrics::this_minute());
    let res =
        service::activity::toolbox_resources(st, &d.caller, t.id.as_str(), range.minutes()).await?;
    let page = Paging {
        limit: Some(1000),
        cursor: None,
    };
    let servers = service::servers::list(st, &d.caller, Some(t.id.as_str()), &page).await?;
    Ok(DetailPage {
        c,
        kind: t.kind.map(|k| k.as_str()).unwrap_or("not joined yet"),
        version: t
            .report
            .as_ref()
            .map(|r| r.version.clone())
            .unwrap_or_default(),
        isolation: t
            .isolation
            .map(|i| i.as_str().to_string())
            .unwrap_or_default(),
        remote: t.kind == Some(ToolboxKind::Remote),
        t: ToolboxRow::of(&t),
        servers: rows(&servers.items),
        join,
        figures: series::resource_figures(&window, &res, Of::Toolbox),
        ranges: ranges(range),
    })
}

pub async fn detail(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> PageResult {
    let c = Chrome::new(&d, "toolboxes").with_notice(q.done);
    let range = Range::parse(q.range.as_deref());
    super::render(&detail_page(&st, &d, &id, c, None, range).await?)
}

/// A one-time join token, shown once on the toolbox's page with the command to run.
pub async fn join_token(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    headers: HeaderMap,
    _f: Form,
) -> PageResult {
    let j = service::toolboxes::join_token(&st, &d.caller, &id).await?;
    let base = super::agents::base_url(&st, &headers);
    let join = Join {
        command: format!("toolbelt dtma --server {base} --join-token {}", j.token),
        expires: when(&j.expires_at),
        token: j.token,
    };
    let c = Chrome::new(&d, "toolboxes");
    super::render(&detail_page(&st, &d, j.toolbox_id.as_str(), c, Some(join), Range::Hour).await?)
}

#[derive(Template)]
#[template(path = "toolbox_delete.html")]
struct ConfirmDelete {
    c: Chrome,
    t: ToolboxRow,
}

pub async fn confirm_delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
) -> PageResult {
    let t = service::toolboxes::get(&st, &d.caller, &id).await?;
    super::render(&ConfirmDelete {
        c: Chrome::new(&d, "toolboxes"),
        t: ToolboxRow::of(&t),
    })
}

pub async fn delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    let t = service::toolboxes::delete(&st, &d.caller, &id).await?;
    Ok(super::done(
        "/toolboxes",
        &format!("toolbox {} deleted", t.name),
    ))
}
