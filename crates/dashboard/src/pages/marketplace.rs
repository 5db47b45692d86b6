//! The Marketplace (the catalog): searchable, filterable cards, an entry's page, and its
//! Deploy form ([`super::deploy`]). Filtering only narrows what the catalog service
//! returned to the caller; deploying is the servers service's, rules and all.

use super::deploy::{self, ConfigField, OAuthPicker, SecretField};
use super::deploy_submit::{self, Deployed};
use crate::error::PageResult;
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Chrome, Errors};
use askama::Template;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use toolbelt_control::AppState;
use toolbelt_control::service::toolboxes::may_manage;
use toolbelt_control::service::{self, Paging};
use toolbelt_model::catalog::{CatalogEntry, CatalogSource};
use toolbelt_model::oauth::ConnectionStatus;

pub struct Card {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub transport: &'static str,
    pub source: &'static str,
    pub status: &'static str,
    pub notes: String,
}

fn source_of(e: &CatalogEntry) -> &'static str {
    match e.spec.source {
        CatalogSource::Image { .. } => "image",
        CatalogSource::Package { .. } => "package",
        CatalogSource::Remote { .. } => "remote",
    }
}

impl Card {
    fn of(e: &CatalogEntry) -> Card {
        Card {
            slug: e.spec.slug.clone(),
            title: if e.spec.display_name.is_empty() {
                e.spec.slug.clone()
            } else {
                e.spec.display_name.clone()
            },
            description: e.spec.description.clone(),
            transport: e.spec.transport.as_str(),
            source: source_of(e),
            status: e.spec.status.as_str(),
            notes: e.spec.notes.clone(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    transport: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    status: String,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "marketplace.html")]
pub(crate) struct ListPage {
    c: Chrome,
    cards: Vec<Card>,
    total: usize,
    q: String,
    transport: String,
    source: String,
    status: String,
    /// Admins: the add-an-entry form (its text and errors after a refusal).
    add: super::catalog_admin::AddForm,
}

pub async fn list(State(st): State<AppState>, d: Dash, Query(f): Query<Filter>) -> PageResult {
    let c = Chrome::new(&d, "marketplace").with_notice(f.done.clone());
    super::render(&list_page(&st, &d, c, f, Default::default()).await?)
}

/// The cards the filter keeps, with the add form (admins) in the state given.
pub(crate) async fn list_page(
    st: &AppState,
    d: &Dash,
    c: Chrome,
    f: Filter,
    add: super::catalog_admin::AddForm,
) -> PageResult<ListPage> {
    let all = Paging {
        limit: Some(1000),
        cursor: None,
    };
    let deprecated = f.status == "deprecated";
    let entries = service::catalog::list(st, &d.caller, deprecated, &all).await?;
    let q = f.q.trim().to_lowercase();
    let total = entries.items.len();
    let cards = entries
        .items
        .iter()
        .map(Card::of)
        .filter(|c| {
            (q.is_empty()
                || c.slug.to_lowercase().contains(&q)
                || c.title.to_lowercase().contains(&q)
                || c.description.to_lowercase().contains(&q))
                && (f.transport.is_empty() || c.transport == f.transport)
                && (f.source.is_empty() || c.source == f.source)
                && (f.status.is_empty() || c.status == f.status)
        })
        .collect();
    Ok(ListPage {
        c,
        cards,
        total,
        q: f.q,
        transport: f.transport,
        source: f.source,
        status: f.status,
        add,
    })
}

pub struct ToolboxOption {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "entry.html")]
struct EntryPage {
    c: Chrome,
    e: Card,
    source_detail: String,
    oauth: String,
    limits: String,
    errors: Errors,
    name: String,
    toolboxes: Vec<ToolboxOption>,
    config: Vec<ConfigField>,
    secrets: Vec<SecretField>,
    secret_names: Vec<String>,
    oauth_picker: Option<OAuthPicker>,
}

async fn entry_page(
    st: &AppState,
    d: &Dash,
    slug: &str,
    posted: Option<&Form>,
    errors: Errors,
) -> PageResult<EntryPage> {
    let e = service::catalog::get(st, &d.caller, slug).await?;
    let all = Paging {
        limit: Some(1000),
        cursor: None,
    };
    let chosen = posted.map(|f| f.text("toolbox")).unwrap_or_default();
    // Offer the toolboxes the caller may deploy on (the service decides again on post).
    let toolboxes = service::toolboxes::list(st, &d.caller, &all)
        .await?
        .items
        .into_iter()
        .filter(|t| may_manage(&d.caller, t))
        .map(|t| ToolboxOption {
            selected: chosen == t.id.as_str(),
            label: format!("{}{}", t.name, if t.shared { " (shared)" } else { "" }),
            id: t.id.to_string(),
        })
        .collect();
    // Without a vault there are no secrets to pick; the form still renders.
    let secret_names = match service::secrets::list(st, &d.caller, &all).await {
        Ok(p) => p.items.into_iter().map(|s| s.name).collect(),
        Err(_) => Vec::new(),
    };
    // The OAuth picker: the provider's default scopes (None: not configured here) and
    // whether the caller holds an active connection to it already.
    let (provider_defaults, connected) = match &e.spec.oauth {
        Some(o) => {
            let defaults = service::oauth::get_provider(st, &d.caller, &o.provider)
                .await
                .ok()
                .map(|p| p.default_scopes);
            let connected = match service::oauth::list_connections(st, &d.caller, &all).await {
                Ok(p) => p.items.iter().any(|k| {
                    &k.owner_id == d.caller.id()
                        && k.provider.as_str() == o.provider
                        && k.status == ConnectionStatus::Active
                }),
                Err(_) => false,
            };
            (defaults, connected)
        }
        None => (None, false),
    };
    let source_detail = match &e.spec.source {
        CatalogSource::Image { image, .. } => format!("image {image}"),
        CatalogSource::Package {
            manager, package, ..
        } => format!("{} package {package}", manager.as_str()),
        CatalogSource::Remote { url } => format!("remote {url}"),
    };
    Ok(EntryPage {
        c: Chrome::new(d, "marketplace"),
        source_detail,
        oauth: e
            .spec
            .oauth
            .as_ref()
            .map(|o| format!("{} ({})", o.provider, o.scopes.join(" ")))
            .unwrap_or_default(),
        limits: format!(
            "{} MiB, {} CPU, {} processes",
            e.spec.limits.memory_mb, e.spec.limits.cpus, e.spec.limits.pids
        ),
        config: deploy::config_fields(&e.spec, posted, &errors),
        secrets: deploy::secret_fields(&e.spec, posted, &errors),
        oauth_picker: deploy::oauth_picker(
            &e.spec,
            provider_defaults.as_deref(),
            connected,
            posted,
            &errors,
        ),
        name: posted.map(|f| f.text("name")).unwrap_or_default(),
        e: Card::of(&e),
        errors,
        toolboxes,
        secret_names,
    })
}

pub async fn entry(
    State(st): State<AppState>,
    d: Dash,
    Path(slug): Path<String>,
    Query(n): Query<super::overview::Notice>,
) -> PageResult {
    let mut page = entry_page(&st, &d, &slug, None, Errors::default()).await?;
    page.c = page.c.with_notice(n.done);
    super::render(&page)
}

/// Deploys the entry ([`deploy_submit`]); on to the server's page, or to the provider's
/// to connect the account the form asked to connect. A refusal re-renders the form with
/// what was posted and each error at its field (never a typed secret value).
pub async fn deploy(
    State(st): State<AppState>,
    d: Dash,
    Path(slug): Path<String>,
    f: Form,
) -> PageResult {
    let e = service::catalog::get(&st, &d.caller, &slug).await?;
    match deploy_submit::submit(&st, &d, &e.spec, &f).await {
        Ok(Deployed { server: s, connect }) => {
            let at = format!("/servers/{}", s.id);
            let notice = format!("server {} deployed on {}", s.name, s.toolbox_name);
            Ok(match connect {
                None => super::done(&at, &notice),
                Some(Ok(url)) => super::connections::to_provider(url),
                Some(Err(err)) => super::done(
                    &at,
                    &format!("{notice}; connecting your account did not start: {err}"),
                ),
            })
        }
        Err(r) => {
            let page = entry_page(&st, &d, &slug, Some(&f), r.errors).await?;
            let mut res = super::render(&page)?;
            *res.status_mut() = r.status;
            Ok(res)
        }
    }
}
