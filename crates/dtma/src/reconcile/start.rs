//! Starting a server: its secrets, the runtime's create, the MCP handshake, and adopting
//! an instance that outlived a DTMA restart.

use crate::bridge::Target;
use crate::bridge::mux::Upstream;
use crate::redact::Redactor;
use crate::runtime::{Instance, Launch, RuntimeError, StdioPipes};
use crate::supervisor::{SecretsError, Supervisor};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use toolbelt_model::ServerId;
use toolbelt_model::catalog::{SecretDelivery, Transport};
use toolbelt_model::dtma::{Discovery, Health};
use toolbelt_model::server::ServerStatus;

/// How long a server may take to answer `initialize`.
pub const HANDSHAKE: Duration = Duration::from_secs(30);

impl Supervisor {
    async fn secrets_for(&self, id: &ServerId) -> Result<BTreeMap<String, String>, SecretsError> {
        let (have, needed) = {
            let map = self.lock();
            let m = map.get(id).ok_or(SecretsError::Gone)?;
            (m.secrets.clone(), !m.spec.secrets.is_empty())
        };
        if let Some(s) = have {
            return Ok(s);
        }
        if !needed {
            return Ok(BTreeMap::new());
        }
        let src = self.secret_source.as_ref().ok_or(SecretsError::NoSource)?;
        let s = src.secrets_for(id).await?;
        if let Some(m) = self.lock().get_mut(id) {
            m.secrets = Some(s.clone());
        }
        Ok(s)
    }

    /// What masks a server's secret values in its log: made at its start, else (an
    /// instance re-adopted after a DTMA restart) from its values fetched again. When they
    /// cannot be had, every line is hidden rather than shown unmasked (not kept: the next
    /// call tries again).
    pub(crate) async fn redactor(&self, id: &ServerId) -> Arc<Redactor> {
        if let Some(r) = self.lock().get(id).and_then(|m| m.redactor.clone()) {
            return r;
        }
        match self.secrets_for(id).await {
            Ok(s) => self.set_redactor(id, Redactor::new(&s)),
            Err(e) => {
                tracing::warn!(server = %id, error = %e, "its secret values are not known: its log is hidden");
                Arc::new(Redactor::blind())
            }
        }
    }

    /// Keeps `r` (with the values of the one before, for an instance still running) and
    /// has the bridge's log use it; a value too short to mask is warned of.
    fn set_redactor(&self, id: &ServerId, r: Redactor) -> Arc<Redactor> {
        let mut map = self.lock();
        let Some(m) = map.get_mut(id) else {
            return Arc::new(r);
        };
        let r = Arc::new(match &m.redactor {
            Some(old) => r.and(old),
            None => r,
        });
        for name in r.unmasked() {
            tracing::warn!(server = %m.spec.name, secret = %name, "a secret value too short to be masked in the server's log");
        }
        m.logs.set_redactor(r.clone());
        m.redactor = Some(r.clone());
        r
    }

    /// `text` (an error that may quote the server) with the server's secret values masked.
    pub(crate) fn masked(&self, id: &ServerId, text: String) -> String {
        match self.lock().get(id).and_then(|m| m.redactor.clone()) {
            Some(r) if !r.is_empty() => r.mask(&text),
            _ => text,
        }
    }

    pub(super) async fn create(self: &Arc<Self>, id: &ServerId) {
        let Some(spec) = self.spec(id) else { return };
        let secrets = match self.secrets_for(id).await {
            Ok(s) => s,
            Err(e) => return self.failed_start(id, format!("secrets unavailable: {e}")),
        };
        if let Some(missing) = spec
            .secrets
            .iter()
            .find(|r| r.required && !secrets.contains_key(&r.name))
        {
            // Not kept: the next attempt asks again, so providing it is enough to recover.
            if let Some(m) = self.lock().get_mut(id) {
                m.secrets = None;
            }
            return self.failed_start(
                id,
                format!("required secret {} was not provided", missing.name),
            );
        }
        // Every value it is given, env or file: a server may print either.
        let redactor = self.set_redactor(id, Redactor::new(&secrets));
        let (mut files, mut env) = (BTreeMap::new(), BTreeMap::new());
        for req in &spec.secrets {
            if let Some(v) = secrets.get(&req.name) {
                match req.delivery {
                    SecretDelivery::File => files.insert(req.name.clone(), v.clone()),
                    SecretDelivery::Env => env.insert(req.name.clone(), v.clone()),
                };
            }
        }
        let secrets_dir = if files.is_empty() {
            None
        } else {
            let owner = self.runtime.secrets_owner(&spec);
            match self
                .store
                .write(id.as_str(), spec.generation, &files, owner)
            {
                Ok(d) => Some(d),
                Err(e) => return self.failed_start(id, format!("cannot write secret files: {e}")),
            }
        };
        tracing::debug!(server = %spec.name, generation = spec.generation, secrets = ?secrets.keys().collect::<Vec<_>>(), "creating");
        let launch = Launch {
            server: &spec,
            secrets_dir,
            secret_env: env,
            redactor,
        };
        match self.runtime.create(launch).await {
            Ok((inst, pipes)) => {
                if let Some(m) = self.lock().get_mut(id) {
                    m.history.started(&inst.handle, Instant::now());
                    m.instance = Some(inst.clone());
                }
                self.connect(id, &spec.name, spec.transport, inst, pipes)
                    .await;
            }
            Err(RuntimeError::Unavailable(e)) => {
                self.set_runtime_state(false, Some(e));
                if let Some(m) = self.lock().get_mut(id) {
                    m.history.engine_unavailable(Instant::now());
                }
            }
            Err(e) => self.failed_start(id, e.to_string()),
        }
    }

    /// A start that failed before the server ran: retried with backoff, reported as
    /// `error_runtime` with the reason (a missing image, a missing secret…).
    pub(super) fn failed_start(&self, id: &ServerId, why: String) {
        let why = self.masked(id, why);
        tracing::warn!(server = %id, error = %why, "start failed");
        if let Some(m) = self.lock().get_mut(id) {
            m.history.start_failed(Instant::now());
            m.status = ServerStatus::ErrorRuntime;
            m.health = Health::Failing;
            m.last_error = Some(why);
        }
    }

    /// An instance that runs but cannot be bridged: removed (or the next pass would
    /// adopt it, fail again and spin), then retried like a failed start.
    async fn unusable(&self, id: &ServerId, inst: &Instance, why: String) {
        if let Err(e) = self.runtime.remove(inst).await {
            tracing::warn!(container = %inst.handle, error = %e, "remove failed");
        }
        if let Some(m) = self.lock().get_mut(id)
            && m.instance.as_ref().is_some_and(|i| i.handle == inst.handle)
        {
            m.instance = None;
            m.history.stopped();
        }
        self.failed_start(id, why);
    }

    /// Wires a running instance into the bridge and runs the MCP handshake.
    async fn connect(
        self: &Arc<Self>,
        id: &ServerId,
        name: &str,
        transport: Transport,
        inst: Instance,
        pipes: Option<StdioPipes>,
    ) {
        if transport != Transport::Stdio {
            let Some(ep) = inst.endpoint.clone() else {
                return self
                    .unusable(
                        id,
                        &inst,
                        "the container has no address on the toolbox network".into(),
                    )
                    .await;
            };
            self.set_bridge(name, Some(Target::Http(ep)));
            if let Some(m) = self.lock().get_mut(id) {
                m.status = ServerStatus::Running;
                m.health = Health::Unknown;
            }
            return;
        }
        let Some(pipes) = pipes else {
            return self.unusable(id, &inst, "no stdio pipes".into()).await;
        };
        let logs = match self.lock().get(id) {
            Some(m) => m.logs.clone(),
            None => return,
        };
        let up = Upstream::spawn(name, pipes, logs);
        match up.initialize(HANDSHAKE).await {
            Ok(init) => {
                let tools = up
                    .request("tools/list", json!({}), Duration::from_secs(10))
                    .await;
                let tool_count = tools
                    .pointer("/result/tools")
                    .and_then(Value::as_array)
                    .map(|a| a.len() as u32);
                let discovery = Discovery {
                    name: name.to_string(),
                    transport,
                    protocol_version: init
                        .get("protocolVersion")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    capabilities: init.get("capabilities").cloned().unwrap_or(json!({})),
                    server_info: init.get("serverInfo").cloned(),
                    tool_count,
                    health: Health::Ok,
                };
                self.set_bridge(name, Some(Target::Stdio(up.clone())));
                if let Some(m) = self.lock().get_mut(id) {
                    m.upstream = Some(up.clone());
                    m.discovery = Some(discovery);
                    m.status = ServerStatus::Running;
                    m.health = Health::Ok;
                    m.last_error = None;
                }
                self.watch(id.clone(), up);
            }
            Err(e) => {
                // A server that cannot finish the handshake has failed like a crash: its
                // exit code (if it is exiting) and log tail go into the verdict.
                up.close();
                let inst = self.settle(inst).await;
                self.failed_instance(id, inst, Some(format!("MCP handshake failed: {e}")))
                    .await;
            }
        }
    }

    pub(super) async fn adopt(self: &Arc<Self>, id: &ServerId, inst: Instance) {
        let Some(spec) = self.spec(id) else { return };
        // How long it has run already, by the engine's clock (for the crash-loop count).
        let ran = inst
            .started_at
            .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
            .unwrap_or_default();
        if let Some(m) = self.lock().get_mut(id) {
            m.history.adopted(&inst.handle, ran, Instant::now());
        }
        // Before its output is read again: the values this DTMA forgot when it restarted.
        self.redactor(id).await;
        if spec.transport != Transport::Stdio {
            return self
                .connect(id, &spec.name, spec.transport, inst, None)
                .await;
        }
        match self.runtime.attach(&inst).await {
            Ok(pipes) => {
                tracing::info!(server = %spec.name, container = %inst.handle, "re-adopted");
                self.connect(id, &spec.name, spec.transport, inst, Some(pipes))
                    .await
            }
            Err(e) => {
                tracing::info!(server = %spec.name, error = %e, "cannot re-attach; replacing the instance");
                self.remove_instance(&inst).await;
            }
        }
    }
}
