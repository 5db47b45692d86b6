//! OAuth providers on the admin page: add one (a built-in kind with its client id and
//! secret, or a custom one by issuer or endpoints), delete one behind a confirmation page
//! (its connections go with it). Validation and the admin rule are `toolbelt_oauth`'s,
//! reached through `service::oauth`.

use super::{ProviderForm, UserForm, admin_only, admin_page, with_status};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Chrome, Errors};
use askama::Template;
use axum::extract::{Path, State};
use toolbelt_control::AppState;
use toolbelt_control::service;
use toolbelt_model::FieldError;
use toolbelt_model::oauth::ProviderKind;
use toolbelt_oauth::NewProvider;

fn optional(f: &Form, name: &str) -> Option<String> {
    Some(f.text(name)).filter(|s| !s.is_empty())
}

pub async fn create(State(st): State<AppState>, d: Dash, f: Form) -> PageResult {
    admin_only(&d)?;
    let mut form = ProviderForm {
        name: f.text("name"),
        kind: f.text("kind"),
        issuer: f.text("issuer"),
        authorization_endpoint: f.text("authorization_endpoint"),
        token_endpoint: f.text("token_endpoint"),
        revocation_endpoint: f.text("revocation_endpoint"),
        client_id: f.text("client_id"),
        scopes: f.text("default_scopes"),
        ..ProviderForm::default()
    };
    let Some(kind) = ProviderKind::parse(&form.kind) else {
        form.errors = Errors {
            fields: vec![FieldError {
                field: "kind".into(),
                message: "choose one of the listed kinds".into(),
            }],
            general: None,
        };
        return refused(&st, &d, form, axum::http::StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let scopes: Vec<String> = form.scopes.split_whitespace().map(str::to_string).collect();
    let req = NewProvider {
        name: form.name.clone(),
        kind,
        issuer: optional(&f, "issuer"),
        authorization_endpoint: optional(&f, "authorization_endpoint"),
        token_endpoint: optional(&f, "token_endpoint"),
        revocation_endpoint: optional(&f, "revocation_endpoint"),
        client_id: form.client_id.clone(),
        // An empty secret field means a public client (PKCE alone).
        client_secret: f
            .get("client_secret")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        default_scopes: (!scopes.is_empty()).then_some(scopes),
    };
    match service::oauth::create_provider(&st, &d.caller, req).await {
        Ok(p) => Ok(super::super::done(
            "/admin",
            &format!("provider {} added", p.name),
        )),
        Err(e) => {
            form.errors = Errors::from_service(&e);
            let status = Page::from(e).status;
            refused(&st, &d, form, status).await
        }
    }
}

async fn refused(
    st: &AppState,
    d: &Dash,
    form: ProviderForm,
    status: axum::http::StatusCode,
) -> PageResult {
    let c = Chrome::new(d, "admin");
    let page = admin_page(st, d, c, UserForm::default(), form, None).await?;
    with_status(&page, status)
}

#[derive(Template)]
#[template(path = "admin_provider_delete.html")]
struct ConfirmDelete {
    c: Chrome,
    id: String,
    name: String,
}

pub async fn confirm_delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
) -> PageResult {
    admin_only(&d)?;
    let p = service::oauth::get_provider(&st, &d.caller, &id).await?;
    super::super::render(&ConfirmDelete {
        c: Chrome::new(&d, "admin"),
        id: p.id.to_string(),
        name: p.name.to_string(),
    })
}

pub async fn delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    admin_only(&d)?;
    let p = service::oauth::delete_provider(&st, &d.caller, &id).await?;
    Ok(super::super::done(
        "/admin",
        &format!("provider {} deleted", p.name),
    ))
}
