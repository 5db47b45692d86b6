//! What an app is built from: every setting of `toolbelt up` / `serve`, typed. The
//! binary fills them from its flags over [`Options::from_env`]; tests set them directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toolbelt_control::ControlConfig;
use toolbelt_gateway::GatewayConfig;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_oauth::OAuthConfig;
use toolbelt_store::metrics::MetricsOptions;
use zeroize::Zeroizing;

#[derive(Clone)]
pub struct Options {
    /// The SQLite database, the control key and the vault key file live here by default.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `None`: SQLite in the data dir.
    pub database_url: Option<String>,
    /// PostgreSQL: migrations run as this owner role; the app serves as `database_url`'s
    /// role, granted only SELECT and INSERT on `audit_events`.
    pub migrate_database_url: Option<String>,
    /// `toolbelt up`: the shared `local` toolbox, its DTMA in this process once started.
    pub local_toolbox: bool,
    /// The local toolbox's runtime (`None`: Docker when an engine answers, else processes).
    pub runtime: Option<ToolboxKind>,
    /// SQLite `synchronous=FULL`: every commit survives power loss, not only a crash.
    pub fsync_every_commit: bool,
    /// Made an admin API token on first start (scripts and tests).
    pub bootstrap_token: Option<String>,
    /// The first admin's email (default `admin@toolbelt.local`).
    pub admin_email: Option<String>,
    /// The Ed25519 key signing calls to DTMAs (`None`: `<data dir>/control.key`).
    pub control_key_file: Option<PathBuf>,
    /// The Ed25519 key signing audit checkpoints (`None`: `<data dir>/audit.key`); its own
    /// key, so a leaked control key forges no evidence. Replicas share it like the control key.
    pub audit_key_file: Option<PathBuf>,
    /// Where signed checkpoints are appended (`None`: `<data dir>/audit-checkpoints.jsonl`;
    /// better a path outside the database's backups) and how often.
    pub audit_checkpoint_file: Option<PathBuf>,
    pub audit_checkpoint_every: i64,
    pub audit_checkpoint_interval: Duration,
    pub vault_keys: VaultKeys,
    /// Where browsers reach this app (`None`: `http://<listen address>`); OAuth callbacks
    /// are under it. Overrides `oauth.public_url`.
    pub public_url: Option<String>,
    /// The REST API's limits and the DTMA heartbeat interval.
    pub control: ControlConfig,
    pub gateway: GatewayConfig,
    pub oauth: OAuthConfig,
    /// Every outbound client's TLS roots (`TOOLBELT_CA_FILE`) and plain-HTTP rule
    /// (`TOOLBELT_ALLOW_PLAIN_HTTP`); copied into the control, gateway, OAuth and local
    /// DTMA configurations when the app is assembled.
    pub outbound: toolbelt_net::http::Outbound,
    /// Serve HTTPS with this certificate and key (`--tls-cert`, `--tls-key`): cookies get
    /// `Secure`, responses HSTS; the files are re-read when they change.
    pub tls: Option<toolbelt_net::tls::TlsFiles>,
    /// How often the TLS files are checked for a change.
    pub tls_reload: std::time::Duration,
    /// How long per-minute metrics are kept, how often they are written.
    pub metrics: MetricsOptions,
    /// Chat's budget and timeouts (`TOOLBELT_CHAT_*`); its SSRF allow-list and TLS roots
    /// are the gateway's and `outbound`, copied in when the app is assembled.
    pub chat: toolbelt_chat::ChatConfig,
    /// Where traces go (`TOOLBELT_OTLP_ENDPOINT`, OTLP/HTTP protobuf); `None`: no tracing.
    pub otlp_endpoint: Option<String>,
}

/// Where the vault's key-encryption keys come from.
#[derive(Clone)]
pub enum VaultKeys {
    /// A key file (`None`: `<data dir>/vault.key`), created 0600 with one fresh key on first
    /// start; rotation adds and drops keys in it.
    File(Option<PathBuf>),
    /// The keys themselves, `hex64[,hex64…]`, current first (`TOOLBELT_VAULT_KEY`).
    Given(Zeroizing<String>),
}

/// The defaults of `--listen` and `--data-dir` (loopback only, a directory beside you).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8870";
pub const DEFAULT_DATA_DIR: &str = "./toolbelt-data";

impl Options {
    /// The defaults of `toolbelt serve` over `data_dir`, reading nothing from the environment.
    pub fn new(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            data_dir: data_dir.into(),
            listen: DEFAULT_LISTEN.parse().expect("a literal address"),
            database_url: None,
            migrate_database_url: None,
            local_toolbox: false,
            runtime: None,
            fsync_every_commit: false,
            bootstrap_token: None,
            admin_email: None,
            control_key_file: None,
            audit_key_file: None,
            audit_checkpoint_file: None,
            audit_checkpoint_every: 1000,
            audit_checkpoint_interval: Duration::from_secs(60),
            vault_keys: VaultKeys::File(None),
            public_url: None,
            control: ControlConfig::default(),
            gateway: GatewayConfig::default(),
            oauth: OAuthConfig::default(),
            outbound: Default::default(),
            tls: None,
            tls_reload: std::time::Duration::from_secs(1),
            metrics: MetricsOptions::default(),
            chat: toolbelt_chat::ChatConfig::default(),
            otlp_endpoint: None,
        }
    }

    /// Heartbeats every `interval` (three missed: the toolbox is `unresponsive`).
    pub fn heartbeat(mut self, interval: Duration) -> Options {
        self.control.heartbeat_interval = interval;
        self
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("toolbelt.db").display()),
        }
    }

    pub fn control_key_path(&self) -> PathBuf {
        self.in_data_dir(&self.control_key_file, "control.key")
    }

    pub fn audit_key_path(&self) -> PathBuf {
        self.in_data_dir(&self.audit_key_file, "audit.key")
    }

    pub fn audit_checkpoint_path(&self) -> PathBuf {
        self.in_data_dir(&self.audit_checkpoint_file, "audit-checkpoints.jsonl")
    }

    /// The vault's key file, when its keys come from one.
    pub fn vault_key_path(&self) -> Option<PathBuf> {
        match &self.vault_keys {
            VaultKeys::File(p) => Some(self.in_data_dir(p, "vault.key")),
            VaultKeys::Given(_) => None,
        }
    }

    /// Where the local toolbox's DTMA keeps its credential.
    pub fn local_dtma_dir(&self) -> PathBuf {
        self.data_dir.join("dtma")
    }

    pub(crate) fn in_data_dir(&self, given: &Option<PathBuf>, default: &str) -> PathBuf {
        given.clone().unwrap_or_else(|| self.data_dir.join(default))
    }
}
