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
