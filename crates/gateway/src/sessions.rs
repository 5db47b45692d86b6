//! Connected agent sessions, so `notifications/tools/list_changed` reaches an agent when
//! its grants change or an upstream's tools change: legacy sessions through the peer kept
//! at `initialize`, 2026-07-28 clients through their `subscriptions/listen` stream.

use crate::Hub;
use rmcp::service::{Peer, RoleServer, SubscriptionSink};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;
use toolbelt_model::AgentId;

pub enum Target {
    Peer(Peer<RoleServer>),
    Sink(SubscriptionSink),
}

struct Rec {
    id: u64,
    agent: AgentId,
    target: Target,
    seen: u64,
}

#[derive(Default)]
pub struct Sessions {
    recs: Mutex<Vec<Rec>>,
    next: std::sync::atomic::AtomicU64,
}

impl Sessions {
    pub fn add(&self, agent: AgentId, target: Target, fingerprint: u64) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.recs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Rec {
                id,
                agent,
                target,
                seen: fingerprint,
            });
        id
    }

    pub fn remove(&self, id: u64) {
        self.recs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r.id != id);
    }

    /// Forgets legacy sessions whose transport closed (ended, or closed as idle): a
    /// session is otherwise only forgotten when a notification to it fails, and views
    /// that never change would keep every session ever opened.
    pub fn prune(&self) {
        self.recs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| !matches!(&r.target, Target::Peer(p) if p.is_transport_closed()));
    }

    pub fn count(&self) -> usize {
        self.recs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Watches for changes (registry version, store epoch) and tells each session whose
/// view changed; sessions that cannot be reached any more are dropped.
pub async fn notifier(hub: std::sync::Arc<Hub>) {
    let (mut version, mut epoch) = (0, 0);
    for tick in 0u64.. {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if tick % 25 == 0 {
            hub.sessions.prune();
        }
        let (v, e) = (
            hub.registry.version.load(Ordering::Acquire),
            hub.store.epoch(),
        );
        if (v, e) == (version, epoch) {
            continue;
        }
        (version, epoch) = (v, e);
        let agents: Vec<(u64, AgentId, u64)> = hub
            .sessions
            .recs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|r| (r.id, r.agent.clone(), r.seen))
            .collect();
        let mut dead = Vec::new();
        let mut changed = Vec::new();
        for (id, agent, seen) in agents {
            let Ok(policy) = hub.policies.policy(&agent).await else {
                continue;
            };
            let fp = hub.views.get(&agent, &policy, &hub.registry).fingerprint;
            if fp != seen {
                changed.push((id, fp));
            }
        }
        for (id, fp) in changed {
            let target = {
                let mut recs = hub.sessions.recs.lock().unwrap_or_else(|p| p.into_inner());
                let Some(r) = recs.iter_mut().find(|r| r.id == id) else {
                    continue;
                };
                r.seen = fp;
                match &r.target {
                    Target::Peer(p) => Target::Peer(p.clone()),
                    Target::Sink(s) => Target::Sink(s.clone()),
                }
            };
            let ok = match target {
                Target::Peer(p) => p.notify_tool_list_changed().await.is_ok(),
                Target::Sink(s) => s.notify_tool_list_changed().await.is_ok(),
            };
            if !ok {
                dead.push(id);
            }
        }
        for id in dead {
            hub.sessions.remove(id);
        }
    }
}
