//! Toolbelt's OAuth 2.1 client side: users connect their accounts at outside providers,
//! and agents act with those connections only where their owner granted it.
//!
//! - [`builtin`]: GitHub, Google, Microsoft and Slack; any other provider comes from its
//!   RFC 8414 / OIDC metadata ([`discovery`]) or from given endpoints.
//! - [`OAuth::create_flow`] → [`OAuth::begin`] → [`OAuth::complete`]: the authorization code
//!   flow with PKCE S256. A flow is bound to the dashboard session that opens its start URL;
//!   its `state` is minted at that moment, kept only as a digest, and used once.
//! - Tokens are sealed in the vault (one secret per connection, a new version per refresh);
//!   the database holds only their metadata.
//! - [`OAuth::run_refresher`]: renews tokens before they expire, with jitter and retries;
//!   a lease row makes one replica refresh a connection at a time, so a rotating refresh
//!   token is never presented twice. A refused refresh marks the connection `needs_reauth`.
//! - [`OAuth::credential_for`]: the gateway's question "which token does this agent's call
//!   through this server carry?", answered only from the agent owner's own connections.

pub mod builtin;
mod client;
mod connections;
pub mod discovery;
mod flows;
mod providers;
mod refresher;
mod tokens;

pub use connections::{Credential, Revoked};
pub use flows::{Callback, FlowStatus, StartedFlow};
pub use providers::NewProvider;
pub use refresher::RefreshResult;

use std::sync::Arc;
use std::time::Duration;
use toolbelt_store::{Store, StoreError};
use toolbelt_vault::{Vault, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// A callback whose `state` is missing, unknown, used, expired or bound to another
    /// session; or a flow opened by the wrong user.
    #[error("{0}")]
    State(String),
    /// The provider answered with an OAuth error (`invalid_grant`, `access_denied`, …).
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Provider {
        error: String,
        description: Option<String>,
    },
    /// The provider could not be reached, or failed (5xx).
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider answered something that is not a valid OAuth response.
    #[error("the provider's answer is malformed: {0}")]
    Malformed(String),
    #[error("vault: {0}")]
    Vault(VaultError),
    #[error("store: {0}")]
    Store(StoreError),
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => OAuthError::NotFound("it".into()),
            StoreError::Conflict(m) => OAuthError::Conflict(m),
            e => OAuthError::Store(e),
        }
    }
}

impl From<VaultError> for OAuthError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Store(s) => s.into(),
            e => OAuthError::Vault(e),
        }
    }
}

impl OAuthError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> OAuthError {
        OAuthError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl OAuth {
    /// Refuses a provider URL that would carry codes, tokens or secrets in clear (plain
    /// `http://` off loopback) unless an admin allowed it.
    pub(crate) fn check_scheme(&self, field: &str, url: &str) -> Result<()> {
        let u = url::Url::parse(url)
            .map_err(|e| OAuthError::invalid(field, format!("is not a URL: {e}")))?;
        self.config
            .outbound
            .check_scheme(&u, &format!("the provider's {field}"))
            .map_err(|e| OAuthError::invalid(field, e.to_string()))
    }
}

pub type Result<T, E = OAuthError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Where browsers reach this control plane: callbacks are `{public_url}/oauth/{provider}/callback`.
    pub public_url: String,
    /// How long a flow may take from creation to callback.
    pub flow_ttl: Duration,
    /// Refresh this long before expiry (at most half the token's lifetime).
    pub refresh_lead: Duration,
    /// Spread refreshes up to this much earlier, so tokens issued together do not all
    /// come due in the same instant.
    pub refresh_jitter: Duration,
    /// How long a replica holds a connection while refreshing it.
    pub lease: Duration,
    /// How often the refresher looks for due connections.
    pub tick: Duration,
    /// First retry delay after a transient failure; doubles per failure, capped at 5 min.
    pub retry_base: Duration,
    /// Consecutive transient failures after which a connection needs re-authorization.
    pub max_failures: i64,
    /// Refreshes in flight at once per replica.
    pub concurrency: usize,
    /// Timeout of each request to a provider.
    pub http_timeout: Duration,
    /// TLS roots (`TOOLBELT_CA_FILE`) and whether plain `http://` providers are allowed.
    pub outbound: toolbelt_net::http::Outbound,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            public_url: "http://127.0.0.1:8080".into(),
            flow_ttl: Duration::from_secs(600),
            refresh_lead: Duration::from_secs(300),
            refresh_jitter: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            tick: Duration::from_secs(2),
            retry_base: Duration::from_secs(5),
            max_failures: 5,
            concurrency: 16,
            http_timeout: Duration::from_secs(15),
            outbound: Default::default(),
        }
    }
}

/// The OAuth service over the store and the vault. Cheap to clone.
#[derive(Clone)]
pub struct OAuth(Arc<Inner>);

pub struct Inner {
    pub(crate) store: Store,
    pub(crate) vault: Vault,
    pub(crate) config: OAuthConfig,
    pub(crate) http: reqwest::Client,
    /// This replica's name in refresh leases.
    pub(crate) replica: String,
    pub(crate) cache: connections::TokenCache,
    /// Connections whose tokens a refresh, reconnect or first connection just set (servers
    /// holding their owner's token roll).
    pub(crate) refreshed: tokio::sync::broadcast::Sender<toolbelt_model::ConnectionId>,
}

impl std::ops::Deref for OAuth {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl OAuth {
    pub fn new(store: Store, vault: Vault, config: OAuthConfig) -> OAuth {
        // Provider endpoints never redirect a token request: refusing redirects keeps a
        // code or refresh token from being replayed to another host.
        let http = config
            .outbound
            .builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.http_timeout)
            .build()
            .expect("an HTTP client builds");
        let replica = format!("replica-{}", hex::encode(rand::random::<[u8; 6]>()));
        OAuth(Arc::new(Inner {
            store,
            vault,
            config,
            http,
            replica,
            cache: Default::default(),
            refreshed: tokio::sync::broadcast::channel(1024).0,
        }))
    }

    /// Tells of every connection whose tokens were just set (refresh, reconnect, connect).
    pub fn subscribe_refreshed(
        &self,
    ) -> tokio::sync::broadcast::Receiver<toolbelt_model::ConnectionId> {
        self.refreshed.subscribe()
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The redirect URI registered at providers for `provider`.
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!(
            "{}/oauth/{provider}/callback",
            self.config.public_url.trim_end_matches('/')
        )
    }
}
