//! [`build`]: the store opened and bootstrapped, the control plane's state with its key,
//! vault and OAuth, the gateway — one router over all of it, not yet on a socket.

use crate::control_key;
use crate::credentials;
use crate::error::{AppError, redact_url};
use crate::options::Options;
use crate::routes::{Parts, routes};
use axum::Router;
use std::sync::Arc;
use toolbelt_control::AppState;
use toolbelt_control::bootstrap::{BootstrapOptions, BootstrapReport, bootstrap};
use toolbelt_control::state::ControlConfig;
use toolbelt_model::signed::ControlKey;
use toolbelt_store::{Store, StoreOptions};

/// The assembled app. Its router answers in-process (`tower::ServiceExt::oneshot`);
/// [`crate::start`] serves it on a socket with its background tasks.
pub struct App {
    pub(crate) parts: Parts,
    pub(crate) router: Router,
    pub(crate) report: BootstrapReport,
    pub(crate) options: Options,
}

impl App {
    /// Every route of the app.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn state(&self) -> &AppState {
        &self.parts.state
    }

    pub fn store(&self) -> &Store {
        &self.parts.state.store
    }

    pub fn gateway(&self) -> &Arc<toolbelt_gateway::Hub> {
        &self.parts.hub
    }

    /// What the first start did: the one-time admin login (when no bootstrap token was
    /// given), seeded catalog entries. Empty on later starts.
    pub fn first_start(&self) -> &BootstrapReport {
        &self.report
    }

    pub fn options(&self) -> &Options {
        &self.options
    }
}

/// Builds the app without a socket; OAuth callbacks point at `options.public_url`, else at
/// `http://<listen address>`.
pub async fn build(options: Options) -> Result<App, AppError> {
    let public_url = options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", options.listen));
    assemble(options, public_url).await
}

/// The data dir (database, keys, the local DTMA's credential), made or kept 0700: other
/// local users — the process runtime's server users among them — never enter it.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            Ok(()) => tracing::info!(dir = %dir.display(), "data dir made private (mode 0700)"),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "the data dir is open to other users")
            }
        }
    }
    Ok(())
}

pub(crate) async fn assemble(options: Options, public_url: String) -> Result<App, AppError> {
    private_dir(&options.data_dir).map_err(|source| AppError::DataDir {
        path: options.data_dir.clone(),
        source,
    })?;
    if let Some(endpoint) = &options.otlp_endpoint {
        toolbelt_net::otel::init(endpoint, "toolbelt", &options.outbound).map_err(|e| {
            AppError::Setting {
                name: "TOOLBELT_OTLP_ENDPOINT",
                message: e.to_string(),
            }
        })?;
    }
    let url = options.database_url();
    let store = Store::open(
        &url,
        StoreOptions {
            fsync_every_commit: options.fsync_every_commit,
            migrate_url: options.migrate_database_url.clone(),
            ..StoreOptions::default()
        },
    )
    .await
    .map_err(|source| AppError::Database {
        url: redact_url(&url),
        source,
    })?;
    let report = bootstrap(
        &store,
        &BootstrapOptions {
            bootstrap_token: options.bootstrap_token.clone(),
            admin_email: options.admin_email.clone(),
            local_toolbox: options.local_toolbox,
        },
    )
    .await?;
    let key = control_key::load_or_create(&options.control_key_path())?;
    let seed = key.seed();
    let credentials = credentials::open(&store, &options, public_url.clone()).await?;
    let oauth = credentials.oauth.clone();
    let state = AppState::new(
        store.clone(),
        ControlConfig {
            outbound: options.outbound.clone(),
            ssrf_allow: options.gateway.ssrf_allow.clone(),
            ..options.control.clone()
        },
        key,
        credentials,
    );
    let audit_key = control_key::load_or_create_audit(&options.audit_key_path())?;
    let checkpoints = toolbelt_control::audit_checkpoints::Checkpointer::open(
        audit_key,
        toolbelt_control::audit_checkpoints::CheckpointConfig {
            file: options.audit_checkpoint_path(),
            every_events: options.audit_checkpoint_every,
            interval: options.audit_checkpoint_interval,
        },
    )?;
    state.set_audit_checkpoints(Arc::new(checkpoints));
    // MCP clients get tokens for the gateway's `/mcp` from this app's public URL.
    state.set_mcp_issuer(
        toolbelt_control::service::mcp_auth::Issuer::from_public_url(
            options.gateway.public_url.as_deref().unwrap_or(&public_url),
        ),
    );
    // The gateway calls DTMAs as the control plane: with tokens signed by its key.
    let signer: toolbelt_gateway::upstream::Signer = Arc::new(move |toolbox: &str| {
        ControlKey::from_seed(seed).sign(toolbox, chrono::Utc::now().timestamp(), 3600)
    });
    let gateway_config = toolbelt_gateway::GatewayConfig {
        outbound: options.outbound.clone(),
        public_url: options.gateway.public_url.clone().or(Some(public_url)),
        ..options.gateway.clone()
    };
    let gateway_public = gateway_config.public_url.clone().unwrap_or_default();
    let chat_config = toolbelt_chat::ChatConfig {
        ssrf_allow: options.gateway.ssrf_allow.clone(),
        outbound: options.outbound.clone(),
        ..options.chat.clone()
    };
    let gateway = toolbelt_gateway::start_with(store, signer, gateway_config, Some(oauth)).await;
    // Chat calls the gateway's own /mcp router, in process, as the agent of each turn.
    let chat = toolbelt_chat::Chat::new(
        state.clone(),
        gateway.router.clone(),
        &gateway_public,
        chat_config,
    );
    state.set_tool_search(Arc::new(crate::tool_search::GatewaySearch(
        gateway.hub.clone(),
    )));
    let parts = Parts {
        state,
        mcp: gateway.router,
        hub: gateway.hub,
        chat,
    };
    Ok(App {
        router: routes(&parts),
        parts,
        report,
        options,
    })
}
