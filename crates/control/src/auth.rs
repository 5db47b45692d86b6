//! Who is calling: bearer tokens (API, agent, DTMA) and dashboard session cookies.
//!
//! The middleware in [`crate::middleware`] resolves the caller once per request and leaves
//! an [`Auth`] in the request extensions; handlers take [`SignedIn`] (a user, handed to
//! the services as a [`Caller`]) or [`ToolboxCaller`], and get a precise 401/403
//! otherwise. Token digests are compared in constant time by the store.

use crate::problem::Problem;
use crate::service::{Caller, Credential};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use toolbelt_model::token::{TokenDigest, TokenKind};
use toolbelt_model::{AgentId, Role, Scope, TokenId, ToolboxId, UserId};
use toolbelt_store::{Store, tokens};

pub const SESSION_COOKIE: &str = "toolbelt_session";

/// The `Set-Cookie` value that ends a session in the browser.
pub const CLEAR_SESSION_COOKIE: &str =
    "toolbelt_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0";

/// The `Set-Cookie` value of a new dashboard session. `SameSite=Lax`, not `Strict`: a
/// Strict cookie is not sent on the OAuth provider's redirect back to
/// `/oauth/{provider}/callback` (a cross-site navigation), so connecting an account would
/// fail in every browser. Lax still keeps it off cross-site POSTs and subrequests; the
/// Origin check ([`crate::middleware`]) and the dashboard's CSRF tokens are the other locks.
pub fn session_cookie(config: &crate::ControlConfig, secret: &str) -> String {
    let secure = if config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        config.session_ttl.as_secs()
    )
}

/// Who a request's credential names.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A user: the services' [`Caller`].
    User(Caller),
    Agent {
        agent_id: AgentId,
        owner_id: UserId,
        token_id: TokenId,
    },
    Toolbox {
        toolbox_id: ToolboxId,
        token_id: TokenId,
    },
}

/// The outcome of looking at a request's credentials.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials presented.
    Anonymous,
    /// Credentials presented and refused; the reason is safe to show.
    Rejected(&'static str),
    Caller(Principal),
}

/// The credential a request presents.
struct Presented {
    token: String,
    /// From the session cookie, not the `Authorization` header.
    via_cookie: bool,
}

/// The presented credential: the bearer token, else the session cookie.
fn presented(headers: &HeaderMap) -> Option<Presented> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| Presented {
            token: token.trim().to_string(),
            via_cookie: false,
        });
    }
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| Presented {
            token: v.to_string(),
            via_cookie: true,
        })
}

/// Resolves the request's caller. Database failures are errors, not "anonymous".
pub async fn resolve(store: &Store, headers: &HeaderMap) -> Result<Auth, Problem> {
    if headers.contains_key(http::header::AUTHORIZATION) && presented(headers).is_none() {
        return Ok(Auth::Rejected(
            "the Authorization header must be 'Bearer <token>'",
        ));
    }
    let Some(Presented { token, via_cookie }) = presented(headers) else {
        return Ok(Auth::Anonymous);
    };
    if token.is_empty() || token.len() > 512 {
        return Ok(Auth::Rejected("invalid token"));
    }
    let mut c = store.conn().await?;
    let Some(found) = tokens::find(&mut c, &TokenDigest::of(&token)).await? else {
        return Ok(Auth::Rejected("invalid token"));
    };
    if found.revoked_at.is_some() {
        return Ok(Auth::Rejected("token revoked"));
    }
    if found.expires_at.is_some_and(|e| e <= toolbelt_model::now()) {
        return Ok(Auth::Rejected("token expired"));
    }
    let cookie_ok = found.kind == TokenKind::Session;
    if via_cookie != cookie_ok {
        // A session token only as a cookie, other tokens only as bearer tokens.
        return Ok(Auth::Rejected("invalid token"));
    }
    let caller = match (found.kind, found.subject) {
        (TokenKind::Api | TokenKind::Session, tokens::Subject::User(user_id)) => {
            let role = found.role.unwrap_or(Role::Member);
            let credential = if via_cookie {
                Credential::Session(found.id.clone())
            } else {
                Credential::ApiToken(found.id.clone())
            };
            Principal::User(Caller {
                scope: Scope { user_id, role },
                credential,
            })
        }
        (TokenKind::Agent, tokens::Subject::Agent(agent_id)) => Principal::Agent {
            owner_id: found
                .agent_owner
                .ok_or_else(|| Problem::unauthenticated("invalid token"))?,
            agent_id,
            token_id: found.id.clone(),
        },
        (TokenKind::Dtma, tokens::Subject::Toolbox(toolbox_id)) => Principal::Toolbox {
            toolbox_id,
            token_id: found.id.clone(),
        },
        // Join and login tokens are exchanged at their own endpoints, never used as bearer.
        _ => return Ok(Auth::Rejected("invalid token")),
    };
    if found
        .last_used_at
        .is_none_or(|t| t < toolbelt_model::now() - chrono_minute())
    {
        tokens::touch(&mut c, &found.id).await?;
    }
    Ok(Auth::Caller(caller))
}

fn chrono_minute() -> chrono::TimeDelta {
    chrono::TimeDelta::minutes(1)
}

/// The extractor of REST routes for users: the signed-in [`Caller`], or a precise 401/403.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        match parts.extensions.get::<Auth>() {
            Some(Auth::Caller(Principal::User(u))) => Ok(SignedIn(u.clone())),
            Some(Auth::Caller(Principal::Agent { .. })) => Err(Problem::forbidden(
                "agent tokens are for the MCP gateway at /mcp, not the REST API",
            )),
            Some(Auth::Caller(Principal::Toolbox { .. })) => Err(Problem::forbidden(
                "toolbox credentials are for the DTMA channel, not the REST API",
            )),
            Some(Auth::Rejected(why)) => Err(Problem::unauthenticated(*why)),
            Some(Auth::Anonymous) | None => Err(Problem::unauthenticated(
                "send 'Authorization: Bearer <token>' (or log in to the dashboard)",
            )),
        }
    }
}

/// A toolbox's DTMA, authenticated by its credential (the DTMA channel's routes).
#[derive(Debug, Clone)]
pub struct ToolboxCaller {
    pub toolbox_id: ToolboxId,
}

impl<S: Send + Sync> FromRequestParts<S> for ToolboxCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        match parts.extensions.get::<Auth>() {
            Some(Auth::Caller(Principal::Toolbox { toolbox_id, .. })) => Ok(ToolboxCaller {
                toolbox_id: toolbox_id.clone(),
            }),
            Some(Auth::Caller(_)) => Err(Problem::forbidden(
                "only a toolbox's DTMA may use this route",
            )),
            Some(Auth::Rejected(why)) => Err(Problem::unauthenticated(*why)),
            Some(Auth::Anonymous) | None => Err(Problem::unauthenticated(
                "send the DTMA credential as a bearer token",
            )),
        }
    }
}
