//! Admin (admins only; a member gets 403, as from the API): users ([`users`]: create with
//! a role, change a role, delete behind a confirmation page), OAuth providers
//! ([`providers`]: add, delete) and the vault's key-encryption keys ([`vault`]: the keys
//! and how many secrets each wraps, rotate). One page, `/admin`, shows all three; a form
//! that is refused re-renders it with the errors next to that form's fields.

pub mod providers;
pub mod users;
pub mod vault;

use crate::error::PageResult;
use crate::pages::overview::Notice;
use crate::session::Dash;
use crate::view::{Chrome, Errors, when};
use askama::Template;
use axum::extract::{Query, State};
use toolbelt_control::AppState;
use toolbelt_control::service::{self, Paging};
use toolbelt_model::oauth::Provider;
use toolbelt_model::user::User;

/// Every admin page starts here: the service's own role check, so a member's GET is 403
/// even where the service would show them something of their own.
pub(crate) fn admin_only(d: &Dash) -> PageResult<()> {
    Ok(d.caller.require_admin("use the admin pages")?)
}

/// An email as an element id: `ann@example.com` → `ann-example-com`.
pub fn key_of(email: &str) -> String {
    email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

pub struct UserRow {
    pub id: String,
    pub key: String,
    pub email: String,
    pub role: &'static str,
    pub created: String,
    /// The signed-in admin: no role change or delete offered (the service refuses both).
    pub me: bool,
}

impl UserRow {
    pub fn of(u: &User, me: &str) -> UserRow {
        UserRow {
            id: u.id.to_string(),
            key: key_of(&u.email),
            email: u.email.clone(),
            role: u.role.as_str(),
            created: when(&u.created_at),
            me: u.id.as_str() == me,
        }
    }
}

pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub endpoint: String,
    pub client_id: String,
    pub scopes: String,
    pub public: bool,
}

impl ProviderRow {
    fn of(p: &Provider) -> ProviderRow {
        ProviderRow {
            id: p.id.to_string(),
            name: p.name.to_string(),
            kind: p.kind.as_str(),
            endpoint: p
                .issuer
                .clone()
                .unwrap_or_else(|| p.authorization_endpoint.clone()),
            client_id: p.client_id.clone(),
            scopes: p.default_scopes.join(" "),
            public: p.client_secret_id.is_none(),
        }
    }
}

/// What the user form shows: posted values and errors, or the new user's token once.
#[derive(Default)]
pub struct UserForm {
    pub errors: Errors,
    pub email: String,
    pub role: String,
    pub created: Option<(String, String)>,
}

/// The provider form's posted values (never the client secret) and errors.
#[derive(Default)]
pub struct ProviderForm {
    pub errors: Errors,
    pub name: String,
    pub kind: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub client_id: String,
    pub scopes: String,
}

pub const PROVIDER_KINDS: [&str; 5] = ["github", "google", "microsoft", "slack", "custom"];

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    c: Chrome,
    users: Vec<UserRow>,
    user: UserForm,
    providers: Vec<ProviderRow>,
    provider: ProviderForm,
    kinds: [&'static str; 5],
    vault: vault::VaultSection,
}

/// The page with these forms' states; every section read through its service.
pub(crate) async fn admin_page(
    st: &AppState,
    d: &Dash,
    c: Chrome,
    user: UserForm,
    provider: ProviderForm,
    vault: Option<vault::VaultSection>,
) -> PageResult<AdminPage> {
    admin_only(d)?;
    let mut users = Vec::new();
    let mut page = Paging {
        limit: Some(500),
        cursor: None,
    };
    loop {
        let p = service::users::list(st, &d.caller, &page).await?;
        users.extend(p.items.iter().map(|u| UserRow::of(u, d.user.id.as_str())));
        match p.next_cursor {
            Some(cur) => page.cursor = Some(cur),
            None => break,
        }
    }
    // Without a vault there are no providers either; the page says so instead of failing.
    let providers = service::oauth::list_providers(st, &d.caller)
        .await
        .map(|ps| ps.iter().map(ProviderRow::of).collect())
        .unwrap_or_default();
    let vault = match vault {
        Some(v) => v,
        None => vault::VaultSection::read(st, d).await,
    };
    Ok(AdminPage {
        c,
        users,
        user,
        providers,
        provider,
        kinds: PROVIDER_KINDS,
        vault,
    })
}

pub async fn page(State(st): State<AppState>, d: Dash, Query(n): Query<Notice>) -> PageResult {
    let c = Chrome::new(&d, "admin").with_notice(n.done);
    let p = admin_page(
        &st,
        &d,
        c,
        UserForm::default(),
        ProviderForm::default(),
        None,
    )
    .await?;
    super::render(&p)
}

/// Renders the page with `status` (a refused form's).
pub(crate) fn with_status(page: &AdminPage, status: axum::http::StatusCode) -> PageResult {
    let mut res = super::render(page)?;
    *res.status_mut() = status;
    Ok(res)
}
