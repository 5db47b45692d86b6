//! The supervisor and reconcile against the in-memory runtime, on a paused clock: crash
//! loops, backoff and handshake timeouts take virtual seconds and real milliseconds.

mod adoption;
mod crashes;
mod desired;

use crate::bridge::Bridges;
use crate::control::ChannelError;
use crate::runtime::Runtime;
use crate::runtime::fake::FakeRuntime;
use crate::runtime::secrets::SecretStore;
use crate::supervisor::{SecretSource, SecretsError, Supervisor};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use toolbelt_model::ServerId;
use toolbelt_model::catalog::{CatalogSource, PackageManager, Transport};
use toolbelt_model::dtma::{DesiredServer, ObservedServer};
use toolbelt_model::server::{DesiredState, ServerStatus};

/// The reconcile interval of these tests.
const TICK: Duration = Duration::from_millis(200);
/// The longest (virtual) wait for anything.
const LIMIT: Duration = Duration::from_secs(900);

/// A well-formed server id for a test server's name (`srv_000…0fx`).
fn id_of(name: &str) -> ServerId {
    let plain: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    ServerId::parse(&format!("srv_{plain:0>26}")).expect("a short test name")
}

fn spec(name: &str) -> DesiredServer {
    DesiredServer {
        id: id_of(name),
        name: name.to_string(),
        generation: 1,
        desired: DesiredState::Running,
        source: CatalogSource::Package {
            manager: PackageManager::Binary,
            package: "fake".into(),
            command: vec!["fake".into()],
        },
        transport: Transport::Stdio,
        port: None,
        env: BTreeMap::new(),
        secrets: vec![],
        limits: Default::default(),
        config: Default::default(),
        egress: vec![],
        image_digest: None,
        allowed_registries: vec![],
    }
}

/// Stands in for the control plane's secrets endpoint.
#[derive(Default)]
struct Vault {
    answer: Mutex<Option<Result<BTreeMap<String, String>, String>>>,
    calls: Mutex<usize>,
}

impl Vault {
    fn answer(&self, a: Result<&[(&str, &str)], &str>) {
        *self.answer.lock().unwrap() = Some(
            a.map(|kv| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .map_err(str::to_string),
        );
    }

    fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl SecretSource for Vault {
    async fn secrets_for(
        &self,
        _server: &ServerId,
    ) -> Result<BTreeMap<String, String>, SecretsError> {
        *self.calls.lock().unwrap() += 1;
        self.answer
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| Ok(BTreeMap::new()))
            .map_err(|detail| {
                SecretsError::Channel(ChannelError::Refused {
                    status: 503,
                    detail,
                })
            })
    }
}

/// One DTMA (a supervisor and its reconcile loop) on a fake runtime.
struct World {
    fake: Arc<FakeRuntime>,
    sup: Arc<Supervisor>,
    bridges: Arc<Bridges>,
    vault: Arc<Vault>,
    stop: CancellationToken,
    reconcile: tokio::task::JoinHandle<()>,
    secrets: Arc<tempfile::TempDir>,
}

impl World {
    fn start(fake: FakeRuntime) -> World {
        let secrets = Arc::new(tempfile::tempdir().expect("a temporary directory"));
        World::on(Arc::new(fake), secrets)
    }

    fn on(fake: Arc<FakeRuntime>, secrets: Arc<tempfile::TempDir>) -> World {
        let bridges = Arc::new(Bridges::new(Duration::from_secs(60)));
        let vault = Arc::new(Vault::default());
        let store = SecretStore::under(secrets.path(), "tbx_test", false).expect("a secret store");
        let rt: Arc<dyn Runtime> = fake.clone();
        let sup = Supervisor::new(rt, bridges.clone(), store, Some(vault.clone()), None);
        let stop = CancellationToken::new();
        let reconcile = tokio::spawn(sup.clone().run(TICK, stop.clone()));
        World {
            fake,
            sup,
            bridges,
            vault,
            stop,
            reconcile,
            secrets,
        }
    }

    /// This DTMA dies (its pipes with it); a new one starts on the same runtime, not
    /// knowing its desired set yet.
    fn restart_dtma(self) -> World {
        self.stop.cancel();
        self.reconcile.abort();
        for m in self.sup.lock().values() {
            if let Some(up) = &m.upstream {
                up.close();
            }
        }
        World::on(self.fake.clone(), self.secrets.clone())
    }

    fn get(&self, name: &str) -> Option<ObservedServer> {
        self.sup.observed().into_iter().find(|o| o.name == name)
    }

    /// Every distinct observation of `name` until `done` holds for one (the last).
    async fn trail(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&ObservedServer) -> bool,
    ) -> Vec<ObservedServer> {
        let deadline = Instant::now() + LIMIT;
        let mut seen: Vec<ObservedServer> = Vec::new();
        loop {
            if let Some(o) = self.get(name) {
                let same = seen.last().is_some_and(|l| {
                    (l.status, &l.container_id, l.generation, l.restarts)
                        == (o.status, &o.container_id, o.generation, o.restarts)
                });
                let done = done(&o);
                if same {
                    // The latest of a run of alike observations.
                    *seen.last_mut().expect("not empty") = o;
                } else {
                    seen.push(o);
                }
                if done {
                    return seen;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {LIMIT:?}; seen {seen:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn until(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&ObservedServer) -> bool,
    ) -> ObservedServer {
        let mut t = self.trail(name, what, done).await;
        t.pop().expect("the last observation")
    }

    /// Waits until the supervisor has forgotten `name`.
    async fn gone(&self, name: &str) {
        let deadline = Instant::now() + LIMIT;
        while let Some(o) = self.get(name) {
            assert!(Instant::now() < deadline, "{name} never forgotten: {o:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Running with an instance other than `not`.
    async fn running(&self, name: &str, not: Option<&str>) -> ObservedServer {
        self.until(name, "running", |o| {
            o.status == ServerStatus::Running
                && o.container_id.is_some()
                && o.container_id.as_deref() != not
        })
        .await
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.cancel();
        self.reconcile.abort();
    }
}

/// Lets (virtual) time pass with reconcile running.
async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}
