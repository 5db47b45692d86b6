//! The Docker runtime: each server a hardened container, on a network of its own or none.
//!
//! Only fields the DTMA understands reach the engine: the catalog entry names an image and
//! arguments, never HostConfig. Hardening is not optional here (an admin-approved
//! loosening would be a separate, audited catalog field). Containers are found again by
//! their `toolbelt.*` labels; containers without them are never touched.

mod image;
mod network;
mod spec;

pub use image::split_digest;
pub use network::{ICC_OPTION, ServerNetwork, server_network};
pub use spec::{ContainerSpec, container_spec};

use super::{Instance, Launch, Runtime, RuntimeError, Stats, StdioPipes};
use async_trait::async_trait;
use bollard::Docker;
use bollard::container::{AttachContainerResults, LogOutput};
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use toolbelt_model::ServerId;
use toolbelt_model::catalog::Transport;
use toolbelt_model::toolbox::ToolboxKind;

pub const LABEL_MANAGED: &str = "toolbelt.managed";
pub const LABEL_TOOLBOX: &str = "toolbelt.toolbox";
pub const LABEL_SERVER: &str = "toolbelt.server";
pub const LABEL_NAME: &str = "toolbelt.name";
pub const LABEL_GENERATION: &str = "toolbelt.generation";
pub const LABEL_TRANSPORT: &str = "toolbelt.transport";
pub const LABEL_PORT: &str = "toolbelt.port";

pub struct DockerRuntime {
    docker: Docker,
    toolbox_id: String,
    /// Held from a server network's check to its container's start, and by a sweep.
    net_lock: tokio::sync::Mutex<()>,
    /// Whether the networks a killed DTMA left were swept (at the first listing).
    swept: std::sync::atomic::AtomicBool,
    /// Per container: what an inspect told us (started at, digest, address) — containers
    /// are recreated, never restarted in place, so this never goes stale.
    details: Mutex<HashMap<String, Details>>,
    /// Per server: the image ID this DTMA resolved its reference to, until the control
    /// plane's desired set carries it as the server's pin.
    resolved: Mutex<HashMap<String, String>>,
}

#[derive(Clone, Default)]
struct Details {
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    image_digest: Option<String>,
    ip: Option<String>,
}

fn classify(e: DockerError) -> RuntimeError {
    match e {
        DockerError::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NotFound,
        DockerError::DockerResponseServerError { message, .. } => RuntimeError::Refused(message),
        DockerError::DockerStreamError { error } => RuntimeError::Refused(error),
        other => RuntimeError::Unavailable(other.to_string()),
    }
}

impl DockerRuntime {
    /// Whether a Docker engine answers here.
    pub async fn probe() -> bool {
        match Docker::connect_with_local_defaults() {
            Ok(d) => tokio::time::timeout(Duration::from_secs(3), d.ping())
                .await
                .is_ok_and(|r| r.is_ok()),
            Err(_) => false,
        }
    }

    /// Connects to the local engine and negotiates the API version (the engine may be
    /// older than bollard's default). An engine that does not answer yet is not an error:
    /// the runtime reports itself unavailable until it does.
    pub async fn connect(toolbox_id: &str) -> Result<DockerRuntime, RuntimeError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(classify)?
            .with_timeout(Duration::from_secs(60));
        let docker = match docker.clone().negotiate_version().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "Docker engine not answering yet");
                docker
            }
        };
        Ok(DockerRuntime {
            docker,
            toolbox_id: toolbox_id.to_string(),
            net_lock: tokio::sync::Mutex::new(()),
            swept: std::sync::atomic::AtomicBool::new(false),
            details: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
        })
    }

    async fn details(&self, id: &str) -> Result<Details, RuntimeError> {
        if let Some(d) = self
            .details
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(d.clone());
        }
        let info = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(classify)?;
        let started_at = info
            .state
            .as_ref()
            .and_then(|s| s.started_at.as_deref())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .filter(|t| t.timestamp() > 0);
        // A container sits on one network (its own; the toolbox's for one an older DTMA
        // made): its address there.
        let ip = info
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| {
                n.values()
                    .filter_map(|e| e.ip_address.clone())
                    .find(|ip| !ip.is_empty())
            });
        let d = Details {
            started_at,
            image_digest: info.image.clone(),
            ip,
        };
        if d.started_at.is_some() {
            self.details
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_string(), d.clone());
        }
        Ok(d)
    }

    /// Creates and starts the container (on its network, made first), its stdio attached
    /// before the start so no early output is lost.
    async fn run_container(
        &self,
        spec: ContainerSpec,
        stdio: bool,
        server: &str,
    ) -> Result<(String, Option<StdioPipes>), RuntimeError> {
        // Until the container runs, a sweep would see its network unused.
        let _held = self.net_lock.lock().await;
        if let Some(net) = &spec.network {
            self.ensure_server_network(net, server).await?;
        }
        let created = self
            .docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::default()
                        .name(&spec.name)
                        .build(),
                ),
                spec.body,
            )
            .await
            .map_err(classify)?;
        let started = async {
            let pipes = if stdio {
                Some(self.attach_pipes(&created.id).await?)
            } else {
                None
            };
            self.docker
                .start_container(&created.id, None)
                .await
                .map_err(classify)?;
            Ok(pipes)
        };
        match started.await {
            Ok(pipes) => Ok((created.id, pipes)),
            Err(e) => {
                let _ = self
                    .docker
                    .remove_container(
                        &created.id,
                        Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                    )
                    .await;
                Err(e)
            }
        }
    }

    async fn attach_pipes(&self, id: &str) -> Result<StdioPipes, RuntimeError> {
        let opts = AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .logs(false)
            .build();
        let AttachContainerResults { output, input } = self
            .docker
            .attach_container(id, Some(opts))
            .await
            .map_err(classify)?;
        // stdout is the protocol; stderr is the server's log (kept by the engine's log driver).
        let stdout = output.filter_map(|frame| async move {
            match frame {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    Some(Ok(message))
                }
                Ok(_) => None,
                Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
            }
        });
        Ok(StdioPipes {
            stdout: Box::new(tokio_util::io::StreamReader::new(Box::pin(stdout))),
            stdin: Box::new(input),
        })
    }
}

fn instance_of(
    labels: &HashMap<String, String>,
    id: String,
    running: bool,
    exit_code: Option<i64>,
) -> Option<Instance> {
    Some(Instance {
        server_id: ServerId::from_db(labels.get(LABEL_SERVER)?.clone()),
        name: labels.get(LABEL_NAME)?.clone(),
        generation: labels.get(LABEL_GENERATION)?.parse().ok()?,
        handle: id,
        running,
        started_at: None,
        exit_code,
        image_digest: None,
        endpoint: None,
    })
}

/// "Exited (3) 5 seconds ago" → 3.
fn exit_code_of(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.parse().ok()
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn kind(&self) -> ToolboxKind {
        ToolboxKind::Docker
    }

    async fn check(&self) -> Result<(), RuntimeError> {
        self.docker.ping().await.map(|_| ()).map_err(classify)
    }

    async fn resolve_image(
        &self,
        image: &str,
        digest: Option<&str>,
    ) -> Result<String, RuntimeError> {
        self.resolve_update(image, digest).await
    }

    async fn list(&self) -> Result<Vec<Instance>, RuntimeError> {
        let tb = format!("{LABEL_TOOLBOX}={}", self.toolbox_id);
        let managed = format!("{LABEL_MANAGED}=true");
        let filters = HashMap::from([("label", vec![managed.as_str(), tb.as_str()])]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(classify)?;
        if !self.swept.load(std::sync::atomic::Ordering::Acquire) {
            match self.sweep_networks(None).await {
                Ok(()) => self.swept.store(true, std::sync::atomic::Ordering::Release),
                Err(e) => tracing::warn!(error = %e, "unused networks not swept"),
            }
        }
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let (Some(id), Some(labels)) = (c.id.clone(), c.labels.clone()) else {
                continue;
            };
            let running = c.state.map(|s| s.to_string() == "running").unwrap_or(false);
            let exit = if running {
                None
            } else {
                c.status.as_deref().and_then(exit_code_of)
            };
            let Some(mut inst) = instance_of(&labels, id.clone(), running, exit) else {
                continue;
            };
            if running {
                let d = self.details(&id).await.unwrap_or_default();
                inst.started_at = d.started_at;
                inst.image_digest = d.image_digest;
                if let (Some(ip), Some(port)) = (&d.ip, labels.get(LABEL_PORT)) {
                    inst.endpoint = Some(format!("http://{ip}:{port}"));
                }
            }
            out.push(inst);
        }
        Ok(out)
    }

    async fn create(
        &self,
        launch: Launch<'_>,
    ) -> Result<(Instance, Option<StdioPipes>), RuntimeError> {
        let mut spec = spec::container_spec(&launch, &self.toolbox_id)?;
        let s = launch.server;
        // The toolbox's allow-list holds here too, before any pull: a desired set is not
        // trusted to have been checked (an entry or a list changed since the deploy).
        if let Some(why) = toolbelt_model::registry::refusal(&s.allowed_registries, &spec.image) {
            return Err(RuntimeError::Refused(why));
        }
        // Run by image ID, never by a tag that may have moved since the pin.
        let id = self
            .image_for(s.id.as_str(), &spec.image, s.image_digest.as_deref())
            .await?;
        spec.body.image = Some(id);
        let stdio = s.transport == Transport::Stdio;
        let (id, pipes) = match self.run_container(spec, stdio, s.id.as_str()).await {
            Ok(v) => v,
            Err(e) => {
                // Not left behind for a server that never starts.
                let _ = self.sweep_networks(Some(s.id.as_str())).await;
                return Err(e);
            }
        };
        let d = self.details(&id).await.unwrap_or_default();
        let inst = Instance {
            server_id: s.id.clone(),
            name: s.name.clone(),
            generation: s.generation,
            handle: id,
            running: true,
            started_at: d.started_at,
            exit_code: None,
            image_digest: d.image_digest,
            endpoint: match (&d.ip, s.port) {
                (Some(ip), Some(port)) if !stdio => Some(format!("http://{ip}:{port}")),
                _ => None,
            },
        };
        Ok((inst, pipes))
    }

    async fn attach(&self, inst: &Instance) -> Result<StdioPipes, RuntimeError> {
        let mut pipes = self.attach_pipes(&inst.handle).await?;
        // A DTMA killed mid-write may have left half a line in the pipe: end it.
        use tokio::io::AsyncWriteExt;
        pipes.stdin.write_all(b"\n").await?;
        Ok(pipes)
    }

    async fn remove(&self, inst: &Instance) -> Result<(), RuntimeError> {
        let _ = self
            .docker
            .stop_container(
                &inst.handle,
                Some(StopContainerOptionsBuilder::default().t(5).build()),
            )
            .await;
        match self
            .docker
            .remove_container(
                &inst.handle,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
        {
            Ok(())
            | Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(classify(e)),
        }
        self.details
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&inst.handle);
        if let Err(e) = self.sweep_networks(Some(inst.server_id.as_str())).await {
            tracing::warn!(server = %inst.server_id, error = %e, "its network was not removed");
        }
        Ok(())
    }

    async fn logs(
        &self,
        inst: &Instance,
        tail: usize,
        follow: bool,
    ) -> Result<BoxStream<'static, Bytes>, RuntimeError> {
        let info = self
            .docker
            .inspect_container(&inst.handle, None)
            .await
            .map_err(classify)?;
        let stdio = info
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get(LABEL_TRANSPORT).cloned())
            .as_deref()
            == Some("stdio");
        // A stdio server's stdout is protocol traffic (tool results): only stderr is its log.
        let opts = LogsOptionsBuilder::default()
            .stdout(!stdio)
            .stderr(true)
            .tail(&tail.to_string())
            .follow(follow)
            .build();
        let s = self.docker.logs(&inst.handle, Some(opts));
        Ok(
            s.filter_map(|f| async move { f.ok().map(|o| o.into_bytes()) })
                .boxed(),
        )
    }

    async fn stats(&self, inst: &Instance) -> Result<Stats, RuntimeError> {
        let opts = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(false)
            .build();
        let mut s = std::pin::pin!(self.docker.stats(&inst.handle, Some(opts)));
        let Some(st) = s.next().await.transpose().map_err(classify)? else {
            return Err(RuntimeError::NotFound);
        };
        let cpu = (|| {
            let (cpu, pre) = (st.cpu_stats.as_ref()?, st.precpu_stats.as_ref()?);
            let d_cpu = cpu.cpu_usage.as_ref()?.total_usage? as f64
                - pre
                    .cpu_usage
                    .as_ref()
                    .and_then(|u| u.total_usage)
                    .unwrap_or(0) as f64;
            let d_sys = cpu.system_cpu_usage? as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
            let n = cpu.online_cpus.map(f64::from).unwrap_or(1.0);
            (d_cpu >= 0.0 && d_sys > 0.0).then(|| d_cpu / d_sys * n * 100.0)
        })();
        let mem = st.memory_stats.as_ref();
        let usage = mem.and_then(|m| m.usage);
        let cache = mem.and_then(|m| m.stats.as_ref()).and_then(|h| {
            h.get("total_inactive_file")
                .or_else(|| h.get("inactive_file"))
                .copied()
        });
        Ok(Stats {
            cpu_percent: cpu,
            memory_bytes: usage.map(|u| u.saturating_sub(cache.filter(|c| *c < u).unwrap_or(0))),
            memory_limit_bytes: mem.and_then(|m| m.limit),
            pids: st.pids_stats.as_ref().and_then(|p| p.current),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exit_codes_come_from_the_status_line() {
        assert_eq!(super::exit_code_of("Exited (3) 5 seconds ago"), Some(3));
        assert_eq!(
            super::exit_code_of("Exited (137) About a minute ago"),
            Some(137)
        );
        assert_eq!(super::exit_code_of("Up 2 minutes"), None);
    }
}
