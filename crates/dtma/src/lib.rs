//! The DTMA — the toolbox agent. It joins the control plane with a one-time token, then
//! serves its API and the MCP bridge, heartbeats, and reconciles what runs with what the
//! control plane wants. It depends only on `toolbelt-model`: it runs on other hosts and
//! speaks HTTP.

pub mod api;
pub mod auth;
pub mod bridge;
pub mod control;
pub mod logs;
pub mod reconcile;
pub mod redact;
pub mod runtime;
pub mod supervisor;
pub mod system;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use control::{ControlClient, Credential};
use runtime::Runtime;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use supervisor::Supervisor;
use tokio_util::sync::CancellationToken;
use toolbelt_model::ServerId;
use toolbelt_model::dtma::{HeartbeatReport, ServerStats};
use toolbelt_model::signed::ControlPublicKey;
use toolbelt_model::toolbox::ToolboxKind;

#[derive(Debug, Clone)]
pub struct DtmaOptions {
    pub server_url: String,
    pub join_token: Option<String>,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// How the control plane reaches this DTMA (default: `http://<listen address>`).
    pub advertise_url: Option<String>,
    /// Forced runtime; by default Docker when an engine answers, else processes.
    pub runtime: Option<ToolboxKind>,
    /// The longest a bridged MCP call may wait for its reply.
    pub call_timeout: Duration,
    pub reconcile_interval: Duration,
    /// TLS roots of the client that calls the control plane (`TOOLBELT_CA_FILE`).
    pub outbound: toolbelt_net::http::Outbound,
    /// Paths no server may see besides the DTMA's data dir and secret store (`toolbelt
    /// up` adds its own data dir and key files).
    pub protect: Vec<PathBuf>,
    /// Serve HTTPS with this certificate and key, re-read when they change.
    pub tls: Option<toolbelt_net::tls::TlsFiles>,
}

impl DtmaOptions {
    pub fn new(server_url: &str, data_dir: PathBuf) -> DtmaOptions {
        DtmaOptions {
            server_url: server_url.to_string(),
            join_token: None,
            data_dir,
            listen: "127.0.0.1:0".parse().expect("a literal address"),
            advertise_url: None,
            runtime: None,
            call_timeout: Duration::from_secs(300),
            reconcile_interval: Duration::from_secs(1),
            outbound: Default::default(),
            protect: Vec::new(),
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DtmaError {
    #[error(
        "this DTMA has not joined yet: give it a join token (toolbelt toolbox join-token NAME)"
    )]
    NotJoined,
    #[error("joining failed: {0}")]
    Join(#[from] control::ChannelError),
    #[error("TLS: {0}")]
    Tls(#[from] toolbelt_net::tls::TlsError),
    #[error("the control plane's public key is unreadable")]
    BadKey,
    #[error("runtime: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    #[error("sandbox: {0}")]
    Sandbox(#[from] runtime::process::sandbox::SandboxError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// A started DTMA.
pub struct Dtma {
    pub addr: SocketAddr,
    pub toolbox_id: String,
    pub supervisor: Arc<Supervisor>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Dtma {
    /// Stops serving and reconciling. Containers keep running (they are re-adopted next
    /// start); process servers die with their pipes.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// `p` made absolute (and free of links where it exists), as sandbox paths are compared.
fn absolute(p: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

async fn choose_runtime(forced: Option<ToolboxKind>) -> ToolboxKind {
    match forced {
        Some(k) => k,
        None => match runtime::docker::DockerRuntime::probe().await {
            true => ToolboxKind::Docker,
            false => ToolboxKind::Process,
        },
    }
}

/// Joins (or loads the saved credential), starts serving, reconciling and heartbeating.
pub async fn start(opts: DtmaOptions) -> Result<Dtma, DtmaError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&opts.data_dir)?;
    let tls = opts
        .tls
        .as_ref()
        .map(toolbelt_net::tls::Acceptor::load)
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let advertise = opts
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let kind = choose_runtime(opts.runtime).await;
    let cred_path = opts.data_dir.join("credential.json");
    let cred = match Credential::load(&cred_path) {
        // The control plane may have moved (a new address, or `toolbelt up` on another
        // port): the URL given now wins over the one saved at join.
        Some(mut c) => {
            let given = opts.server_url.trim_end_matches('/');
            if c.server_url != given {
                c.server_url = given.to_string();
                c.save(&cred_path)?;
            }
            c
        }
        None => {
            let token = opts.join_token.as_deref().ok_or(DtmaError::NotJoined)?;
            let pin = tls.as_ref().and_then(|t| t.pin()).map(|p| p.to_string());
            let c = control::join(
                &opts.server_url,
                token,
                &advertise,
                kind,
                pin,
                &opts.outbound,
            )
            .await?;
            c.save(&cred_path)?;
            tracing::info!(toolbox = %c.toolbox_name, id = %c.toolbox_id, "joined");
            c
        }
    };
    let key = ControlPublicKey::from_b64(&cred.control_public_key).ok_or(DtmaError::BadKey)?;
    // Process servers run as users of their own, who must pass through to their files.
    let traversable = kind == ToolboxKind::Process && unsafe { libc::geteuid() } == 0;
    let store = runtime::secrets::SecretStore::new(&cred.toolbox_id, traversable)?;
    let rt: Arc<dyn Runtime> = match kind {
        ToolboxKind::Docker => {
            Arc::new(runtime::docker::DockerRuntime::connect(&cred.toolbox_id).await?)
        }
        _ => {
            let mut protect = vec![absolute(&opts.data_dir), store.root().to_path_buf()];
            protect.extend(opts.protect.iter().map(|p| absolute(p)));
            let sb = tokio::task::spawn_blocking(move || {
                runtime::process::SandboxConfig::from_env(&protect)
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
            Arc::new(runtime::process::ProcessRuntime::new(sb))
        }
    };
    let channel = ControlClient::new(&cred, key.clone(), &opts.outbound);
    let bridges = Arc::new(bridge::Bridges::new(opts.call_timeout));
    let sup = Supervisor::new(
        rt,
        bridges.clone(),
        store,
        Some(Arc::new(channel.clone())),
        Some(opts.data_dir.join("desired.json")),
    );

    let api_state = Arc::new(api::ApiState {
        sup: sup.clone(),
        toolbox_id: cred.toolbox_id.clone(),
        data_dir: opts.data_dir.clone(),
    });
    let verifier = Arc::new(auth::Verifier {
        key,
        toolbox_id: cred.toolbox_id.clone(),
    });
    let v1 = Router::new()
        .route("/v1/servers", post(api::deploy).get(api::list))
        .route("/v1/servers/{name}", get(api::get).delete(api::delete))
        .route("/v1/servers/{name}/logs", get(api::logs))
        .route("/v1/servers/{name}/stats", get(api::stats))
        .route("/v1/servers/{name}/{verb}", post(api::action))
        .route("/v1/images/resolve", post(api::resolve_image))
        .route("/v1/status", get(api::status))
        .route("/v1/discovery", get(api::discovery))
        .with_state(api_state);
    let mcp = Router::new()
        .route(
            "/mcp/{server}",
            post(bridge::http::post)
                .get(bridge::http::get)
                .delete(bridge::http::delete),
        )
        .with_state(bridges);
    let app = Router::new()
        .merge(v1)
        .merge(mcp)
        .layer(axum::middleware::from_fn_with_state(
            verifier,
            auth::require,
        ))
        .route("/healthz", get(api::healthz))
        .layer(DefaultBodyLimit::max(4 * 1024 * 1024));

    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    // Heartbeats report the key served now (a DTMA that joined before pins is pinned by it).
    let served_key = tls.clone();
    {
        use axum::serve::ListenerExt;
        let stop = stop.clone();
        match tls {
            None => {
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                tasks.push(tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await;
                }));
            }
            Some(acceptor) => {
                let listener = toolbelt_net::tls::TlsListener::new(
                    listener,
                    acceptor,
                    Duration::from_secs(1),
                )?;
                tasks.push(tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await;
                }));
            }
        }
    }
    tasks.push(tokio::spawn(
        sup.clone().run(opts.reconcile_interval, stop.clone()),
    ));
    tasks.push(tokio::spawn(heartbeat_loop(
        sup.clone(),
        channel,
        cred.heartbeat_interval_ms,
        advertise,
        served_key,
        opts.data_dir.clone(),
        stop.clone(),
    )));
    tracing::info!(%addr, runtime = kind.as_str(), toolbox = %cred.toolbox_name, "DTMA serving");
    Ok(Dtma {
        addr,
        toolbox_id: cred.toolbox_id,
        supervisor: sup,
        stop,
        tasks,
    })
}

/// How often heartbeats carry each running server's CPU and memory (the control plane
/// keeps them per minute for the dashboard's charts).
const STATS_EVERY: Duration = Duration::from_secs(30);

/// Samples the stats of running servers, all at once and bounded, off the heartbeat's
/// path (an engine slow to answer must never delay a heartbeat).
async fn sample_stats(sup: Arc<Supervisor>) -> Vec<(ServerId, ServerStats)> {
    let jobs = sup.observed().into_iter().filter_map(|o| {
        let inst = sup.instance(&o.id)?;
        let rt = sup.runtime.clone();
        Some(async move {
            let s = tokio::time::timeout(Duration::from_secs(5), rt.stats(&inst)).await;
            let s = s.ok().and_then(Result::ok)?;
            Some((
                o.id,
                ServerStats {
                    cpu_percent: s.cpu_percent,
                    memory_bytes: s.memory_bytes,
                },
            ))
        })
    });
    futures::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn heartbeat_loop(
    sup: Arc<Supervisor>,
    channel: ControlClient,
    mut interval_ms: u64,
    advertise: String,
    served_key: Option<toolbelt_net::tls::Acceptor>,
    data_dir: PathBuf,
    stop: CancellationToken,
) {
    let mut sampled: Option<std::time::Instant> = None;
    let mut sampling: Option<tokio::task::JoinHandle<Vec<(ServerId, ServerStats)>>> = None;
    loop {
        let mut servers = sup.observed();
        if sampling.as_ref().is_some_and(|t| t.is_finished()) {
            let stats = sampling.take().expect("checked").await.unwrap_or_default();
            for (id, st) in stats {
                if let Some(o) = servers.iter_mut().find(|o| o.id == id) {
                    o.stats = Some(st);
                }
            }
        }
        if sampling.is_none() && sampled.is_none_or(|t| t.elapsed() >= STATS_EVERY) {
            sampled = Some(std::time::Instant::now());
            sampling = Some(tokio::spawn(sample_stats(sup.clone())));
        }
        let report = HeartbeatReport {
            version: env!("CARGO_PKG_VERSION").into(),
            advertise_url: advertise.clone(),
            runtime: sup.runtime_status(),
            system: system::sample(&data_dir),
            servers,
            tls_pin: served_key
                .as_ref()
                .and_then(|t| t.pin())
                .map(|p| p.to_string()),
        };
        match channel.heartbeat(&report).await {
            Ok(reply) => {
                interval_ms = reply.heartbeat_interval_ms.clamp(100, 600_000);
                sup.replace_desired(reply.desired);
            }
            // Someone between us and the control plane rewrote the desired set (or replayed
            // an old one): nothing of it is applied, the last verified set stays.
            Err(e @ control::ChannelError::Tampered { .. }) => {
                tracing::error!(error = %e, "heartbeat reply rejected; keeping the previous desired set")
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(interval_ms)) => {}
            _ = stop.cancelled() => {
                if let Some(t) = sampling {
                    t.abort();
                }
                return;
            }
        }
    }
}
