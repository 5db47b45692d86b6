//! Routes from upstream messages back to agents: progress tokens and request ids the
//! gateway's upstream session chose, mapped to the agent session (and its own token)
//! whose call caused them.
//!
//! A route is added once `rmcp` has queued the call upstream, since only then are the
//! upstream's id and token known. A fast server's first progress notification or its
//! elicitation request can be handled before that (rmcp handles each inbound message on
//! its own task), so a lookup that misses waits a short grace for the route to appear
//! instead of dropping the message.

use crate::error::CallError;
use rmcp::ErrorData as McpError;
use rmcp::model::{ProgressToken, RequestId};
use rmcp::service::{InboundStreamOrigin, Peer, RequestContext, RoleClient, RoleServer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use toolbelt_model::ServerId;

/// How long a message for an unknown token or id waits for its call's route. A message
/// that is truly stale (its call already answered) is dropped after it.
const ROUTE_GRACE: Duration = Duration::from_secs(1);

/// An agent's session and its own progress token for a call.
type ProgressRoute = (Peer<RoleServer>, ProgressToken);

/// An upstream session's key in [`Routes`] with an id it chose (request or progress token).
type SessionKeyed<T> = (Arc<str>, T);

/// Routes from upstream messages back to agents, keyed by upstream session (a server's
/// shared session, or its session for one OAuth connection): request ids and progress
/// tokens are only unique within one session.
#[derive(Default)]
pub struct Routes {
    progress: Mutex<HashMap<SessionKeyed<ProgressToken>, ProgressRoute>>,
    requests: Mutex<HashMap<SessionKeyed<RequestId>, Peer<RoleServer>>>,
    /// Woken whenever a route is added (lookups that missed look again).
    added: Notify,
    /// Servers whose tool list changed (the registry rediscovers them).
    pub changed: tokio::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<ServerId>>>,
}

impl Routes {
    pub fn route_progress(
        &self,
        server: &Arc<str>,
        upstream: ProgressToken,
        agent: (Peer<RoleServer>, ProgressToken),
    ) {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((server.clone(), upstream), agent);
        self.added.notify_waiters();
    }

    pub fn route_requests(&self, server: &Arc<str>, upstream: RequestId, agent: Peer<RoleServer>) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((server.clone(), upstream), agent);
        self.added.notify_waiters();
    }

    pub fn forget(&self, server: &Arc<str>, token: &ProgressToken, id: &RequestId) {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(server.clone(), token.clone()));
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(server.clone(), id.clone()));
    }

    /// Tells the registry a server's tools changed (it rediscovers them).
    pub async fn tools_changed(&self, server: &ServerId) {
        if let Some(tx) = self.changed.lock().await.as_ref() {
            let _ = tx.send(server.clone());
        }
    }

    /// Where a progress notification of upstream session `server` goes, waiting up to
    /// [`ROUTE_GRACE`] for a call still being routed.
    pub async fn progress_route(
        &self,
        server: &Arc<str>,
        token: &ProgressToken,
    ) -> Option<ProgressRoute> {
        let key = (server.clone(), token.clone());
        self.wait_for(|| {
            self.progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned()
        })
        .await
    }

    /// The agent session a server → client request (sampling, elicitation, roots) goes
    /// to: the call it names, or the only call in flight on that session.
    pub async fn requester(
        &self,
        server: &Arc<str>,
        ctx: &RequestContext<RoleClient>,
    ) -> Result<Peer<RoleServer>, McpError> {
        let origin = ctx.extensions.get::<InboundStreamOrigin>().cloned();
        let find = || {
            let map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            match &origin {
                Some(InboundStreamOrigin::OutboundRequest(id)) => {
                    map.get(&(server.clone(), id.clone())).cloned()
                }
                // Not tied to one call: only unambiguous when exactly one call is in flight.
                _ => {
                    let mut it = map.iter().filter(|((s, _), _)| s == server).map(|(_, p)| p);
                    match (it.next(), it.next()) {
                        (Some(p), None) => Some(p.clone()),
                        _ => None,
                    }
                }
            }
        };
        self.wait_for(find)
            .await
            .ok_or_else(|| CallError::NoAgentSession.into())
    }

    /// `find()`, looked up again after each route added, until it finds or the grace ends.
    async fn wait_for<T>(&self, find: impl Fn() -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + ROUTE_GRACE;
        loop {
            // Registered before looking, so a route added in between still wakes us.
            let added = self.added.notified();
            tokio::pin!(added);
            added.as_mut().enable();
            if let Some(found) = find() {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[tokio::test]
    async fn a_lookup_that_misses_waits_for_the_route_then_gives_up() {
        let routes = Arc::new(Routes::default());
        let table = Arc::new(Mutex::new(HashSet::new()));
        let waiting = {
            let (routes, table) = (routes.clone(), table.clone());
            tokio::spawn(async move {
                routes
                    .wait_for(|| table.lock().unwrap().get(&7).copied())
                    .await
            })
        };
        // The route appears after the lookup started (its call was still being routed);
        // an unrelated route first, which must not end the wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
        table.lock().unwrap().insert(6);
        routes.added.notify_waiters();
        tokio::time::sleep(Duration::from_millis(50)).await;
        table.lock().unwrap().insert(7);
        routes.added.notify_waiters();
        assert_eq!(waiting.await.unwrap(), Some(7), "found once routed");

        // A message for a call that never comes is dropped after the grace, not held.
        let started = tokio::time::Instant::now();
        let missing = routes
            .wait_for(|| table.lock().unwrap().get(&8).copied())
            .await;
        assert_eq!(missing, None);
        assert!(started.elapsed() >= ROUTE_GRACE);
    }
}
