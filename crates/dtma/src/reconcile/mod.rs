//! Reconcile: the desired set against what the runtime has. Create what is missing,
//! restart what crashed (exponential backoff; a crash loop ends in `error_runtime` with
//! the last log lines), remove what this toolbox owns and no longer wants, re-adopt what
//! survived a DTMA restart.
//!
//! Each pass lists the runtime, asks the pure [`plan`] what to do, applies the quick
//! actions under the supervisor's lock and runs the slow ones (create, adopt, crash,
//! remove) in tasks, so one server never holds up others.

mod failure;
pub mod history;
pub mod plan;
mod start;
mod watch;

pub use history::CRASH_LOOP_LIMIT;

use crate::runtime::Instance;
use crate::supervisor::{Managed, Supervisor};
use plan::{Action, Facts, Known, Link};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use toolbelt_model::ServerId;
use toolbelt_model::dtma::Health;
use toolbelt_model::server::{DesiredState, ServerStatus};

impl Supervisor {
    pub async fn run(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let health = {
            let s = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move { s.health_loop(stop).await })
        };
        loop {
            self.reconcile_once().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
                _ = stop.cancelled() => break,
            }
        }
        health.abort();
    }

    pub async fn reconcile_once(self: &Arc<Self>) {
        let observed = match self.runtime.list().await {
            Ok(v) => {
                self.set_runtime_state(true, None);
                v
            }
            Err(e) => {
                tracing::warn!(error = %e, "runtime unavailable");
                self.set_runtime_state(false, Some(e.to_string()));
                return;
            }
        };
        let facts = Facts {
            now: Instant::now(),
            desired_known: self.desired_known.load(Ordering::Acquire),
            stdio_closes_with_server: self.runtime.stdio_closes_with_server(),
        };
        let slow = {
            let mut map = self.lock();
            let actions = {
                let known: HashMap<ServerId, Known<'_>> = map
                    .iter()
                    .map(|(id, m)| (id.clone(), self.known(m)))
                    .collect();
                plan::plan(&known, &observed, &facts)
            };
            let mut slow = Vec::new();
            for a in actions {
                if a.is_slow() {
                    if let Some(m) = a.server().and_then(|id| map.get_mut(id)) {
                        m.busy = true;
                    }
                    slow.push(a);
                } else {
                    self.apply(&mut map, a);
                }
            }
            slow
        };
        for a in slow {
            let s = self.clone();
            tokio::spawn(async move {
                let sid = a.server().cloned();
                match a {
                    Action::Create(id) => s.create(&id).await,
                    Action::Adopt(id, inst) => s.adopt(&id, inst).await,
                    Action::Crashed(id, inst) => s.crashed(&id, inst).await,
                    Action::Remove(_, inst) => s.remove_instance(&inst).await,
                    _ => unreachable!("only slow actions are spawned"),
                }
                if let Some(id) = sid
                    && let Some(m) = s.lock().get_mut(&id)
                {
                    m.busy = false;
                }
                s.wake.notify_one();
            });
        }
    }

    fn known<'a>(&self, m: &'a Managed) -> Known<'a> {
        let link = match &m.upstream {
            Some(u) if !u.is_alive() => Link::Closed,
            Some(_) => Link::Bridged,
            None if self.bridges.get(&m.spec.name).is_some() => Link::Bridged,
            None => Link::Unbridged,
        };
        Known {
            generation: m.spec.generation,
            desired: m.spec.desired,
            removing: m.removing,
            busy: m.busy,
            status: m.status,
            history: &m.history,
            link,
        }
    }

    /// Carries out a quick action (under the lock the plan was made with).
    fn apply(&self, map: &mut HashMap<ServerId, Managed>, a: Action) {
        match a {
            Action::Track(id, inst) => {
                if let Some(m) = map.get_mut(&id) {
                    m.instance = Some(inst);
                }
            }
            Action::Report(id, status) => {
                if let Some(m) = map.get_mut(&id) {
                    m.status = status;
                }
            }
            Action::Stopped(id) => {
                if let Some(m) = map.get_mut(&id) {
                    m.status = ServerStatus::Stopped;
                    m.health = Health::Unknown;
                    m.instance = None;
                    m.upstream = None;
                    m.history.stopped();
                }
            }
            Action::Forget(id) => {
                if let Some(m) = map.remove(&id) {
                    self.set_bridge(&m.spec.name, None);
                    self.store.remove_all_but(id.as_str(), None);
                }
            }
            Action::Create(_) | Action::Adopt(..) | Action::Crashed(..) | Action::Remove(..) => {
                unreachable!("slow actions run in tasks")
            }
        }
    }

    /// Stops and removes an instance; the server forgets it if it was its own.
    async fn remove_instance(&self, inst: &Instance) {
        // Its calls fail now with a clear error rather than with the kill, and its stdin
        // closes, which lets a well-behaved server exit before the signal.
        let up = self
            .lock()
            .get(&inst.server_id)
            .filter(|m| m.instance.as_ref().is_some_and(|i| i.handle == inst.handle))
            .and_then(|m| m.upstream.clone());
        if let Some(up) = up {
            up.close();
        }
        if let Err(e) = self.runtime.remove(inst).await {
            tracing::warn!(container = %inst.handle, error = %e, "remove failed");
            return;
        }
        let mut map = self.lock();
        let keep = map
            .get(&inst.server_id)
            .filter(|m| !m.removing && m.spec.desired == DesiredState::Running)
            .map(|m| m.spec.generation);
        self.store.remove_all_but(inst.server_id.as_str(), keep);
        if let Some(m) = map.get_mut(&inst.server_id)
            && m.instance.as_ref().is_some_and(|i| i.handle == inst.handle)
        {
            m.instance = None;
            m.upstream = None;
            m.history.stopped();
            let name = m.spec.name.clone();
            drop(map);
            self.set_bridge(&name, None);
        }
    }
}

#[cfg(test)]
mod tests;
