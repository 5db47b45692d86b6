//! Shared state of the control plane's handlers.

use crate::metrics::Metrics;
use crate::secrets::{SecretResolver, VaultResolver};
use crate::service::ServiceError;
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
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            body_limit: 1024 * 1024,
            session_ttl: Duration::from_secs(12 * 3600),
            join_token_ttl: Duration::from_secs(3600),
            secure_cookies: false,
            heartbeat_interval: Duration::from_secs(5),
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
        AppState(Arc::new(Inner {
            store,
            config,
            metrics: Metrics::new(),
            key,
            toolboxes: ToolboxClient::new(),
            secrets,
            credentials: Some(credentials),
        }))
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
