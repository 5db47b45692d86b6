//! Reconcile: the desired set against what the runtime has. Create what is missing,
//! restart what crashed (exponential backoff; a crash loop ends in `error_runtime` with
//! the last log lines), remove what this toolbox owns and no longer wants, re-adopt what
//! survived a DTMA restart. Slow work runs in tasks so one server never holds up others.

use crate::bridge::Target;
use crate::bridge::mux::Upstream;
use crate::runtime::{Instance, Launch, RuntimeError, StdioPipes};
use crate::supervisor::{SecretsError, Supervisor};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use toolbelt_model::ServerId;
use toolbelt_model::catalog::{SecretDelivery, Transport};
use toolbelt_model::dtma::{Discovery, Health};
use toolbelt_model::server::{DesiredState, ServerStatus};

/// Consecutive quick crashes after which a server is left in `error_runtime`.
pub const CRASH_LOOP_LIMIT: u32 = 5;
/// A run shorter than this counts as a quick crash.
const QUICK: Duration = Duration::from_secs(30);
const HANDSHAKE: Duration = Duration::from_secs(30);

fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

enum Action {
    Create(ServerId),
    Adopt(ServerId, Instance),
    Crashed(ServerId, Instance),
    Remove(Option<ServerId>, Instance),
}

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
        let instances = match self.runtime.list().await {
            Ok(v) => {
                *self.runtime_state.lock().unwrap_or_else(|p| p.into_inner()) = (true, None);
                v
            }
            Err(e) => {
                tracing::warn!(error = %e, "runtime unavailable");
                *self.runtime_state.lock().unwrap_or_else(|p| p.into_inner()) =
                    (false, Some(e.to_string()));
                return;
            }
        };
        let mut by_server: HashMap<ServerId, Vec<Instance>> = HashMap::new();
        for i in instances {
            by_server.entry(i.server_id.clone()).or_default().push(i);
        }
        let known = self.desired_known.load(Ordering::Acquire);
        let mut actions = Vec::new();
        {
            let mut map = self.lock();
            for (sid, insts) in &by_server {
                let Some(m) = map.get_mut(sid) else {
                    if known {
                        actions.extend(insts.iter().map(|i| Action::Remove(None, i.clone())));
                    }
                    continue;
                };
                for inst in insts {
                    let wanted = !m.removing
                        && m.spec.desired == DesiredState::Running
                        && inst.generation == m.spec.generation;
                    if !wanted {
                        if !m.busy {
                            m.busy = true;
                            actions.push(Action::Remove(Some(sid.clone()), inst.clone()));
                        }
                    } else if inst.running {
                        let stale = m.upstream.as_ref().is_some_and(|u| !u.is_alive());
                        let unbridged =
                            m.upstream.is_none() && self.bridges.get(&m.spec.name).is_none();
                        m.instance = Some(inst.clone());
                        if stale && !m.busy && self.runtime.stdio_closes_with_server() {
                            // A child whose stdio closed is gone even if it is not reaped
                            // yet: a crash, counted as one (replacing it as a fresh start
                            // would hide a crash loop).
                            m.busy = true;
                            actions.push(Action::Crashed(sid.clone(), inst.clone()));
                        } else if (stale || unbridged) && !m.busy {
                            m.busy = true;
                            m.status = ServerStatus::Deploying;
                            actions.push(Action::Adopt(sid.clone(), inst.clone()));
                        }
                    } else if !m.busy {
                        m.busy = true;
                        actions.push(Action::Crashed(sid.clone(), inst.clone()));
                    }
                }
            }
            let now = Instant::now();
            let mut done = Vec::new();
            for (sid, m) in map.iter_mut() {
                let has_current = by_server
                    .get(sid)
                    .is_some_and(|v| v.iter().any(|i| i.generation == m.spec.generation));
                let has_any = by_server.contains_key(sid);
                if m.removing {
                    if !has_any && !m.busy {
                        done.push(sid.clone());
                    }
                } else if m.spec.desired != DesiredState::Running {
                    if !has_any && !m.busy {
                        m.status = ServerStatus::Stopped;
                        m.health = Health::Unknown;
                        m.instance = None;
                        m.upstream = None;
                    }
                } else if !has_current && !m.busy && !m.gave_up && now >= m.next_attempt {
                    m.busy = true;
                    if m.status != ServerStatus::ErrorRuntime {
                        m.status = ServerStatus::Deploying;
                    }
                    actions.push(Action::Create(sid.clone()));
                }
            }
            for sid in done {
                if let Some(m) = map.remove(&sid) {
                    self.set_bridge(&m.spec.name, None);
                    self.store.remove_all_but(sid.as_str(), None);
                }
            }
        }
        for a in actions {
            let s = self.clone();
            tokio::spawn(async move {
                let sid = match &a {
                    Action::Create(id) | Action::Adopt(id, _) | Action::Crashed(id, _) => {
                        Some(id.clone())
                    }
                    Action::Remove(id, _) => id.clone(),
                };
                match a {
                    Action::Create(id) => s.create(&id).await,
                    Action::Adopt(id, inst) => s.adopt(&id, inst).await,
                    Action::Crashed(id, inst) => s.crashed(&id, inst).await,
                    Action::Remove(_, inst) => s.remove_instance(&inst).await,
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

    async fn create(self: &Arc<Self>, id: &ServerId) {
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
            return self.failed_start(
                id,
                format!("required secret {} was not provided", missing.name),
            );
        }
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
            match self.store.write(id.as_str(), spec.generation, &files) {
                Ok(d) => Some(d),
                Err(e) => return self.failed_start(id, format!("cannot write secret files: {e}")),
            }
        };
        tracing::debug!(server = %spec.name, generation = spec.generation, secrets = ?secrets.keys().collect::<Vec<_>>(), "creating");
        let launch = Launch {
            server: &spec,
            secrets_dir,
            secret_env: env,
        };
        match self.runtime.create(launch).await {
            Ok((inst, pipes)) => {
                if let Some(m) = self.lock().get_mut(id) {
                    m.instance = Some(inst.clone());
                }
                self.connect(id, &spec.name, spec.transport, inst, pipes)
                    .await;
            }
            Err(RuntimeError::Unavailable(e)) => {
                *self.runtime_state.lock().unwrap_or_else(|p| p.into_inner()) = (false, Some(e));
                if let Some(m) = self.lock().get_mut(id) {
                    m.next_attempt = Instant::now() + Duration::from_secs(5);
                }
            }
            Err(e) => self.failed_start(id, e.to_string()),
        }
    }

    /// A start that failed before the server ran: retried with backoff, reported as
    /// `error_runtime` with the reason (a missing image, a missing secret…).
    fn failed_start(&self, id: &ServerId, why: String) {
        tracing::warn!(server = %id, error = %why, "start failed");
        if let Some(m) = self.lock().get_mut(id) {
            m.fast_failures += 1;
            m.status = ServerStatus::ErrorRuntime;
            m.health = Health::Failing;
            m.last_error = Some(why);
            m.next_attempt = Instant::now() + backoff(m.fast_failures);
        }
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
                return self.failed_start(
                    id,
                    "the container has no address on the toolbox network".into(),
                );
            };
            self.set_bridge(name, Some(Target::Http(ep)));
            if let Some(m) = self.lock().get_mut(id) {
                m.status = ServerStatus::Running;
                m.health = Health::Unknown;
            }
            return;
        }
        let Some(pipes) = pipes else {
            return self.failed_start(id, "no stdio pipes".into());
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

    /// Gives an instance that is going down a moment to report its exit code.
    async fn settle(&self, inst: Instance) -> Instance {
        for _ in 0..10 {
            if let Ok(list) = self.runtime.list().await
                && let Some(i) = list.into_iter().find(|i| i.handle == inst.handle)
                && !i.running
            {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        inst
    }

    /// Keeps the tool count fresh and wakes reconcile when the server's stdio closes.
    fn watch(self: &Arc<Self>, id: ServerId, up: Arc<Upstream>) {
        let s = self.clone();
        tokio::spawn(async move {
            let mut rx = up.subscribe();
            loop {
                tokio::select! {
                    _ = up.closed() => break,
                    msg = rx.recv() => match msg {
                        Ok(line) if line.contains("notifications/tools/list_changed") => {
                            let tools = up.request("tools/list", json!({}), Duration::from_secs(10)).await;
                            let n = tools.pointer("/result/tools").and_then(Value::as_array).map(|a| a.len() as u32);
                            if let Some(d) = s.lock().get_mut(&id).and_then(|m| m.discovery.as_mut()) {
                                d.tool_count = n;
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
            }
            s.wake.notify_one();
        });
    }

    async fn adopt(self: &Arc<Self>, id: &ServerId, inst: Instance) {
        let Some(spec) = self.spec(id) else { return };
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

    async fn crashed(self: &Arc<Self>, id: &ServerId, inst: Instance) {
        let inst = if inst.running {
            self.settle(inst).await
        } else {
            inst
        };
        self.failed_instance(id, inst, None).await
    }

    /// An instance that exited or never became usable: counted, logged, removed, and
    /// restarted with backoff — or, after a crash loop, left in `error_runtime`.
    async fn failed_instance(
        self: &Arc<Self>,
        id: &ServerId,
        inst: Instance,
        reason: Option<String>,
    ) {
        let tail = self.log_tail(&inst, 20).await;
        let _ = self.runtime.remove(&inst).await;
        let name = {
            let mut map = self.lock();
            let Some(m) = map.get_mut(id) else { return };
            let quick = inst
                .started_at
                .is_none_or(|t| (chrono::Utc::now() - t).to_std().unwrap_or_default() < QUICK);
            m.fast_failures = if quick { m.fast_failures + 1 } else { 1 };
            m.restarts += 1;
            m.instance = None;
            m.upstream = None;
            m.health = Health::Failing;
            let code = inst
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into());
            let mut why = reason
                .clone()
                .unwrap_or_else(|| format!("exited with code {code}"));
            if m.fast_failures >= CRASH_LOOP_LIMIT {
                m.gave_up = true;
                m.status = ServerStatus::ErrorRuntime;
                why = format!(
                    "crashed {} times in a row (last exit code {code}); not restarting until it is restarted or redeployed",
                    m.fast_failures
                );
                if let Some(r) = &reason {
                    why = format!("{why}; {r}");
                }
            } else {
                m.status = ServerStatus::Deploying;
                m.next_attempt = Instant::now() + backoff(m.fast_failures);
            }
            if !tail.is_empty() {
                why = format!("{why}; last log lines:\n{tail}");
            }
            m.last_error = Some(why);
            m.spec.name.clone()
        };
        self.set_bridge(&name, None);
        tracing::warn!(server = %name, exit = ?inst.exit_code, "server exited");
    }

    async fn log_tail(&self, inst: &Instance, n: usize) -> String {
        let mut out = Vec::new();
        if let Ok(mut s) = self.runtime.logs(inst, n, false).await {
            let collect = async {
                while let Some(b) = s.next().await {
                    out.extend_from_slice(&b);
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), collect).await;
        }
        let text = String::from_utf8_lossy(&out).trim_end().to_string();
        if text.is_empty()
            && let Some(m) = self.lock().get(&inst.server_id)
        {
            return m.logs.tail(n).join("\n");
        }
        text
    }

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
            let name = m.spec.name.clone();
            drop(map);
            self.set_bridge(&name, None);
        }
    }

    /// Pings every bridged stdio server; the result is the health in status reports.
    async fn health_loop(self: Arc<Self>, stop: CancellationToken) {
        let every = std::env::var("TOOLBELT_HEALTH_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            let ups: Vec<(ServerId, Arc<Upstream>)> = self
                .lock()
                .iter()
                .filter_map(|(id, m)| m.upstream.clone().map(|u| (id.clone(), u)))
                .collect();
            for (id, up) in ups {
                let r = up.request("ping", json!({}), Duration::from_secs(5)).await;
                let h = if r.get("result").is_some() {
                    Health::Ok
                } else {
                    Health::Failing
                };
                if let Some(m) = self.lock().get_mut(&id) {
                    m.health = h;
                }
            }
        }
    }
}
