//! What the gateway knows of every live server: where it is, its tools (as the upstream
//! serves them) with their pin verdicts and argument validators, its resources and
//! prompts. Discovery contacts servers in parallel, each under its own deadline, so a
//! dead or slow server never holds up the others; its failure is recorded on the server.

use crate::error::Unreachable;
use crate::pinning::{self, Verdict};
use crate::upstream::{Endpoint, Upstreams};
use rmcp::model::{Prompt, Resource, ResourceTemplate, ServerCapabilities, Tool};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use toolbelt_model::catalog::{CatalogEntry, CatalogSource};
use toolbelt_model::server::{Server, ServerDiscovery, ServerStatus};
use toolbelt_model::toolbox::{Toolbox, ToolboxKind, ToolboxStatus};
use toolbelt_model::{ConnectionId, ServerId, ToolboxId, UserId};
use toolbelt_store::{Store, catalog, servers, toolboxes};

mod discovery;
pub mod paging;
mod per_user;

pub use per_user::Key;

pub struct ServerEntry {
    pub id: ServerId,
    pub name: String,
    pub toolbox_id: ToolboxId,
    pub toolbox_name: String,
    pub owner_id: Option<UserId>,
    pub toolbox_status: ToolboxStatus,
    pub status: ServerStatus,
    /// Bumped by every restart: a new generation is a new instance, with new sessions.
    pub generation: i64,
    pub endpoint: Option<Endpoint>,
    /// The OAuth provider its catalog entry acts with (its calls carry a user's token).
    pub oauth_provider: Option<String>,
    pub audit_arguments: bool,
    /// Tools appearing after the first discovery are pinned on sight (catalog option).
    pub auto_approve_new_tools: bool,
    /// What discovery found, shared (never copied) by every entry of this server and
    /// every agent's view of it.
    pub tools: Arc<Vec<Tool>>,
    pub verdicts: Arc<HashMap<String, Verdict>>,
    pub validators: Arc<HashMap<String, Arc<jsonschema::Validator>>>,
    pub resources: Arc<Vec<Resource>>,
    pub templates: Arc<Vec<ResourceTemplate>>,
    pub prompts: Arc<Vec<Prompt>>,
    /// Pin verdicts of its prompts and resource templates.
    pub listing_verdicts: Arc<ListingVerdicts>,
    pub capabilities: Option<ServerCapabilities>,
    pub discovered: Option<Instant>,
    pub error: Option<String>,
    /// The connection whose token listed what this entry holds: servers that act with
    /// users' tokens are listed once per granted connection (see `per_user`).
    pub connection: Option<ConnectionId>,
}

/// Verdicts of what a server lists besides tools, pinned like them.
#[derive(Default)]
pub struct ListingVerdicts {
    /// By prompt name.
    pub prompts: HashMap<String, Verdict>,
    /// By `uriTemplate`.
    pub templates: HashMap<String, Verdict>,
}

impl ListingVerdicts {
    pub fn template_visible(&self, uri_template: &str) -> bool {
        self.templates.get(uri_template).is_some_and(|v| v.visible)
    }
}

impl ServerEntry {
    /// Its calls carry a user's token, so what it lists may differ per user: it is
    /// discovered per connection, and each agent sees the listing of its own connection.
    pub fn per_user(&self) -> bool {
        self.oauth_provider.is_some() && matches!(self.endpoint, Some(Endpoint::Remote { .. }))
    }

    pub fn reference(&self) -> crate::policy::ServerRef<'_> {
        crate::policy::ServerRef {
            id: &self.id,
            toolbox_id: &self.toolbox_id,
            owner_id: self.owner_id.as_ref(),
        }
    }

    /// Where calls reach it now, or why they cannot (checked before each call: a silent
    /// toolbox or a stopped server fails at once, never hangs).
    pub fn reachable(&self) -> Result<&Endpoint, Unreachable> {
        if self.toolbox_status == ToolboxStatus::Unresponsive {
            return Err(Unreachable::ToolboxUnresponsive(self.toolbox_name.clone()));
        }
        if self.status != ServerStatus::Running {
            return Err(Unreachable::NotRunning {
                server: self.name.clone(),
                status: self.status,
            });
        }
        self.endpoint
            .as_ref()
            .ok_or_else(|| Unreachable::NoEndpoint(self.name.clone()))
    }
}

pub struct Registry {
    store: Store,
    /// Users' credentials for servers that act with them (discovery borrows one).
    oauth: Option<toolbelt_oauth::OAuth>,
    pub upstreams: Arc<Upstreams>,
    map: RwLock<HashMap<ServerId, Arc<ServerEntry>>>,
    /// Per-user servers' listings, one per connection they were discovered with.
    listings: RwLock<HashMap<ServerId, per_user::Listings>>,
    /// Bumped whenever any server's visible tools may have changed.
    pub version: AtomicU64,
    /// Discoveries under way; a second asker waits for the first instead of returning
    /// before the tools are in.
    in_flight: Mutex<HashMap<Key, Arc<tokio::sync::Notify>>>,
    pins_epoch: AtomicU64,
    /// The store epoch the last refresh started at: an audited change since (a server
    /// created, stopped, deleted) makes the next lookup re-read before it answers.
    refreshed_epoch: AtomicU64,
    last_refresh: Mutex<Option<Instant>>,
    pub discovery_deadline: Duration,
}

fn endpoint(s: &Server, tb: &Toolbox, entry: &CatalogEntry) -> Option<Endpoint> {
    match (&entry.spec.source, tb.kind) {
        (CatalogSource::Remote { url }, _) => Some(Endpoint::Remote { url: url.clone() }),
        (_, Some(ToolboxKind::Remote)) => None,
        _ => tb.dtma_url.as_ref().map(|u| Endpoint::Dtma {
            url: format!("{}/mcp/{}", u.trim_end_matches('/'), s.name),
            toolbox_id: tb.id.to_string(),
            pin: tb.dtma_tls_pin.clone(),
        }),
    }
}

impl Registry {
    pub fn new(
        store: Store,
        upstreams: Arc<Upstreams>,
        discovery_deadline: Duration,
        oauth: Option<toolbelt_oauth::OAuth>,
    ) -> Arc<Registry> {
        Arc::new(Registry {
            oauth,
            store,
            upstreams,
            map: RwLock::default(),
            listings: RwLock::default(),
            version: AtomicU64::new(1),
            in_flight: Mutex::default(),
            pins_epoch: AtomicU64::new(0),
            refreshed_epoch: AtomicU64::new(0),
            last_refresh: Mutex::new(None),
            discovery_deadline,
        })
    }

    pub fn snapshot(&self) -> Vec<Arc<ServerEntry>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn get(&self, id: &ServerId) -> Option<Arc<ServerEntry>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Re-reads servers, toolboxes and catalog entries; starts discovery where needed.
    pub async fn refresh(self: &Arc<Self>) -> Result<(), toolbelt_store::StoreError> {
        *self.last_refresh.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        // Read before the rows: a change committed after this read bumps the epoch again.
        self.refreshed_epoch
            .store(self.store.epoch(), Ordering::Release);
        let mut c = self.store.conn().await?;
        let live = servers::all_live(&mut c).await?;
        let mut tbs = HashMap::new();
        let mut entries = HashMap::new();
        for s in &live {
            if !tbs.contains_key(&s.toolbox_id) {
                tbs.insert(
                    s.toolbox_id.clone(),
                    toolboxes::get_internal(&mut c, &s.toolbox_id).await?,
                );
            }
            if !entries.contains_key(&s.catalog_id) {
                entries.insert(
                    s.catalog_id.clone(),
                    catalog::get(&mut c, s.catalog_id.as_str()).await?,
                );
            }
        }
        drop(c);
        let mut to_discover = Vec::new();
        let mut restarted = Vec::new();
        let mut changed = false;
        {
            let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
            let ids: HashSet<_> = live.iter().map(|s| s.id.clone()).collect();
            let before = map.len();
            map.retain(|id, _| ids.contains(id));
            changed |= map.len() != before;
            for s in live {
                let (tb, entry) = (&tbs[&s.toolbox_id], &entries[&s.catalog_id]);
                let ep = endpoint(&s, tb, entry);
                let old = map.get(&s.id).cloned();
                let moved = old.as_ref().is_none_or(|o| {
                    o.endpoint != ep
                        || o.status != s.status
                        || o.toolbox_status != tb.status
                        || o.generation != s.generation
                });
                if old.as_ref().is_some_and(|o| o.generation != s.generation) {
                    restarted.push(s.id.clone());
                }
                if !moved {
                    continue;
                }
                changed = true;
                let became_running = s.status == ServerStatus::Running
                    && old
                        .as_ref()
                        .is_none_or(|o| o.status != ServerStatus::Running || o.endpoint != ep);
                let fresh = ServerEntry {
                    id: s.id.clone(),
                    name: s.name.to_string(),
                    toolbox_id: s.toolbox_id.clone(),
                    toolbox_name: tb.name.to_string(),
                    owner_id: s.owner_id.clone(),
                    toolbox_status: tb.status,
                    status: s.status,
                    generation: s.generation,
                    endpoint: ep,
                    oauth_provider: entry.spec.oauth.as_ref().map(|o| o.provider.clone()),
                    audit_arguments: entry.spec.audit_arguments,
                    auto_approve_new_tools: entry.spec.auto_approve_new_tools,
                    tools: old.as_ref().map(|o| o.tools.clone()).unwrap_or_default(),
                    verdicts: old.as_ref().map(|o| o.verdicts.clone()).unwrap_or_default(),
                    validators: old
                        .as_ref()
                        .map(|o| o.validators.clone())
                        .unwrap_or_default(),
                    resources: old
                        .as_ref()
                        .map(|o| o.resources.clone())
                        .unwrap_or_default(),
                    templates: old
                        .as_ref()
                        .map(|o| o.templates.clone())
                        .unwrap_or_default(),
                    prompts: old.as_ref().map(|o| o.prompts.clone()).unwrap_or_default(),
                    listing_verdicts: old
                        .as_ref()
                        .map(|o| o.listing_verdicts.clone())
                        .unwrap_or_default(),
                    capabilities: old.as_ref().and_then(|o| o.capabilities.clone()),
                    discovered: old.as_ref().and_then(|o| o.discovered),
                    error: old.as_ref().and_then(|o| o.error.clone()),
                    connection: None,
                };
                if became_running
                    || (fresh.discovered.is_none() && fresh.status == ServerStatus::Running)
                {
                    to_discover.push(s.id.clone());
                }
                map.insert(s.id.clone(), Arc::new(fresh));
            }
        }
        self.rebase_listings();
        if changed {
            self.bump();
        }
        // The old instance's sessions died with it: the next call opens a new one at once
        // instead of finding out through an expired session.
        for id in restarted {
            self.upstreams.reset(&id).await;
        }
        for id in to_discover {
            let r = self.clone();
            tokio::spawn(async move { r.discover_server(&id).await });
        }
        // Pin decisions taken elsewhere (approvals) show up as an epoch change.
        let epoch = self.store.epoch();
        if self.pins_epoch.swap(epoch, Ordering::AcqRel) != epoch {
            self.reevaluate_pins().await;
        }
        Ok(())
    }

    /// Refreshes now if an audited change happened since the last refresh began; costs
    /// one atomic load otherwise, so every listing and call can afford it. Concurrent
    /// callers do not all refresh: the first to see the new epoch does.
    pub async fn refresh_if_changed(self: &Arc<Self>) {
        let now = self.store.epoch();
        if self.refreshed_epoch.swap(now, Ordering::AcqRel) == now {
            return;
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "registry refresh failed");
        }
    }

    /// Refreshes now unless that happened in the last 250 ms (a lookup that missed may
    /// concern a server that just started; misses must not become a database flood).
    pub async fn refresh_if_stale(self: &Arc<Self>) {
        {
            let mut last = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_millis(250)) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "registry refresh failed");
        }
    }

    /// Keeps the registry current: every `interval`, and at once when an upstream says
    /// its tools changed.
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        mut changed: tokio::sync::mpsc::UnboundedReceiver<ServerId>,
    ) {
        let mut epoch = self.store.epoch();
        loop {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "registry refresh failed");
            }
            // Failed discoveries are retried every few seconds, and at once after a
            // change that may have fixed them (a new connection grant, say).
            let grants_changed = std::mem::replace(&mut epoch, self.store.epoch()) != epoch;
            for e in self.snapshot().into_iter().chain(self.listed()) {
                if e.error.is_some()
                    && e.status == ServerStatus::Running
                    && !(e.per_user() && e.connection.is_none())
                    && (grants_changed
                        || e.discovered
                            .is_none_or(|d| d.elapsed() > Duration::from_secs(5)))
                {
                    let r = self.clone();
                    let key = (e.id.clone(), e.connection.clone());
                    tokio::spawn(async move { r.discover(&key).await });
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                Some(id) = changed.recv() => {
                    self.discover_server(&id).await;
                }
            }
        }
    }
}

fn clone_entry(e: &ServerEntry) -> ServerEntry {
    ServerEntry {
        id: e.id.clone(),
        name: e.name.clone(),
        toolbox_id: e.toolbox_id.clone(),
        toolbox_name: e.toolbox_name.clone(),
        owner_id: e.owner_id.clone(),
        toolbox_status: e.toolbox_status,
        status: e.status,
        generation: e.generation,
        endpoint: e.endpoint.clone(),
        oauth_provider: e.oauth_provider.clone(),
        audit_arguments: e.audit_arguments,
        auto_approve_new_tools: e.auto_approve_new_tools,
        tools: e.tools.clone(),
        verdicts: e.verdicts.clone(),
        validators: e.validators.clone(),
        resources: e.resources.clone(),
        templates: e.templates.clone(),
        prompts: e.prompts.clone(),
        listing_verdicts: e.listing_verdicts.clone(),
        capabilities: e.capabilities.clone(),
        discovered: e.discovered,
        error: e.error.clone(),
        connection: e.connection.clone(),
    }
}
