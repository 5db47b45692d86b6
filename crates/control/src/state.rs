//! Shared state of the control plane's handlers.

use crate::client_ip::TrustedProxies;
use crate::failure_ledger::FailureLedger;
use crate::metrics::Metrics;
use crate::passwords::Passwords;
use crate::secrets::{SecretResolver, VaultResolver};
use crate::service::ServiceError;
use crate::service::login_limits::LoginLimits;
use crate::toolbox_client::ToolboxClient;
use std::sync::Arc;
use std::time::Duration;
use toolbelt_model::signed::ControlKey;
use toolbelt_oauth::OAuth;
use toolbelt_store::Store;
use toolbelt_vault::{KeyFileProvider, Vault};

#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Largest accepted request body.
    pub body_limit: usize,
    /// How long a dashboard session lasts.
    pub session_ttl: Duration,
    /// How long a toolbox join token stays usable.
    pub join_token_ttl: Duration,
    /// Mark the session cookie `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
    /// How often DTMAs heartbeat; three missed intervals make a toolbox `unresponsive`.
    pub heartbeat_interval: Duration,
    /// Proxies whose `X-Forwarded-For` names the client (`TOOLBELT_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Login throttling, password hashing, and how often anonymous failures are audited.
    pub login: LoginLimits,
    /// TLS roots and the plain-HTTP rule of the client that calls DTMAs.
    pub outbound: toolbelt_net::http::Outbound,
    /// Addresses the SSRF guard lets through (`TOOLBELT_SSRF_ALLOW`): for client metadata
    /// documents, as for remote servers.
    pub ssrf_allow: toolbelt_net::ssrf::AllowList,
    /// The cap on tool-call label combinations on `/metrics` (`TOOLBELT_METRICS_MAX_SERIES`).
    pub metrics_max_series: usize,
    /// The digest of `TOOLBELT_METRICS_TOKEN`: a bearer token that shows a scraper the
    /// tool-call series without being a user.
    pub metrics_token: Option<toolbelt_model::token::TokenDigest>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            body_limit: 1024 * 1024,
            session_ttl: Duration::from_secs(12 * 3600),
            join_token_ttl: Duration::from_secs(3600),
            secure_cookies: false,
            heartbeat_interval: Duration::from_secs(5),
            trusted_proxies: TrustedProxies::default(),
            login: LoginLimits::default(),
            outbound: Default::default(),
            ssrf_allow: Default::default(),
            metrics_max_series: crate::call_metrics::DEFAULT_MAX_SERIES,
            metrics_token: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub config: ControlConfig,
    pub metrics: Metrics,
    /// Signs the control plane's calls to DTMAs.
    pub key: ControlKey,
    /// Talks to DTMAs.
    pub toolboxes: ToolboxClient,
    /// Resolves a server's secret references to values (the vault).
    pub secrets: Arc<dyn SecretResolver>,
    /// The vault and OAuth, when configured.
    pub credentials: Option<Credentials>,
    /// Password hashing on bounded permits.
    pub passwords: Passwords,
    /// Anonymous failures of the current window, audited in summaries.
    pub failures: FailureLedger,
    /// The gateway's answers about agents' tools (set once the gateway is built).
    pub tool_search: std::sync::OnceLock<Arc<dyn crate::tool_search::ToolSearch>>,
    /// Where the MCP authorization server is (set once the app knows its public URL).
    pub mcp_issuer: std::sync::OnceLock<crate::service::mcp_auth::Issuer>,
    /// MCP clients known by their metadata documents (fetched, cached).
    pub mcp_documents: crate::service::mcp_auth::Documents,
    /// Signs audit checkpoints into their file (set once the app has loaded the audit key).
    pub audit_checkpoints: std::sync::OnceLock<Arc<crate::audit_checkpoints::Checkpointer>>,
}

/// The vault, how its keys are held, and OAuth on top of it.
#[derive(Clone)]
pub struct Credentials {
    pub vault: Vault,
    /// The key file, when keys come from one (rotation can then add and drop keys).
    pub key_file: Option<Arc<KeyFileProvider>>,
    pub oauth: OAuth,
}

impl AppState {
    /// The control plane over its store, signing key, vault and OAuth. Assembled in one
    /// place (`toolbelt-app`), for the binary and the tests alike.
    pub fn new(
        store: Store,
        config: ControlConfig,
        key: ControlKey,
        credentials: Credentials,
    ) -> AppState {
        let secrets = Arc::new(VaultResolver::new(
            credentials.vault.clone(),
            Some(credentials.oauth.clone()),
        ));
        let metrics = Metrics::new(config.metrics_max_series);
        // Tool calls reach /metrics where they reach the dashboard's meter.
        store.set_call_sink(metrics.calls.clone());
        let passwords = Passwords::new(config.login.hashing, metrics.password_hashes.clone());
        let toolboxes = ToolboxClient::new(&config.outbound);
        let mcp_documents =
            crate::service::mcp_auth::Documents::new(&config.outbound, config.ssrf_allow.clone());
        AppState(Arc::new(Inner {
            store,
            config,
            metrics,
            passwords,
            failures: FailureLedger::new(),
            key,
            toolboxes,
            secrets,
            credentials: Some(credentials),
            tool_search: std::sync::OnceLock::new(),
            mcp_issuer: std::sync::OnceLock::new(),
            mcp_documents,
            audit_checkpoints: std::sync::OnceLock::new(),
        }))
    }

    /// Connects the gateway's tool search (the app does it once both are built).
    pub fn set_tool_search(&self, search: Arc<dyn crate::tool_search::ToolSearch>) {
        let _ = self.tool_search.set(search);
    }

    pub fn tool_search(&self) -> Result<&Arc<dyn crate::tool_search::ToolSearch>, ServiceError> {
        self.tool_search
            .get()
            .ok_or_else(|| ServiceError::unavailable("this control plane runs no gateway"))
    }

    /// The MCP authorization server's issuer and resource (the app sets them at start).
    pub fn set_mcp_issuer(&self, issuer: crate::service::mcp_auth::Issuer) {
        let _ = self.mcp_issuer.set(issuer);
    }

    pub fn mcp_issuer(&self) -> Result<&crate::service::mcp_auth::Issuer, ServiceError> {
        self.mcp_issuer
            .get()
            .ok_or_else(|| ServiceError::unavailable("this control plane has no public URL set"))
    }

    /// Connects the audit checkpoint writer (the app does it at start).
    pub fn set_audit_checkpoints(&self, c: Arc<crate::audit_checkpoints::Checkpointer>) {
        let _ = self.audit_checkpoints.set(c);
    }

    pub fn audit_checkpoints(
        &self,
    ) -> Result<&Arc<crate::audit_checkpoints::Checkpointer>, ServiceError> {
        self.audit_checkpoints.get().ok_or_else(|| {
            ServiceError::unavailable("this control plane writes no audit checkpoints")
        })
    }

    /// The vault and OAuth, or unavailable: they are not configured.
    pub fn credentials(&self) -> Result<&Credentials, ServiceError> {
        self.credentials
            .as_ref()
            .ok_or_else(|| ServiceError::unavailable("this control plane has no vault configured"))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
