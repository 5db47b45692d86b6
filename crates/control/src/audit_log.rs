//! The audit of failed writes: each mutating route's action, and the event recorded when
//! it fails (successes are audited by their service, in the same transaction).

use crate::auth::{Auth, Principal};
use crate::problem::{Kind, Problem};
use crate::state::AppState;
use axum::http::{Method, StatusCode};
use serde_json::json;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};

/// What a mutating route does, in the audit log's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteAction {
    pub action: AuditAction,
    pub target_kind: TargetKind,
}

/// The audited action of a mutating route, for failures (handlers name their successes
/// with the same words). Routes missing here are caught by a test over the OpenAPI spec.
pub fn action_for(method: &Method, route: &str) -> Option<RouteAction> {
    let r = route.strip_prefix("/api/v1").unwrap_or(route);
    let (action, target_kind) = match (method.as_str(), r) {
        ("POST", "/login") => (AuditAction::SessionLogin, TargetKind::User),
        ("POST", "/logout") => (AuditAction::SessionLogout, TargetKind::Token),
        ("PUT", "/me/password") => (AuditAction::UserPassword, TargetKind::User),
        ("POST", "/me/tokens") => (AuditAction::TokenIssue, TargetKind::Token),
        ("DELETE", "/me/tokens/{token_id}") => (AuditAction::TokenRevoke, TargetKind::Token),
        ("POST", "/users") => (AuditAction::UserCreate, TargetKind::User),
        ("DELETE", "/users/{user}") => (AuditAction::UserDelete, TargetKind::User),
        ("PATCH", "/users/{user}") => (AuditAction::UserRole, TargetKind::User),
        ("POST", "/toolboxes") => (AuditAction::ToolboxCreate, TargetKind::Toolbox),
        ("DELETE", "/toolboxes/{toolbox}") => (AuditAction::ToolboxDelete, TargetKind::Toolbox),
        ("PATCH", "/toolboxes/{toolbox}") => (AuditAction::ToolboxUpdate, TargetKind::Toolbox),
        ("POST", "/toolboxes/{toolbox}/join-token") => {
            (AuditAction::ToolboxJoinToken, TargetKind::Toolbox)
        }
        ("POST", "/catalog") => (AuditAction::CatalogCreate, TargetKind::Catalog),
        ("PUT", "/catalog/{slug}") => (AuditAction::CatalogUpdate, TargetKind::Catalog),
        ("DELETE", "/catalog/{slug}") => (AuditAction::CatalogDelete, TargetKind::Catalog),
        ("POST", "/catalog/{slug}/deprecate") => {
            (AuditAction::CatalogDeprecate, TargetKind::Catalog)
        }
        ("POST", "/servers") => (AuditAction::ServerCreate, TargetKind::Server),
        ("DELETE", "/servers/{server}") => (AuditAction::ServerDelete, TargetKind::Server),
        ("POST", "/servers/{server}/start") => (AuditAction::ServerStart, TargetKind::Server),
        ("POST", "/servers/{server}/stop") => (AuditAction::ServerStop, TargetKind::Server),
        ("POST", "/servers/{server}/restart") => (AuditAction::ServerRestart, TargetKind::Server),
        ("POST", "/servers/{server}/update-image") => {
            (AuditAction::ServerUpdateImage, TargetKind::Server)
        }
        ("POST", "/agents") => (AuditAction::AgentCreate, TargetKind::Agent),
        ("DELETE", "/agents/{agent}") => (AuditAction::AgentDelete, TargetKind::Agent),
        ("PATCH", "/agents/{agent}") => (AuditAction::AgentUpdate, TargetKind::Agent),
        ("POST", "/agents/{agent}/toolsets") => (AuditAction::ToolsetCreate, TargetKind::Agent),
        ("DELETE", "/agents/{agent}/toolsets/{toolset}") => {
            (AuditAction::ToolsetDelete, TargetKind::Agent)
        }
        ("POST", "/agents/{agent}/tokens") => (AuditAction::AgentTokenIssue, TargetKind::Agent),
        ("DELETE", "/agents/{agent}/tokens") => (AuditAction::AgentTokenRevoke, TargetKind::Agent),
        ("DELETE", "/agents/{agent}/tokens/{token_id}") => {
            (AuditAction::AgentTokenRevoke, TargetKind::Agent)
        }
        ("POST", "/llms") => (AuditAction::LlmCreate, TargetKind::Llm),
        ("DELETE", "/llms/{llm}") => (AuditAction::LlmDelete, TargetKind::Llm),
        ("PUT", "/agents/{agent}/chat") => (AuditAction::AgentChat, TargetKind::Agent),
        ("POST", "/chats") => (AuditAction::ChatCreate, TargetKind::Chat),
        ("DELETE", "/chats/{chat}") => (AuditAction::ChatDelete, TargetKind::Chat),
        ("POST", "/chats/{chat}/messages") => (AuditAction::ChatTurn, TargetKind::Chat),
        ("POST", "/grants") => (AuditAction::GrantCreate, TargetKind::Grant),
        ("PATCH", "/grants/{grant}") => (AuditAction::GrantUpdate, TargetKind::Grant),
        ("DELETE", "/grants/{grant}") => (AuditAction::GrantDelete, TargetKind::Grant),
        ("POST", "/tools/changes/{id}/approve") => (AuditAction::ToolApprove, TargetKind::Tool),
        ("POST", "/tools/changes/{id}/reject") => (AuditAction::ToolReject, TargetKind::Tool),
        ("POST", "/approvals/{id}/approve") => (AuditAction::ApprovalApprove, TargetKind::Approval),
        ("POST", "/approvals/{id}/deny") => (AuditAction::ApprovalDeny, TargetKind::Approval),
        ("POST", "/dtma/join") => (AuditAction::ToolboxJoin, TargetKind::Toolbox),
        ("POST", "/dtma/heartbeat") => (AuditAction::ToolboxHeartbeat, TargetKind::Toolbox),
        ("POST", "/dtma/secrets") => (AuditAction::SecretDeliver, TargetKind::Server),
        ("POST", "/secrets") => (AuditAction::SecretCreate, TargetKind::Secret),
        ("PUT", "/secrets/{secret}") => (AuditAction::SecretUpdate, TargetKind::Secret),
        ("DELETE", "/secrets/{secret}") => (AuditAction::SecretDelete, TargetKind::Secret),
        ("POST", "/vault/rotate") => (AuditAction::VaultRotate, TargetKind::Vault),
        ("DELETE", "/vault/keys/{kek}") => (AuditAction::VaultKeyDelete, TargetKind::Kek),
        ("POST", "/providers") => (AuditAction::ProviderCreate, TargetKind::Provider),
        ("DELETE", "/providers/{provider}") => (AuditAction::ProviderDelete, TargetKind::Provider),
        ("POST", "/audit/checkpoints") => (AuditAction::AuditCheckpoint, TargetKind::Checkpoint),
        ("POST", "/audit/verify") => (AuditAction::AuditVerify, TargetKind::Checkpoint),
        ("POST", "/connections") => (AuditAction::ConnectionStart, TargetKind::Connection),
        ("DELETE", "/connections/{connection}") => {
            (AuditAction::ConnectionRevoke, TargetKind::Connection)
        }
        ("POST", "/connections/{connection}/reconnect") => {
            (AuditAction::ConnectionStart, TargetKind::Connection)
        }
        ("POST", "/connections/{connection}/refresh") => {
            (AuditAction::ConnectionRefresh, TargetKind::Connection)
        }
        _ => return None,
    };
    Some(RouteAction {
        action,
        target_kind,
    })
}

/// [`action_for`], or the generic `request` action for routes without one.
pub fn route_action(method: &Method, route: &str) -> RouteAction {
    action_for(method, route).unwrap_or(RouteAction {
        action: AuditAction::Request,
        target_kind: TargetKind::Route,
    })
}

/// Appends a `denied`/`failure` event for a mutation that did not succeed, by a caller
/// with an identity. 401s are not recorded (no identity to record; they are counted in
/// metrics); anonymous failures are summed up by [`crate::failure_ledger`] instead.
pub async fn record_failure(
    st: &AppState,
    auth: &Auth,
    method: &Method,
    route: &str,
    path: &str,
    status: StatusCode,
    problem: Option<Kind>,
) -> Result<(), Problem> {
    let RouteAction {
        action,
        target_kind,
    } = route_action(method, route);
    let (actor_kind, actor_id, owner) = match auth {
        Auth::Caller(Principal::User(u)) => (
            ActorKind::User,
            Some(u.id().to_string()),
            Some(u.id().clone()),
        ),
        Auth::Caller(Principal::Agent {
            agent_id, owner_id, ..
        }) => (
            ActorKind::Agent,
            Some(agent_id.to_string()),
            Some(owner_id.clone()),
        ),
        Auth::Caller(Principal::Toolbox { toolbox_id, .. }) => {
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
        action,
        target_kind,
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
