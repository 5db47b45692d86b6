//! How a toolbox runs servers: one trait, a strategy per file (Docker, Process).
//!
//! Runtimes are stateless about *what should run* (that is the supervisor's desired set);
//! they only create, find, attach to and remove what they own. Docker finds its
//! containers by `toolbelt.*` labels, so a restarted DTMA re-adopts them.

pub mod docker;
#[cfg(test)]
pub mod fake;
pub mod process;
pub mod secrets;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio::io::{AsyncRead, AsyncWrite};
use toolbelt_model::ServerId;
use toolbelt_model::dtma::DesiredServer;
use toolbelt_model::toolbox::ToolboxKind;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine does not answer (Docker down): the DTMA stays up and retries.
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    /// The engine refused (missing image, bad config): reported as the server's error.
    #[error("{0}")]
    Refused(String),
    #[error("not found")]
    NotFound,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// What to start: the desired server plus where its secrets were put.
pub struct Launch<'a> {
    pub server: &'a DesiredServer,
    /// Host directory holding file-delivered secrets (bound read-only at /run/secrets).
    pub secrets_dir: Option<PathBuf>,
    /// Values of env-delivered secrets (only when the catalog entry asks for env).
    pub secret_env: BTreeMap<String, String>,
    /// Masks every secret value the server was given (env and files) in its log.
    pub redactor: std::sync::Arc<crate::redact::Redactor>,
}

/// A server instance the runtime owns.
#[derive(Debug, Clone)]
pub struct Instance {
    pub server_id: ServerId,
    pub name: String,
    pub generation: i64,
    /// Container id or process id.
    pub handle: String,
    pub running: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i64>,
    pub image_digest: Option<String>,
    /// `http://ip:port` for servers spoken to over HTTP.
    pub endpoint: Option<String>,
}

/// The stdio of a server: its stdout as a byte stream, its stdin as a writer.
pub struct StdioPipes {
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub pids: Option<u64>,
}

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    fn kind(&self) -> ToolboxKind;

    /// Whether the engine answers now.
    async fn check(&self) -> Result<(), RuntimeError>;

    /// Every instance this toolbox owns, running or not.
    async fn list(&self) -> Result<Vec<Instance>, RuntimeError>;

    /// Creates and starts an instance. Stdio servers come with their pipes, attached
    /// before the start so no early output is lost.
    async fn create(
        &self,
        launch: Launch<'_>,
    ) -> Result<(Instance, Option<StdioPipes>), RuntimeError>;

    /// Attaches to a running stdio instance (re-adoption after a DTMA restart).
    async fn attach(&self, inst: &Instance) -> Result<StdioPipes, RuntimeError>;

    /// Who must be able to read a server's secret files (a uid the DTMA chowns them to
    /// when it is root): the container user, or the server's own sandbox user.
    fn secrets_owner(&self, _server: &DesiredServer) -> Option<u32> {
        Some(secrets::CONTAINER_UID)
    }

    /// How servers are isolated from the host, and whether isolation `none` was allowed
    /// (the process runtime; containers answer `None`).
    fn isolation(&self) -> Option<(toolbelt_model::dtma::Isolation, bool)> {
        None
    }

    /// Whether a closed stdio means the server is gone: a child's pipes die with it,
    /// while a container's attach stream can drop (the engine restarting) and be re-made.
    fn stdio_closes_with_server(&self) -> bool {
        false
    }

    /// The image ID an explicit update moves a server to: `digest` (an image of `image`'s
    /// repository) if given, else `image` resolved afresh. Only runtimes of images have one.
    async fn resolve_image(
        &self,
        _image: &str,
        _digest: Option<&str>,
    ) -> Result<String, RuntimeError> {
        Err(RuntimeError::Refused(
            "this toolbox runs no container images".into(),
        ))
    }

    /// Stops and removes an instance.
    async fn remove(&self, inst: &Instance) -> Result<(), RuntimeError>;

    /// The instance's log (stderr for stdio servers, whose stdout is the protocol).
    async fn logs(
        &self,
        inst: &Instance,
        tail: usize,
        follow: bool,
    ) -> Result<BoxStream<'static, Bytes>, RuntimeError>;

    async fn stats(&self, inst: &Instance) -> Result<Stats, RuntimeError>;
}
