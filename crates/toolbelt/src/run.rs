//! `toolbelt up` and `toolbelt serve`: open the store, bootstrap, serve until a signal.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use toolbelt_control::bootstrap::{BootstrapOptions, bootstrap};
use toolbelt_control::{AppState, ControlConfig, Credentials};
use toolbelt_model::signed::ControlKey;
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_model::{Role, Scope};
use toolbelt_store::tokens::{self, Subject};
use toolbelt_store::{Store, StoreOptions, toolboxes};

pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: Option<String>,
    /// `toolbelt up`: also the `local` toolbox, its DTMA in this process.
    pub local_toolbox: bool,
    /// The local toolbox's runtime (default: Docker when an engine answers).
    pub runtime: Option<ToolboxKind>,
    pub fsync_every_commit: bool,
}

/// The control plane's Ed25519 key: a file in the data dir (mode 0600), or the file named
/// by `TOOLBELT_CONTROL_KEY_FILE` (shared by replicas). Never in the database.
fn control_key(data_dir: &std::path::Path) -> Result<ControlKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::var_os("TOOLBELT_CONTROL_KEY_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("control.key"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{} is not a control key", path.display()))?;
        return Ok(ControlKey::from_seed(seed));
    }
    let key = ControlKey::generate();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(hex::encode(key.seed()).as_bytes())?;
    Ok(key)
}

/// A join token for the in-process DTMA of the `local` toolbox (first start only).
async fn local_join_token(store: &Store) -> Result<String> {
    let system = Scope {
        user_id: toolbelt_model::UserId::from_db(String::new()),
        role: Role::Member,
    };
    let mut c = store.conn().await?;
    let local = toolboxes::find_by_name(&mut c, &system, "local").await?;
    let t = token::issue(TokenKind::Join);
    let exp = toolbelt_model::now() + chrono::TimeDelta::minutes(10);
    tokens::insert(
        &mut c,
        TokenKind::Join,
        &t.digest,
        &Subject::Toolbox(local.id),
        "local dtma",
        Some(exp),
    )
    .await?;
    Ok(t.secret.clone())
}

pub async fn serve(opts: ServeOptions) -> Result<()> {
    init_logging();
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("cannot create the data dir {}", opts.data_dir.display()))?;
    let url = match &opts.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}", opts.data_dir.join("toolbelt.db").display()),
    };
    let store = Store::open(
        &url,
        StoreOptions {
            fsync_every_commit: opts.fsync_every_commit,
            ..StoreOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot open the database ({})", redact_url(&url)))?;
    let report = bootstrap(
        &store,
        &BootstrapOptions {
            bootstrap_token: std::env::var("TOOLBELT_BOOTSTRAP_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            admin_email: std::env::var("TOOLBELT_ADMIN_EMAIL").ok(),
            local_toolbox: opts.local_toolbox,
        },
    )
    .await?;

    let mut config = ControlConfig::default();
    if let Some(ms) = std::env::var("TOOLBELT_HEARTBEAT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.heartbeat_interval = std::time::Duration::from_millis(ms);
    }
    let key = control_key(&opts.data_dir)?;
    let seed = key.seed();
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let (vault, key_file) = crate::settings::vault(&store, &opts.data_dir).await?;
    let oauth = toolbelt_oauth::OAuth::new(
        store.clone(),
        vault.clone(),
        crate::settings::oauth(base.clone())?,
    );
    let state = AppState::with_credentials(
        store.clone(),
        config,
        key,
        Credentials {
            vault,
            key_file,
            oauth: oauth.clone(),
        },
    );
    // The gateway calls DTMAs as the control plane: with tokens signed by its key.
    let signer: toolbelt_gateway::upstream::Signer = std::sync::Arc::new(move |toolbox: &str| {
        ControlKey::from_seed(seed).sign(toolbox, chrono::Utc::now().timestamp(), 3600)
    });
    let (mcp, _hub) = toolbelt_gateway::start_with(
        store.clone(),
        signer,
        crate::settings::gateway()?,
        Some(oauth.clone()),
    )
    .await;
    let app = toolbelt_control::router(state.clone()).merge(mcp);
    let rollout = tokio::spawn(toolbelt_control::token_rollout::run(state.clone()));
    let liveness = tokio::spawn(toolbelt_control::liveness::run(
        state,
        std::future::pending::<()>(),
    ));
    let refresher = tokio::spawn(oauth.run_refresher());
    println!(
        "Toolbelt is up at {base}  ({} database, ready in {} ms)",
        store.backend().as_str(),
        started.elapsed().as_millis()
    );
    if let Some(login) = &report.login_token {
        println!(
            "First start: the admin is {}. One-time login (valid 24 h):\n  toolbelt login --url {base} --login-token {login}",
            report.admin_email.as_deref().unwrap_or("admin")
        );
    }
    tracing::info!(%addr, backend = store.backend().as_str(), seeded = report.seeded_entries, "serving");

    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // Replies written in pieces stall ~40 ms behind Nagle + delayed ACK otherwise.
        let _ = tcp.set_nodelay(true);
    });
    // Graceful shutdown waits for open connections; an agent holding an SSE stream open
    // must not keep the process alive, so the wait is capped.
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                let _ = stopping_tx.send(true);
            })
            .into_future(),
    );
    let dtma = if opts.local_toolbox {
        let dir = opts.data_dir.join("dtma");
        let mut d = toolbelt_dtma::DtmaOptions::new(&base, dir.clone());
        d.runtime = opts.runtime;
        if !dir.join("credential.json").exists() {
            d.join_token = Some(local_join_token(&store).await?);
        }
        let dtma = toolbelt_dtma::start(d)
            .await
            .context("the local toolbox's DTMA did not start")?;
        tracing::info!(addr = %dtma.addr, "local toolbox ready");
        Some(dtma)
    } else {
        None
    };
    let grace_over = async {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = &mut server => r
            .context("the HTTP server stopped")?
            .context("the HTTP server failed")?,
        () = grace_over => {
            tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "connections still open after the grace period; closing them");
            server.abort();
        }
    }
    if let Some(d) = dtma {
        d.shutdown().await;
    }
    liveness.abort();
    refresher.abort();
    rollout.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How long a stopping server waits for open connections (SSE streams) to finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Database URLs may carry passwords; logs and errors get them masked.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TOOLBELT_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_in_database_urls_are_masked() {
        assert_eq!(
            super::redact_url("postgres://tb:s3cret@db:5432/tb"),
            "postgres://tb:***@db:5432/tb"
        );
        assert_eq!(
            super::redact_url("sqlite:///data/tb.db"),
            "sqlite:///data/tb.db"
        );
    }
}
