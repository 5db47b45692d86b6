//! Building audit events from callers, and the names of audited actions.

use crate::auth::{Auth, Caller, UserCaller};
use crate::problem::{Kind, Problem};
use crate::state::AppState;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use toolbelt_model::UserId;
use toolbelt_model::audit::{ActorKind, NewAuditEvent, Outcome};

/// A success event by a user, about a target owned by `owner`.
pub fn by_user(
    caller: &UserCaller,
    action: &str,
    target_kind: &str,
    target_id: impl ToString,
    owner: Option<&UserId>,
    detail: Value,
) -> NewAuditEvent {
    NewAuditEvent {
        actor_kind: ActorKind::User,
        actor_id: Some(caller.id().to_string()),
        owner_id: owner.cloned().or_else(|| Some(caller.id().clone())),
        action: action.to_string(),
        target_kind: target_kind.to_string(),
        target_id: Some(target_id.to_string()),
        outcome: Outcome::Success,
        detail,
    }
}

/// The audited action of a mutating route, for failures (handlers name their successes
/// with the same words). Routes missing here are caught by a test over the OpenAPI spec.
pub fn action_for(method: &Method, route: &str) -> Option<(&'static str, &'static str)> {
    let r = route.strip_prefix("/api/v1").unwrap_or(route);
    Some(match (method.as_str(), r) {
        ("POST", "/login") => ("session.login", "user"),
        ("POST", "/logout") => ("session.logout", "token"),
        ("PUT", "/me/password") => ("user.password", "user"),
        ("POST", "/me/tokens") => ("token.issue", "token"),
        ("DELETE", "/me/tokens/{token_id}") => ("token.revoke", "token"),
        ("POST", "/users") => ("user.create", "user"),
        ("DELETE", "/users/{user}") => ("user.delete", "user"),
        ("POST", "/toolboxes") => ("toolbox.create", "toolbox"),
        ("DELETE", "/toolboxes/{toolbox}") => ("toolbox.delete", "toolbox"),
        ("POST", "/toolboxes/{toolbox}/join-token") => ("toolbox.join_token", "toolbox"),
        ("POST", "/catalog") => ("catalog.create", "catalog"),
        ("PUT", "/catalog/{slug}") => ("catalog.update", "catalog"),
        ("DELETE", "/catalog/{slug}") => ("catalog.delete", "catalog"),
        ("POST", "/catalog/{slug}/deprecate") => ("catalog.deprecate", "catalog"),
        ("POST", "/servers") => ("server.create", "server"),
        ("DELETE", "/servers/{server}") => ("server.delete", "server"),
        ("POST", "/servers/{server}/start") => ("server.start", "server"),
        ("POST", "/servers/{server}/stop") => ("server.stop", "server"),
        ("POST", "/servers/{server}/restart") => ("server.restart", "server"),
        ("POST", "/agents") => ("agent.create", "agent"),
        ("DELETE", "/agents/{agent}") => ("agent.delete", "agent"),
        ("POST", "/agents/{agent}/tokens") => ("agent.token.issue", "agent"),
        ("DELETE", "/agents/{agent}/tokens") => ("agent.token.revoke", "agent"),
        ("DELETE", "/agents/{agent}/tokens/{token_id}") => ("agent.token.revoke", "agent"),
        ("POST", "/grants") => ("grant.create", "grant"),
        ("PATCH", "/grants/{grant}") => ("grant.update", "grant"),
        ("DELETE", "/grants/{grant}") => ("grant.delete", "grant"),
        ("POST", "/tools/changes/{id}/approve") => ("tool.approve", "tool"),
        ("POST", "/tools/changes/{id}/reject") => ("tool.reject", "tool"),
        ("POST", "/approvals/{id}/approve") => ("approval.approve", "approval"),
        ("POST", "/approvals/{id}/deny") => ("approval.deny", "approval"),
        ("POST", "/dtma/join") => ("toolbox.join", "toolbox"),
        ("POST", "/dtma/heartbeat") => ("toolbox.heartbeat", "toolbox"),
        ("POST", "/dtma/secrets") => ("secret.deliver", "server"),
        ("POST", "/secrets") => ("secret.create", "secret"),
        ("PUT", "/secrets/{secret}") => ("secret.update", "secret"),
        ("DELETE", "/secrets/{secret}") => ("secret.delete", "secret"),
        ("POST", "/vault/rotate") => ("vault.rotate", "vault"),
        ("DELETE", "/vault/keys/{kek}") => ("vault.key.delete", "kek"),
        ("POST", "/providers") => ("provider.create", "provider"),
        ("DELETE", "/providers/{provider}") => ("provider.delete", "provider"),
        ("POST", "/connections") => ("connection.start", "connection"),
        ("DELETE", "/connections/{connection}") => ("connection.revoke", "connection"),
        ("POST", "/connections/{connection}/refresh") => ("connection.refresh", "connection"),
        _ => return None,
    })
}

/// Appends a `denied`/`failure` event for a mutation that did not succeed. 401s are not
/// recorded (no identity to record; they are counted in metrics).
pub async fn record_failure(
    st: &AppState,
    auth: &Auth,
    method: &Method,
    route: &str,
    path: &str,
    status: StatusCode,
    problem: Option<Kind>,
) -> Result<(), Problem> {
    let (action, target_kind) = action_for(method, route).unwrap_or(("request", "route"));
    let (actor_kind, actor_id, owner) = match auth {
        Auth::Caller(Caller::User(u)) => (
            ActorKind::User,
            Some(u.id().to_string()),
            Some(u.id().clone()),
        ),
        Auth::Caller(Caller::Agent {
            agent_id, owner_id, ..
        }) => (
            ActorKind::Agent,
            Some(agent_id.to_string()),
            Some(owner_id.clone()),
        ),
        Auth::Caller(Caller::Toolbox { toolbox_id, .. }) => {
            (ActorKind::Toolbox, Some(toolbox_id.to_string()), None)
        }
        Auth::Anonymous | Auth::Rejected(_) => (ActorKind::Anonymous, None, None),
    };
    let outcome = if status == StatusCode::FORBIDDEN {
        Outcome::Denied
    } else {
        Outcome::Failure
    };
    let ev = NewAuditEvent {
        actor_kind,
        actor_id,
        owner_id: owner,
        action: action.to_string(),
        target_kind: target_kind.to_string(),
        target_id: None,
        outcome,
        detail: json!({
            "method": method.as_str(),
            "path": path,
            "status": status.as_u16(),
            "problem": problem.map(|k| k.slug()),
        }),
    };
    let tx = st.store.begin_audited().await?;
    tx.commit(ev).await?;
    Ok(())
}
