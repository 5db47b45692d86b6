//! The supervisor holds the desired set and what is known of each server; the reconcile
//! loop (`reconcile.rs`) makes the runtime match it.

use crate::bridge::mux::Upstream;
use crate::bridge::{Bridges, Target};
use crate::logs::LogRing;
use crate::reconcile::history::History;
use crate::redact::Redactor;
use crate::runtime::secrets::SecretStore;
use crate::runtime::{Instance, Runtime};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;
use toolbelt_model::dtma::{DesiredServer, Discovery, Health, ObservedServer, RuntimeState};
use toolbelt_model::name::validate_path_component;
use toolbelt_model::server::{DesiredState, ServerStatus};
use toolbelt_model::{Invalid, ServerId};

/// Why a server's secret values could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the server is no longer managed here")]
    Gone,
    #[error("no control plane to fetch secrets from")]
    NoSource,
    #[error(transparent)]
    Channel(#[from] crate::control::ChannelError),
}

/// Where a server's secret values come from when it must be (re)created.
#[async_trait::async_trait]
pub trait SecretSource: Send + Sync {
    async fn secrets_for(
        &self,
        server: &ServerId,
    ) -> Result<BTreeMap<String, String>, SecretsError>;
}

pub(crate) struct Managed {
    pub spec: DesiredServer,
    /// Kept in memory only; fetched again after a restart of the DTMA.
    pub secrets: Option<BTreeMap<String, String>>,
    pub status: ServerStatus,
    pub health: Health,
    /// Restarts, quick crashes in a row, backoff, the crash-loop verdict.
    pub history: History,
    pub last_error: Option<String>,
    pub instance: Option<Instance>,
    pub upstream: Option<Arc<Upstream>>,
    pub discovery: Option<Discovery>,
    pub logs: Arc<LogRing>,
    /// Masks its secret values in its log (built when it is started or re-adopted).
    pub redactor: Option<Arc<Redactor>>,
    /// A create, attach or remove is running for it.
    pub busy: bool,
    /// No longer desired: being removed.
    pub removing: bool,
}

impl Managed {
    pub fn new(spec: DesiredServer) -> Managed {
        let status = match spec.desired {
            DesiredState::Running => ServerStatus::PendingDeploy,
            _ => ServerStatus::Stopped,
        };
        Managed {
            spec,
            secrets: None,
            status,
            health: Health::Unknown,
            history: History::new(Instant::now()),
            last_error: None,
            instance: None,
            upstream: None,
            discovery: None,
            logs: Arc::new(LogRing::new(200)),
            redactor: None,
            busy: false,
            removing: false,
        }
    }
}

pub struct Supervisor {
    pub runtime: Arc<dyn Runtime>,
    pub bridges: Arc<Bridges>,
    pub(crate) store: SecretStore,
    pub(crate) secret_source: Option<Arc<dyn SecretSource>>,
    pub(crate) servers: Mutex<HashMap<ServerId, Managed>>,
    pub(crate) runtime_state: Mutex<(bool, Option<String>)>,
    pub wake: Notify,
    desired_file: Option<PathBuf>,
    /// Set once a desired set is known (from the control plane or the saved copy):
    /// before that, containers of unknown servers are left alone rather than removed.
    pub(crate) desired_known: AtomicBool,
}

impl Supervisor {
    pub fn new(
        runtime: Arc<dyn Runtime>,
        bridges: Arc<Bridges>,
        store: SecretStore,
        secret_source: Option<Arc<dyn SecretSource>>,
        desired_file: Option<PathBuf>,
    ) -> Arc<Supervisor> {
        let sup = Arc::new(Supervisor {
            runtime,
            bridges,
            store,
            secret_source,
            servers: Mutex::new(HashMap::new()),
            runtime_state: Mutex::new((true, None)),
            wake: Notify::new(),
            desired_file,
            desired_known: AtomicBool::new(false),
        });
        // The last desired set we heard, so servers come back even before the control
        // plane answers (never secrets: those are fetched again).
        if let Some(f) = &sup.desired_file
            && let Ok(bytes) = std::fs::read(f)
            && let Ok(set) = serde_json::from_slice::<Vec<DesiredServer>>(&bytes)
        {
            sup.replace_desired(set);
        }
        sup
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServerId, Managed>> {
        self.servers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The full desired set (heartbeat replies). Servers missing from it are removed.
    pub fn replace_desired(&self, set: Vec<DesiredServer>) {
        // Names become paths here: a server whose id, name or secret names are not plain
        // path components is refused, whoever sent it (the control plane checks too).
        let set: Vec<DesiredServer> = set
            .into_iter()
            .filter(|s| match s.validate() {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(server = %s.id, error = %e, "refusing a desired server");
                    false
                }
            })
            .collect();
        self.desired_known.store(true, Ordering::Release);
        {
            let mut map = self.lock();
            let ids: std::collections::HashSet<_> = set.iter().map(|s| s.id.clone()).collect();
            for (id, m) in map.iter_mut() {
                if !ids.contains(id) {
                    m.removing = true;
                }
            }
            for spec in set {
                upsert(&mut map, spec, None);
            }
        }
        self.persist();
        self.wake.notify_one();
    }

    /// One server pushed by the control plane, with its secret values.
    /// Refused (nothing kept, nothing written) unless the spec and every secret name are
    /// plain path components.
    pub fn deploy(
        &self,
        spec: DesiredServer,
        secrets: BTreeMap<String, String>,
    ) -> Result<(), Invalid> {
        spec.validate()?;
        for k in secrets.keys() {
            validate_path_component("secrets", k)?;
        }
        upsert(&mut self.lock(), spec, Some(secrets));
        self.persist();
        self.wake.notify_one();
        Ok(())
    }

    pub fn remove(&self, id: &ServerId) -> bool {
        let found = self.lock().get_mut(id).map(|m| m.removing = true).is_some();
        self.persist();
        self.wake.notify_one();
        found
    }

    /// Changes the desired state; `restart` also starts a new generation.
    pub fn set_state(&self, id: &ServerId, desired: DesiredState, restart: bool) -> bool {
        let mut map = self.lock();
        let Some(m) = map.get_mut(id) else {
            return false;
        };
        let mut spec = m.spec.clone();
        spec.desired = desired;
        if restart {
            spec.generation += 1;
        }
        upsert(&mut map, spec, None);
        drop(map);
        self.persist();
        self.wake.notify_one();
        true
    }

    pub fn find(&self, name: &str) -> Option<ServerId> {
        self.lock()
            .values()
            .find(|m| m.spec.name == name && !m.removing)
            .map(|m| m.spec.id.clone())
    }

    pub fn spec(&self, id: &ServerId) -> Option<DesiredServer> {
        self.lock().get(id).map(|m| m.spec.clone())
    }

    pub fn instance(&self, id: &ServerId) -> Option<Instance> {
        self.lock().get(id).and_then(|m| m.instance.clone())
    }

    fn persist(&self) {
        let Some(f) = &self.desired_file else { return };
        let set: Vec<DesiredServer> = self
            .lock()
            .values()
            .filter(|m| !m.removing)
            .map(|m| m.spec.clone())
            .collect();
        if let Ok(bytes) = serde_json::to_vec(&set) {
            let tmp = f.with_extension("tmp");
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(tmp, f);
            }
        }
    }

    pub fn observed(&self) -> Vec<ObservedServer> {
        let map = self.lock();
        let mut out: Vec<ObservedServer> = map
            .values()
            .map(|m| ObservedServer {
                id: m.spec.id.clone(),
                name: m.spec.name.clone(),
                generation: m.spec.generation,
                status: if m.removing {
                    ServerStatus::Deleting
                } else {
                    m.status
                },
                health: m.health,
                restarts: m.history.restarts,
                last_error: m.last_error.clone(),
                container_id: m.instance.as_ref().map(|i| i.handle.clone()),
                started_at: m.instance.as_ref().and_then(|i| i.started_at),
                image_digest: m.instance.as_ref().and_then(|i| i.image_digest.clone()),
                tool_count: m.discovery.as_ref().and_then(|d| d.tool_count),
                stats: None,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn discovery(&self) -> Vec<Discovery> {
        let map = self.lock();
        let mut out: Vec<Discovery> = map
            .values()
            .filter(|m| !m.removing)
            .map(|m| match &m.discovery {
                Some(d) => Discovery {
                    health: m.health,
                    ..d.clone()
                },
                None => Discovery {
                    name: m.spec.name.clone(),
                    transport: m.spec.transport,
                    protocol_version: None,
                    capabilities: serde_json::json!({}),
                    server_info: None,
                    tool_count: None,
                    health: m.health,
                },
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn runtime_status(&self) -> RuntimeState {
        let (available, detail) = self
            .runtime_state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let isolation = self.runtime.isolation();
        RuntimeState {
            kind: self.runtime.kind(),
            available,
            detail,
            isolation: isolation.map(|(i, _)| i),
            unsandboxed_allowed: isolation
                .is_some_and(|(i, allowed)| i == toolbelt_model::dtma::Isolation::None && allowed),
        }
    }

    pub(crate) fn set_runtime_state(&self, available: bool, detail: Option<String>) {
        *self.runtime_state.lock().unwrap_or_else(|p| p.into_inner()) = (available, detail);
    }

    pub(crate) fn set_bridge(&self, name: &str, target: Option<Target>) {
        match target {
            Some(t) => self.bridges.set(name, t),
            None => self.bridges.remove(name),
        }
    }
}

/// Inserts or updates one desired server; a new generation or desired state clears a
/// crash-loop verdict so the server gets a fresh start.
fn upsert(
    map: &mut HashMap<ServerId, Managed>,
    spec: DesiredServer,
    secrets: Option<BTreeMap<String, String>>,
) {
    match map.get_mut(&spec.id) {
        Some(m) => {
            let new_generation = m.spec.generation != spec.generation;
            if new_generation || m.spec.desired != spec.desired || m.removing {
                m.history.fresh_start(Instant::now());
                // A new generation is a redeploy: the instance running now is the old one,
                // so it is not reported `running` for the new generation.
                if spec.desired == DesiredState::Running
                    && (new_generation || m.status != ServerStatus::Running)
                {
                    m.status = ServerStatus::PendingDeploy;
                }
            }
            m.removing = false;
            m.spec = spec;
            if secrets.is_some() {
                m.secrets = secrets;
            }
        }
        None => {
            let mut m = Managed::new(spec);
            m.secrets = secrets;
            map.insert(m.spec.id.clone(), m);
        }
    }
}
