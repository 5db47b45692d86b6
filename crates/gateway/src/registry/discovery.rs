//! Discovery: contacting servers (in parallel, each under its own deadline), pinning and
//! scanning what they serve, and installing the result in the registry.

use super::paging::{self, ListError};
use super::*;
use crate::upstream::ConnectError;
use rmcp::service::ServiceError;

impl From<ListError> for DiscoveryError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Paging(p) => DiscoveryError::Paging(p),
            ListError::Service(s) => DiscoveryError::List(s),
        }
    }
}

/// Why a server's tools could not be listed (recorded on the server, retried).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("gone")]
    Gone,
    #[error("no endpoint")]
    NoEndpoint,
    #[error(transparent)]
    Credential(#[from] toolbelt_oauth::OAuthError),
    #[error("waiting for a {0} connection grant to list its tools with")]
    WaitingForGrant(String),
    /// The connection is not (or no longer) active and granted for this server: its token
    /// is not sent there.
    #[error("connection {0} is not granted for this server")]
    NotGranted(toolbelt_model::ConnectionId),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    List(#[from] ServiceError),
    #[error(transparent)]
    Paging(#[from] paging::PagingError),
    #[error("discovery timed out after {:.1} s", .0.as_secs_f64())]
    Timeout(Duration),
}

type Listing = (
    Vec<Tool>,
    Vec<Resource>,
    Vec<ResourceTemplate>,
    Vec<Prompt>,
    ServerCapabilities,
);

impl Registry {
    /// Discovers what was never discovered (servers, or connections' listings of per-user
    /// servers: [`Registry::pending`]), waiting at most the discovery deadline; servers
    /// that do not answer in time are simply left out.
    pub async fn ensure_discovered(self: &Arc<Self>, keys: &[Key]) {
        let pending: Vec<Key> = keys
            .iter()
            .filter(|(id, conn)| {
                self.get(id).is_some_and(|e| {
                    e.status == ServerStatus::Running
                        && match conn {
                            None => e.discovered.is_none() && e.error.is_none(),
                            Some(c) => self.listing(id, c).is_none(),
                        }
                })
            })
            .cloned()
            .collect();
        if pending.is_empty() {
            return;
        }
        let all = futures::future::join_all(pending.iter().map(|id| self.discover(id)));
        let _ = tokio::time::timeout(self.discovery_deadline, all).await;
    }

    /// Lists a server again (each connection's listing, for a per-user server).
    pub async fn discover_server(self: &Arc<Self>, id: &ServerId) {
        let keys = self.keys_of(id);
        futures::future::join_all(keys.iter().map(|k| self.discover(k))).await;
    }

    /// Lists a server's tools, resources and prompts (with the key's connection), and
    /// applies pins.
    pub async fn discover(self: &Arc<Self>, id: &Key) {
        let mine = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            match in_flight.get(id) {
                Some(n) => Err(n.clone()),
                None => {
                    let n = Arc::new(tokio::sync::Notify::new());
                    in_flight.insert(id.clone(), n.clone());
                    Ok(n)
                }
            }
        };
        match mine {
            Ok(done) => {
                // On every way out (a panic or a dropped future too), waiters are released.
                struct Release<'a>(&'a Registry, &'a Key, Arc<tokio::sync::Notify>);
                impl Drop for Release<'_> {
                    fn drop(&mut self) {
                        self.0
                            .in_flight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(self.1);
                        self.2.notify_waiters();
                    }
                }
                let _release = Release(self, id, done);
                self.discover_now(id).await;
            }
            Err(other) => {
                let wait = other.notified();
                tokio::pin!(wait);
                // Registered before checking again, so a finish in between is not missed.
                wait.as_mut().enable();
                let still = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(id)
                    .is_some_and(|n| Arc::ptr_eq(n, &other));
                if still {
                    wait.await;
                }
            }
        }
    }

    async fn discover_now(self: &Arc<Self>, key: &Key) {
        let result = tokio::time::timeout(self.discovery_deadline, self.fetch(key)).await;
        let (id, conn) = key;
        let Some(base) = self.get(id) else { return };
        if let (Ok(Err(DiscoveryError::NotGranted(_))), Some(c)) = (&result, conn) {
            self.forget_listing(id, c);
            return;
        }
        // What this listing held before (kept when listing again fails).
        let entry = match conn {
            None => base.clone(),
            Some(c) => match self.listing(id, c) {
                Some(l) => l,
                None => {
                    let mut fresh = clone_entry(&base);
                    (fresh.tools, fresh.verdicts, fresh.validators) = Default::default();
                    (fresh.resources, fresh.templates, fresh.prompts) = Default::default();
                    fresh.listing_verdicts = Default::default();
                    fresh.capabilities = None;
                    Arc::new(fresh)
                }
            },
        };
        let (tools, resources, templates, prompts, caps, error) = match result {
            Ok(Ok(f)) => (
                Arc::new(f.0),
                Arc::new(f.1),
                Arc::new(f.2),
                Arc::new(f.3),
                Some(f.4),
                None,
            ),
            Ok(Err(e)) => (
                entry.tools.clone(),
                entry.resources.clone(),
                entry.templates.clone(),
                entry.prompts.clone(),
                entry.capabilities.clone(),
                Some(e.to_string()),
            ),
            Err(_) => (
                entry.tools.clone(),
                entry.resources.clone(),
                entry.templates.clone(),
                entry.prompts.clone(),
                entry.capabilities.clone(),
                Some(DiscoveryError::Timeout(self.discovery_deadline).to_string()),
            ),
        };
        if let Some(e) = &error {
            tracing::warn!(server = %entry.name, error = %e, "discovery failed");
            self.upstreams.reset(id).await;
        }
        let listed = error.is_none();
        let (verdicts, listing_verdicts) = match self
            .verdicts(&base, &tools, &prompts, &templates, listed)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "pin evaluation failed");
                return;
            }
        };
        let validators = tools
            .iter()
            .filter_map(|t| {
                jsonschema::validator_for(&serde_json::Value::Object((*t.input_schema).clone()))
                    .ok()
                    .map(|v| (t.name.to_string(), Arc::new(v)))
            })
            .collect();
        self.install(
            &base,
            conn.as_ref(),
            tools,
            Arc::new(verdicts),
            Arc::new(validators),
            resources,
            templates,
            prompts,
            Arc::new(listing_verdicts),
            caps,
            error,
        )
        .await;
    }

    async fn fetch(&self, (id, conn): &Key) -> Result<Listing, DiscoveryError> {
        let entry = self.get(id).ok_or(DiscoveryError::Gone)?;
        let ep = entry.endpoint.clone().ok_or(DiscoveryError::NoEndpoint)?;
        // A server that acts with users' tokens is listed with the key's connection, and
        // only if its owner granted it for this server.
        let cred = match (entry.per_user(), &entry.oauth_provider, &self.oauth, conn) {
            (true, Some(p), Some(o), Some(c)) => Some(
                o.credential_for_discovery(id, c, p)
                    .await?
                    .ok_or_else(|| DiscoveryError::NotGranted(c.clone()))?,
            ),
            (true, Some(p), _, _) => return Err(DiscoveryError::WaitingForGrant(p.clone())),
            _ => None,
        };
        let conn = self
            .upstreams
            .get(id, &ep, self.discovery_deadline, cred.as_ref())
            .await?;
        let peer = conn.peer();
        let caps = peer
            .peer_info()
            .map(|i| i.capabilities.clone())
            .unwrap_or_default();
        let tools = if caps.tools.is_some() {
            paging::tools(peer).await?
        } else {
            vec![]
        };
        let (resources, templates) = if caps.resources.is_some() {
            (
                paging::resources(peer).await?,
                paging::templates(peer).await.unwrap_or_default(),
            )
        } else {
            (vec![], vec![])
        };
        let prompts = if caps.prompts.is_some() {
            paging::prompts(peer).await?
        } else {
            vec![]
        };
        Ok((tools, resources, templates, prompts, caps))
    }

    /// Pin verdicts of a server's tools, and of its prompts and resource templates
    /// (`listed`: these lists are what the server just answered).
    async fn verdicts(
        &self,
        entry: &ServerEntry,
        tools: &[Tool],
        prompts: &[Prompt],
        templates: &[ResourceTemplate],
        listed: bool,
    ) -> Result<(HashMap<String, Verdict>, ListingVerdicts), toolbelt_store::StoreError> {
        let others: Vec<String> = self
            .snapshot()
            .iter()
            .chain(self.listed().iter())
            .filter(|e| e.id != entry.id)
            .flat_map(|e| {
                e.tools
                    .iter()
                    .map(|t| t.name.to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        let (store, id, owner) = (&self.store, &entry.id, entry.owner_id.as_ref());
        let auto = entry.auto_approve_new_tools;
        let tool_verdicts = pinning::evaluate(store, id, owner, tools, &others, auto).await?;
        let own: HashSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        let pinned_before = {
            let mut c = store.conn().await?;
            toolbelt_store::pins::listings_pinned(&mut c, id).await?
        };
        let scope = pinning::Scope {
            store,
            server: id,
            owner,
            own: &own,
            other_tools: &others,
            auto_approve: auto,
            first_discovery: Some(!pinned_before),
        };
        let listing = ListingVerdicts {
            prompts: pinning::evaluate_prompts(&scope, prompts).await?,
            templates: pinning::evaluate_templates(&scope, templates).await?,
        };
        // Only a listing that came in counts as their first discovery (a failed one is
        // evaluated with what the server had before: nothing, the first time).
        if !pinned_before && listed {
            let mut c = store.conn().await?;
            toolbelt_store::pins::mark_listings_pinned(&mut c, id).await?;
        }
        Ok((tool_verdicts, listing))
    }

    #[allow(clippy::too_many_arguments)]
    async fn install(
        &self,
        entry: &ServerEntry,
        conn: Option<&toolbelt_model::ConnectionId>,
        tools: Arc<Vec<Tool>>,
        verdicts: Arc<HashMap<String, Verdict>>,
        validators: Arc<HashMap<String, Arc<jsonschema::Validator>>>,
        resources: Arc<Vec<Resource>>,
        templates: Arc<Vec<ResourceTemplate>>,
        prompts: Arc<Vec<Prompt>>,
        listing_verdicts: Arc<ListingVerdicts>,
        caps: Option<ServerCapabilities>,
        error: Option<String>,
    ) {
        let held = verdicts.values().filter(|v| !v.visible).count() as u32;
        let summary = ServerDiscovery {
            tools: tools.len() as u32,
            held,
            error: error.clone(),
            at: toolbelt_model::now(),
        };
        {
            let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
            let Some(cur) = map.get(&entry.id) else {
                return;
            };
            let mut next = clone_entry(cur);
            (next.tools, next.verdicts, next.validators) = (tools, verdicts, validators);
            (next.resources, next.templates, next.prompts) = (resources, templates, prompts);
            next.listing_verdicts = listing_verdicts;
            (next.capabilities, next.discovered, next.error) = (caps, Some(Instant::now()), error);
            match conn {
                None => {
                    map.insert(entry.id.clone(), Arc::new(next));
                }
                Some(c) => {
                    next.connection = Some(c.clone());
                    drop(map);
                    self.put_listing(c, next);
                }
            }
        }
        self.bump();
        if let Ok(mut c) = self.store.conn().await {
            let _ = servers::set_discovery(&mut c, &entry.id, &summary).await;
        }
    }

    /// Recomputes every server's pin verdicts from the store (after approvals).
    pub(super) async fn reevaluate_pins(&self) {
        for e in self.snapshot().into_iter().chain(self.listed()) {
            if e.discovered.is_none() {
                continue;
            }
            let listed = e.error.is_none();
            let verdicts = self.verdicts(&e, &e.tools, &e.prompts, &e.templates, listed);
            let Ok((v, lv)) = verdicts.await else {
                continue;
            };
            let flipped = |old: &HashMap<String, Verdict>, new: &HashMap<String, Verdict>| {
                new.iter()
                    .any(|(k, nv)| old.get(k).map(|ov| ov.visible) != Some(nv.visible))
            };
            let changed = flipped(&e.verdicts, &v)
                || flipped(&e.listing_verdicts.prompts, &lv.prompts)
                || flipped(&e.listing_verdicts.templates, &lv.templates);
            let lv = Arc::new(lv);
            if changed {
                match &e.connection {
                    None => {
                        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
                        if let Some(cur) = map.get(&e.id).cloned() {
                            let mut next = clone_entry(&cur);
                            next.verdicts = Arc::new(v);
                            next.listing_verdicts = lv;
                            map.insert(e.id.clone(), Arc::new(next));
                        }
                    }
                    Some(c) => {
                        if let Some(cur) = self.listing(&e.id, c) {
                            let mut next = clone_entry(&cur);
                            next.verdicts = Arc::new(v);
                            next.listing_verdicts = lv;
                            self.put_listing(c, next);
                        }
                    }
                }
                self.bump();
            }
        }
    }
}
