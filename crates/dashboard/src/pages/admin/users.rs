//! Users on the admin page: create (email, role, an optional password; the first API
//! token shown once), change a role, delete behind a confirmation page. Rules — admins
//! only, never yourself, never the last admin — are `service::users`'.

use super::{ProviderForm, UserForm, UserRow, admin_only, admin_page, with_status};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Chrome, Errors};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use toolbelt_control::AppState;
use toolbelt_control::service;
use toolbelt_control::service::users::CreateUser;
use toolbelt_model::{FieldError, Role};

/// The role a form's select posted; a value the select does not offer is the field's error.
fn role_of(f: &Form, field: &str) -> Result<Role, Errors> {
    Role::parse(&f.text(field)).ok_or_else(|| Errors {
        fields: vec![FieldError {
            field: field.into(),
            message: "must be admin or member".into(),
        }],
        general: None,
    })
}

pub async fn create(State(st): State<AppState>, d: Dash, f: Form) -> PageResult {
    admin_only(&d)?;
    let mut form = UserForm {
        email: f.text("email"),
        role: f.text("role"),
        ..UserForm::default()
    };
    let password = f.get("password").filter(|p| !p.is_empty());
    let result = match role_of(&f, "role") {
        Ok(role) => {
            let req = CreateUser {
                email: form.email.clone(),
                role,
                password: password.map(str::to_string),
            };
            service::users::create(&st, &d.caller, req)
                .await
                .map_err(|e| (Errors::from_service(&e), Page::from(e).status))
        }
        Err(errors) => Err((errors, StatusCode::UNPROCESSABLE_ENTITY)),
    };
    let c = Chrome::new(&d, "admin");
    match result {
        Ok(made) => {
            // The token is shown this once, on the page itself (nothing to redirect to).
            let c = c.with_notice(Some(format!("user {} created", made.user.email)));
            let form = UserForm {
                created: Some((made.user.email.clone(), made.token.token.clone())),
                ..UserForm::default()
            };
            let page = admin_page(&st, &d, c, form, ProviderForm::default(), None).await?;
            with_status(&page, StatusCode::OK)
        }
        Err((errors, status)) => {
            form.errors = errors;
            let page = admin_page(&st, &d, c, form, ProviderForm::default(), None).await?;
            with_status(&page, status)
        }
    }
}

pub async fn set_role(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    f: Form,
) -> PageResult {
    admin_only(&d)?;
    let role = match role_of(&f, "role") {
        Ok(r) => r,
        Err(_) => {
            return Err(Page {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: "role must be admin or member".into(),
            });
        }
    };
    let u = service::users::set_role(&st, &d.caller, &id, role).await?;
    Ok(super::super::done(
        "/admin",
        &format!("{} is now {}", u.email, u.role.as_str()),
    ))
}

#[derive(Template)]
#[template(path = "admin_user_delete.html")]
struct ConfirmDelete {
    c: Chrome,
    u: UserRow,
}

pub async fn confirm_delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
) -> PageResult {
    admin_only(&d)?;
    let u = service::users::get(&st, &d.caller, &id).await?;
    super::super::render(&ConfirmDelete {
        c: Chrome::new(&d, "admin"),
        u: UserRow::of(&u, d.user.id.as_str()),
    })
}

pub async fn delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    admin_only(&d)?;
    let u = service::users::delete(&st, &d.caller, &id).await?;
    Ok(super::super::done(
        "/admin",
        &format!("user {} deleted", u.email),
    ))
}
