//! Sign in (email and password, or the one-time login token `toolbelt up` prints) and
//! sign out. The rules — throttling, equal work, audit — are `service::session`'s; this
//! page only decides that the session travels as the cookie.

use crate::error::{Page, PageResult};
use crate::form::{Form, PublicForm};
use crate::session::{Dash, safe_next};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use toolbelt_control::AppState;
use toolbelt_control::auth::{CLEAR_SESSION_COOKIE, session_cookie};
use toolbelt_control::client_ip::ClientIp;
use toolbelt_control::service::{self, session::LoginRequest};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    email: String,
    error: Option<String>,
    /// Which tab was used: `password` or `token`.
    method: &'static str,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn page(Query(q): Query<LoginQuery>) -> PageResult {
    super::render(&LoginPage {
        next: safe_next(q.next.as_deref()),
        email: String::new(),
        error: None,
        method: "password",
    })
}

pub async fn submit(
    State(st): State<AppState>,
    ClientIp(from): ClientIp,
    PublicForm(f): PublicForm,
) -> PageResult {
    let next = safe_next(f.get("next"));
    let token = f.text("login_token");
    let email = f.text("email");
    let req = if token.is_empty() {
        LoginRequest {
            email: Some(email.clone()),
            password: f.get("password").map(str::to_string),
            login_token: None,
            api_token_label: None,
        }
    } else {
        LoginRequest {
            email: None,
            password: None,
            login_token: Some(token),
            api_token_label: None,
        }
    };
    let method = if req.login_token.is_some() {
        "token"
    } else {
        "password"
    };
    match service::session::login(&st, from, req).await {
        Ok(l) => {
            let mut res = Redirect::to(&next).into_response();
            let cookie = HeaderValue::from_str(&session_cookie(&st.config, &l.secret))
                .map_err(|_| Page::internal())?;
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Err(e) => {
            let status = toolbelt_control::problem::Problem::from(e.clone()).status();
            let page = LoginPage {
                next,
                email,
                error: Some(e.to_string()),
                method,
            };
            let mut res = super::render(&page)?;
            *res.status_mut() = status;
            if let Some(after) = e.retry_after() {
                let secs = toolbelt_control::service::secs(after).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Ok(res)
        }
    }
}

/// Ends the session (revoked in the store, the cookie cleared).
pub async fn logout(State(st): State<AppState>, d: Dash, _f: Form) -> PageResult<Response> {
    service::session::logout(&st, &d.caller).await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(CLEAR_SESSION_COOKIE),
    );
    Ok(res)
}
