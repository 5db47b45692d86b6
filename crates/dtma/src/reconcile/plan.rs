//! The pure half of reconcile: what is known of each desired server and what the runtime
//! has, at one reading of the clock, in; the actions that make them match, out. No I/O,
//! no locks: the executor (`reconcile/mod.rs`) carries the actions out.

use super::history::History;
use crate::runtime::Instance;
use std::collections::{HashMap, HashSet};
use tokio::time::Instant;
use toolbelt_model::ServerId;
use toolbelt_model::server::{DesiredState, ServerStatus};

/// How a server is wired into the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Nothing in the bridge for it (a DTMA restart, or not started yet).
    Unbridged,
    /// Its stdio upstream's pipes closed.
    Closed,
    /// Bridged and usable: a live stdio upstream or an HTTP target.
    Bridged,
}

/// What the supervisor knows of one desired server.
#[derive(Debug, Clone)]
pub struct Known<'a> {
    pub generation: i64,
    pub desired: DesiredState,
    /// No longer desired: being removed.
    pub removing: bool,
    /// A create, adopt or remove is running for it.
    pub busy: bool,
    pub status: ServerStatus,
    pub history: &'a History,
    pub link: Link,
}

/// The rest of what the plan depends on.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub now: Instant,
    /// A desired set was heard: before that, unknown instances are left alone.
    pub desired_known: bool,
    /// The runtime's stdio dies with the server (processes), so closed pipes are a crash.
    pub stdio_closes_with_server: bool,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// A running instance of the wanted generation is the server's own.
    Track(ServerId, Instance),
    /// Report this status now, before the slow work finishes.
    Report(ServerId, ServerStatus),
    /// Start an instance of the wanted generation.
    Create(ServerId),
    /// Wire a running, unbridged instance into the bridge again.
    Adopt(ServerId, Instance),
    /// The instance exited (or its pipes died with it): count it, remove it, back off.
    Crashed(ServerId, Instance),
    /// Stop and remove an instance (`None`: of a server this toolbox no longer knows).
    Remove(Option<ServerId>, Instance),
    /// Desired stopped and nothing runs.
    Stopped(ServerId),
    /// Deleted and nothing of it is left: forget it.
    Forget(ServerId),
}

impl Action {
    /// The slow actions run in tasks; their server is busy until they end.
    pub fn is_slow(&self) -> bool {
        matches!(
            self,
            Action::Create(_) | Action::Adopt(..) | Action::Crashed(..) | Action::Remove(..)
        )
    }

    pub fn server(&self) -> Option<&ServerId> {
        match self {
            Action::Track(id, _)
            | Action::Report(id, _)
            | Action::Create(id)
            | Action::Adopt(id, _)
            | Action::Crashed(id, _)
            | Action::Stopped(id)
            | Action::Forget(id) => Some(id),
            Action::Remove(id, _) => id.as_ref(),
        }
    }
}

/// One pass: at most one slow action per server, none for a busy one.
pub fn plan(
    known: &HashMap<ServerId, Known<'_>>,
    observed: &[Instance],
    facts: &Facts,
) -> Vec<Action> {
    let mut by_server: HashMap<&ServerId, Vec<&Instance>> = HashMap::new();
    for i in observed {
        by_server.entry(&i.server_id).or_default().push(i);
    }
    let mut busy: HashSet<&ServerId> = known
        .iter()
        .filter(|(_, k)| k.busy)
        .map(|(id, _)| id)
        .collect();
    let mut out = Vec::new();
    for (&sid, insts) in &by_server {
        let Some(k) = known.get(sid) else {
            if facts.desired_known {
                out.extend(insts.iter().map(|i| Action::Remove(None, (*i).clone())));
            }
            continue;
        };
        for &inst in insts {
            let wanted = !k.removing
                && k.desired == DesiredState::Running
                && inst.generation == k.generation;
            if !wanted {
                if busy.insert(sid) {
                    out.push(Action::Remove(Some(sid.clone()), inst.clone()));
                }
            } else if inst.running {
                out.push(Action::Track(sid.clone(), inst.clone()));
                if busy.contains(sid) {
                    continue;
                }
                match k.link {
                    // A child whose stdio closed is gone even if it is not reaped yet: a
                    // crash, counted as one (replacing it as a fresh start would hide a
                    // crash loop).
                    Link::Closed if facts.stdio_closes_with_server => {
                        busy.insert(sid);
                        out.push(Action::Crashed(sid.clone(), inst.clone()));
                    }
                    // A container's attach stream can drop and be made again.
                    Link::Closed | Link::Unbridged => {
                        busy.insert(sid);
                        out.push(Action::Report(sid.clone(), ServerStatus::Deploying));
                        out.push(Action::Adopt(sid.clone(), inst.clone()));
                    }
                    Link::Bridged => {}
                }
            } else if busy.insert(sid) {
                out.push(Action::Crashed(sid.clone(), inst.clone()));
            }
        }
    }
    for (sid, k) in known {
        let insts = by_server.get(sid);
        let has_any = insts.is_some();
        let has_current = insts.is_some_and(|v| v.iter().any(|i| i.generation == k.generation));
        let idle = !busy.contains(sid);
        if k.removing {
            if !has_any && idle {
                out.push(Action::Forget(sid.clone()));
            }
        } else if k.desired != DesiredState::Running {
            if !has_any && idle {
                out.push(Action::Stopped(sid.clone()));
            }
        } else if !has_current && idle && k.history.may_start(facts.now) {
            busy.insert(sid);
            // A server in error_runtime keeps that status (and its reason) while it is
            // retried, so a failing start does not flicker to deploying.
            if k.status != ServerStatus::ErrorRuntime {
                out.push(Action::Report(sid.clone(), ServerStatus::Deploying));
            }
            out.push(Action::Create(sid.clone()));
        }
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
