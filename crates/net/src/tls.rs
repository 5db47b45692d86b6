//! Inbound TLS: `--tls-cert FILE --tls-key FILE` (PEM) for `up`, `serve` and `dtma`.
//!
//! [`Acceptor::load`] reads the pair; [`Acceptor::watch`] re-reads it when either file
//! changes (polled: a rotation by cert-manager, certbot or a script renames new files in
//! place), so new connections get the new certificate without a restart while open ones
//! keep theirs. A pair that does not load (half written, key not matching) is logged and
//! the old one kept. [`TlsListener`] accepts TCP, runs each handshake on its own task
//! (a slow or silent client never holds up the next one) and hands axum finished streams.

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// Where the certificate chain and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("the key in {0} is not usable: {1}")]
    Key(PathBuf, String),
    #[error("the key in {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
}

fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = |p: &Path| {
        let p = p.to_path_buf();
        move |e: rustls::pki_types::pem::Error| TlsError::Read {
            path: p,
            reason: e.to_string(),
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(read(&files.cert))?
        .collect::<Result<_, _>>()
        .map_err(read(&files.cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(read(&files.key))?;
    let key =
        any_supported_type(&key).map_err(|e| TlsError::Key(files.key.clone(), e.to_string()))?;
    let ck = CertifiedKey::new(certs, key);
    ck.keys_match().map_err(|_| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
    })?;
    Ok(Arc::new(ck))
}

/// The certificate new handshakes get; swapped by [`Acceptor::watch`].
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

#[derive(Clone)]
pub struct Acceptor {
    files: TlsFiles,
    current: Arc<Current>,
    inner: tokio_rustls::TlsAcceptor,
}

fn stamp(files: &TlsFiles) -> Option<(SystemTime, u64, SystemTime, u64)> {
    let c = std::fs::metadata(&files.cert).ok()?;
    let k = std::fs::metadata(&files.key).ok()?;
    Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
}

impl Acceptor {
    pub fn load(files: &TlsFiles) -> Result<Acceptor, TlsError> {
        crate::http::install_provider();
        let current = Arc::new(Current(RwLock::new(load(files)?)));
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Acceptor {
            files: files.clone(),
            current,
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The pin of the key served now (it follows a reload).
    pub fn pin(&self) -> Option<crate::dtma_pin::SpkiPin> {
        let ck = self
            .current
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        crate::dtma_pin::SpkiPin::of_cert(ck.end_entity_cert().ok()?).ok()
    }

    /// Re-reads the files every `every` once they changed, until the task is dropped.
    pub fn watch(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let (files, current) = (self.files.clone(), self.current.clone());
        tokio::spawn(async move {
            let mut seen = stamp(&files);
            loop {
                tokio::time::sleep(every).await;
                let now = stamp(&files);
                if now == seen {
                    continue;
                }
                match load(&files) {
                    Ok(ck) => {
                        *current.0.write().unwrap_or_else(|p| p.into_inner()) = ck;
                        seen = now;
                        tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                    }
                    // Perhaps caught between the two files' writes: tried again next tick.
                    Err(e) => tracing::warn!(error = %e, "TLS certificate not reloaded"),
                }
            }
        })
    }
}

/// TCP in, finished TLS streams out (with their peer address).
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    /// Serves TLS on `tcp`, the files polled for changes every `reload_every`.
    pub fn new(
        tcp: TcpListener,
        acceptor: Acceptor,
        reload_every: Duration,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let watch = acceptor.watch(reload_every);
        let accept = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: pause, as axum does.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (tx, inner) = (tx.clone(), acceptor.inner.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, inner.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            rx,
            local,
            tasks: vec![watch, accept],
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(s) => s,
            // The accept task ended (aborted on drop only): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// `Strict-Transport-Security` for responses served over TLS (a year; browsers then refuse
/// plain HTTP to this host).
pub const HSTS: &str = "max-age=31536000";
