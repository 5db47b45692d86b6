//! Why the app did not build, start or stop cleanly. Each variant names what failed and
//! keeps its cause as the error source (the binary prints the chain).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A setting from the environment does not parse.
    #[error("{name}: {message}")]
    Setting { name: &'static str, message: String },
    #[error("cannot create the data dir {}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The URL is shown with its password masked.
    #[error("cannot open the database ({url})")]
    Database {
        url: String,
        #[source]
        source: toolbelt_store::StoreError,
    },
    #[error(transparent)]
    Bootstrap(#[from] toolbelt_control::bootstrap::BootstrapError),
    #[error("{} is not a control key", path.display())]
    BadControlKey { path: PathBuf },
    #[error("cannot create {}", path.display())]
    ControlKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not an audit key", path.display())]
    BadAuditKey { path: PathBuf },
    #[error("cannot create {}", path.display())]
    AuditKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    AuditCheckpoints(#[from] toolbelt_control::audit_checkpoints::CheckpointWriteError),
    /// The vault's keys (`what`: the key file, or `TOOLBELT_VAULT_KEY`) are unusable.
    #[error("{what}")]
    VaultKeys {
        what: String,
        #[source]
        source: toolbelt_vault::VaultError,
    },
    #[error("the vault does not open")]
    Vault(#[source] toolbelt_vault::VaultError),
    #[error("TLS: {0}")]
    Tls(#[source] toolbelt_net::tls::TlsError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] toolbelt_store::StoreError),
    #[error("the local toolbox's DTMA did not start")]
    LocalToolbox(#[source] toolbelt_dtma::DtmaError),
    #[error("the HTTP server stopped")]
    ServerTask(#[source] tokio::task::JoinError),
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
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
