//! `/events`: the store's event bus as Server-Sent Events for one signed-in user.
//!
//! Events are hints (what changed, whose it is); the page then re-reads its live regions
//! through the normal pages, which apply tenancy. Here only whose events a user gets is
//! decided, by the same ownership the store's scopes use: a member gets events about
//! their own things and about shared things (owner `None`) — except audit events, which
//! a member gets only for their own — and tool-definition changes go to admins only.
//! An idle stream costs one task and a keep-alive comment every 15 s.

use crate::session::Dash;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use std::convert::Infallible;
use std::time::Duration;
use toolbelt_control::AppState;
use toolbelt_control::service::Caller;
use toolbelt_store::events::{Event, Received};

/// Whether this user's page hears of `ev`.
pub fn visible(caller: &Caller, ev: &Event) -> bool {
    if caller.is_admin() {
        return true;
    }
    match ev {
        Event::ToolChanged { .. } => false,
        Event::Audited { owner, .. } => owner.as_ref() == Some(caller.id()),
        Event::Metrics { .. } | Event::Resync => true,
        other => other.owner().is_none_or(|o| o == caller.id()),
    }
}

pub async fn events(
    State(st): State<AppState>,
    d: Dash,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let sub = st.store.events().subscribe();
    let caller = d.caller;
    let stream = futures::stream::unfold((sub, caller), |(mut sub, caller)| async move {
        loop {
            let ev = match sub.recv().await {
                Received::Event(e) => e,
                // Fell behind: some events are gone, the page must look at everything.
                Received::Lagged(_) => std::sync::Arc::new(Event::Resync),
                Received::Closed => return None,
            };
            if !visible(&caller, &ev) {
                continue;
            }
            let data = serde_json::to_string(&*ev).unwrap_or_default();
            return Some((Ok(SseEvent::default().data(data)), (sub, caller)));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolbelt_control::service::Credential;
    use toolbelt_model::gateway::ApprovalStatus;
    use toolbelt_model::server::ServerStatus;
    use toolbelt_model::{AgentId, ApprovalId, Role, Scope, ServerId, TokenId, ToolboxId, UserId};

    fn caller(role: Role) -> Caller {
        Caller {
            scope: Scope {
                user_id: UserId::generate(),
                role,
            },
            credential: Credential::Session(TokenId::generate()),
        }
    }

    #[test]
    fn a_member_hears_of_their_own_and_shared_things_only() {
        let (ann, bob, admin) = (
            caller(Role::Member),
            caller(Role::Member),
            caller(Role::Admin),
        );
        let approval = |owner: &Caller| Event::ApprovalCreated {
            approval: ApprovalId::generate(),
            agent: AgentId::generate(),
            owner: owner.id().clone(),
        };
        let status = |owner: Option<&Caller>| Event::ServerStatus {
            server: ServerId::generate(),
            toolbox: ToolboxId::generate(),
            owner: owner.map(|c| c.id().clone()),
            status: ServerStatus::Running,
        };
        assert!(visible(&ann, &approval(&ann)));
        assert!(
            !visible(&bob, &approval(&ann)),
            "not another member's approval"
        );
        assert!(visible(&admin, &approval(&ann)));
        assert!(
            visible(&bob, &status(None)),
            "shared servers are everyone's"
        );
        assert!(!visible(&bob, &status(Some(&ann))));
        let resolved = Event::ApprovalResolved {
            approval: ApprovalId::generate(),
            owner: ann.id().clone(),
            status: ApprovalStatus::Approved,
        };
        assert!(!visible(&bob, &resolved));
        let shared_audit = Event::Audited {
            seq: 1,
            action: toolbelt_model::audit::AuditAction::UserCreate,
            target_kind: toolbelt_model::audit::TargetKind::User,
            target: None,
            owner: None,
        };
        assert!(
            !visible(&ann, &shared_audit),
            "audit events only of one's own things"
        );
        let changed = Event::ToolChanged {
            server: ServerId::generate(),
            tool: "t".into(),
        };
        assert!(!visible(&ann, &changed) && visible(&admin, &changed));
        assert!(visible(&ann, &Event::Resync) && visible(&ann, &Event::Metrics { minute: 1 }));
    }
}
