//! Servers that act with users' tokens (a remote server whose catalog entry names an OAuth
//! provider) may list different things to different users, and listing them sends a
//! user's token. So they are discovered once per connection, and only with a connection
//! its owner granted for that server (`toolbelt_store::oauth::for_discovery`); an agent
//! sees the listing its own connection made (`AgentPolicy::connection_for`, the same
//! choice its calls' credential makes), never one made with another user's token, and
//! nothing before its connection has listed the server.

use super::*;
use crate::policy::AgentPolicy;

/// What one discovery lists: a server, and for a per-user server the connection whose
/// token the listing is made with.
pub type Key = (ServerId, Option<ConnectionId>);

/// One per-user server's listings.
#[derive(Default)]
pub(super) struct Listings {
    by_connection: HashMap<ConnectionId, Arc<ServerEntry>>,
    /// Every listing's tools, one per name, for the search index (its hits are kept only
    /// where the asking agent's own view holds them).
    union: Arc<Vec<Tool>>,
}

impl Listings {
    fn reunite(&mut self) {
        let mut conns: Vec<_> = self.by_connection.iter().collect();
        conns.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut seen = HashSet::new();
        let tools = conns
            .iter()
            .flat_map(|(_, e)| e.tools.iter())
            .filter(|t| seen.insert(t.name.clone()))
            .cloned()
            .collect();
        self.union = Arc::new(tools);
    }
}

impl Registry {
    /// The entry whose listing `policy`'s agent sees of server `e`: `e` itself, or for a
    /// per-user server the listing of the agent's own connection (None: it has none, or
    /// that connection has not listed the server).
    pub fn entry_for(
        &self,
        e: &Arc<ServerEntry>,
        policy: &AgentPolicy,
    ) -> Option<Arc<ServerEntry>> {
        if !e.per_user() {
            return Some(e.clone());
        }
        let conn = policy.connection_for(&e.id, e.oauth_provider.as_deref()?)?;
        self.listing(&e.id, conn)
    }

    pub(super) fn listing(&self, id: &ServerId, conn: &ConnectionId) -> Option<Arc<ServerEntry>> {
        self.listings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .and_then(|l| l.by_connection.get(conn))
            .cloned()
    }

    /// Every per-connection listing.
    pub(super) fn listed(&self) -> Vec<Arc<ServerEntry>> {
        self.listings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flat_map(|l| l.by_connection.values().cloned())
            .collect()
    }

    /// What `policy`'s agent could see but was never discovered: servers, and for
    /// per-user servers the listing of the agent's own connection.
    pub fn pending(&self, policy: &AgentPolicy) -> Vec<Key> {
        self.snapshot()
            .iter()
            .filter(|e| policy.touches(&e.reference()))
            .filter_map(|e| {
                if !e.per_user() {
                    return e.discovered.is_none().then(|| (e.id.clone(), None));
                }
                let conn = policy.connection_for(&e.id, e.oauth_provider.as_deref()?)?;
                self.listing(&e.id, conn)
                    .is_none()
                    .then(|| (e.id.clone(), Some(conn.clone())))
            })
            .collect()
    }

    /// The tool lists the search index holds: each server's own, and for a per-user
    /// server the union of its listings.
    pub fn search_lists(&self) -> Vec<(ServerId, String, Arc<Vec<Tool>>)> {
        let listings = self.listings.read().unwrap_or_else(|p| p.into_inner());
        self.snapshot()
            .into_iter()
            .map(|e| {
                let tools = match listings.get(&e.id) {
                    Some(l) if e.per_user() => l.union.clone(),
                    _ => e.tools.clone(),
                };
                (e.id.clone(), e.name.clone(), tools)
            })
            .collect()
    }

    /// Installs one connection's listing (replacing the one before).
    pub(super) fn put_listing(&self, conn: &ConnectionId, entry: ServerEntry) {
        let mut m = self.listings.write().unwrap_or_else(|p| p.into_inner());
        let l = m.entry(entry.id.clone()).or_default();
        l.by_connection.insert(conn.clone(), Arc::new(entry));
        l.reunite();
    }

    /// Drops a listing whose connection is no longer granted for the server (or gone).
    pub(super) fn forget_listing(&self, id: &ServerId, conn: &ConnectionId) {
        let mut m = self.listings.write().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = m.get_mut(id)
            && l.by_connection.remove(conn).is_some()
        {
            l.reunite();
            drop(m);
            self.bump();
        }
    }

    /// What to list again when a server's lists may have changed: the server, or each
    /// connection's listing of a per-user server.
    pub(super) fn keys_of(&self, id: &ServerId) -> Vec<Key> {
        match self.get(id) {
            Some(e) if e.per_user() => self
                .listings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(id)
                .map(|l| {
                    l.by_connection
                        .keys()
                        .map(|c| (id.clone(), Some(c.clone())))
                        .collect()
                })
                .unwrap_or_default(),
            Some(_) => vec![(id.clone(), None)],
            None => vec![],
        }
    }

    /// After a refresh: listings follow their server (endpoint, status, generation) and
    /// go with it.
    pub(super) fn rebase_listings(&self) {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut all = self.listings.write().unwrap_or_else(|p| p.into_inner());
        all.retain(|id, _| map.get(id).is_some_and(|e| e.per_user()));
        for (id, l) in all.iter_mut() {
            let base = &map[id];
            for e in l.by_connection.values_mut() {
                let moved = e.endpoint != base.endpoint
                    || e.status != base.status
                    || e.toolbox_status != base.toolbox_status
                    || e.generation != base.generation;
                if moved {
                    *e = Arc::new(rebased(base, e));
                }
            }
        }
    }
}

/// `base` (the server as the store has it now) with what `listed` discovered.
pub(super) fn rebased(base: &ServerEntry, listed: &ServerEntry) -> ServerEntry {
    let mut next = clone_entry(base);
    (next.tools, next.verdicts, next.validators) = (
        listed.tools.clone(),
        listed.verdicts.clone(),
        listed.validators.clone(),
    );
    (next.resources, next.templates, next.prompts) = (
        listed.resources.clone(),
        listed.templates.clone(),
        listed.prompts.clone(),
    );
    (next.capabilities, next.discovered, next.error) = (
        listed.capabilities.clone(),
        listed.discovered,
        listed.error.clone(),
    );
    next.listing_verdicts = listed.listing_verdicts.clone();
    next.connection = listed.connection.clone();
    next
}
