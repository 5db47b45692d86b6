//! Legacy sessions by id, as the HTTP layer needs them: the agent that opened each (rmcp
//! does not bind sessions to callers), its peer and capabilities once initialized (for
//! the fast path), when it was last used (the fast path's calls never reach rmcp's
//! session, so idleness is judged here), and its fast-path calls in flight (so
//! `notifications/cancelled` reaches them).

use rmcp::model::RequestId;
use rmcp::service::{Peer, RoleServer};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use toolbelt_model::AgentId;

/// How long a session may go unused before it is closed (rmcp's own default).
pub const IDLE: Duration = Duration::from_secs(300);

struct Rec {
    owner: AgentId,
    peer: Option<Peer<RoleServer>>,
    /// The client declared the tasks capability at `initialize`.
    tasks: bool,
    last_used: Instant,
    calls: HashMap<RequestId, CancellationToken>,
}

/// An initialized session, as the fast path serves it.
pub struct Live {
    pub peer: Peer<RoleServer>,
    pub tasks: bool,
}

#[derive(Default)]
pub struct SessionTable {
    map: Mutex<HashMap<String, Rec>>,
}

impl SessionTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Rec>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The agent that opened the session, and marks it used.
    pub fn owner(&self, id: &str) -> Option<AgentId> {
        let mut map = self.lock();
        let r = map.get_mut(id)?;
        r.last_used = Instant::now();
        Some(r.owner.clone())
    }

    /// rmcp handed out a new session id to `owner`.
    pub fn opened(&self, id: &str, owner: AgentId) {
        self.lock().entry(id.to_string()).or_insert(Rec {
            owner,
            peer: None,
            tasks: false,
            last_used: Instant::now(),
            calls: HashMap::new(),
        });
    }

    /// The session's handshake finished: its peer, for the fast path.
    pub fn initialized(&self, id: &str, peer: Peer<RoleServer>, tasks: bool) {
        if let Some(r) = self.lock().get_mut(id) {
            (r.peer, r.tasks) = (Some(peer), tasks);
        }
    }

    pub fn live(&self, id: &str) -> Option<Live> {
        let map = self.lock();
        let r = map.get(id)?;
        Some(Live {
            peer: r.peer.clone()?,
            tasks: r.tasks,
        })
    }

    pub fn closed(&self, id: &str) {
        if let Some(r) = self.lock().remove(id) {
            r.calls.values().for_each(CancellationToken::cancel);
        }
    }

    /// A fast-path call begins: its cancellation token.
    pub fn call_started(&self, id: &str, request: &RequestId) -> CancellationToken {
        let ct = CancellationToken::new();
        if let Some(r) = self.lock().get_mut(id) {
            r.calls.insert(request.clone(), ct.clone());
        }
        ct
    }

    pub fn call_ended(&self, id: &str, request: &RequestId) {
        if let Some(r) = self.lock().get_mut(id) {
            r.calls.remove(request);
        }
    }

    /// The agent cancelled a request; true when it was a fast-path call.
    pub fn cancel(&self, id: &str, request: &RequestId) -> bool {
        match self.lock().get(id).and_then(|r| r.calls.get(request)) {
            Some(ct) => {
                ct.cancel();
                true
            }
            None => false,
        }
    }

    /// Sessions unused for `idle` with no call in flight.
    pub fn idle(&self, idle: Duration) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.calls.is_empty() && r.last_used.elapsed() > idle)
            .map(|(id, _)| id.clone())
            .collect()
    }
}
