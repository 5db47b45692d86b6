//! [`bind`]: the listener bound and the app built on its address, not yet accepting —
//! the moment to announce the URL, before any client can be answered.

use crate::app::{App, assemble};
use crate::error::AppError;
use crate::options::Options;
use crate::running::Running;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use toolbelt_control::bootstrap::BootstrapReport;
use toolbelt_store::Store;

pub struct Bound {
    pub(crate) app: App,
    pub(crate) listener: tokio::net::TcpListener,
    pub(crate) addr: SocketAddr,
    pub(crate) url: String,
    pub(crate) ready_in: Duration,
    pub(crate) tls: Option<toolbelt_net::tls::Acceptor>,
}

/// Binds `options.listen` and builds the app; OAuth callbacks point at the bound address
/// unless a public URL is given. [`Bound::serve`] then starts it.
pub async fn bind(mut options: Options) -> Result<Bound, AppError> {
    let started = Instant::now();
    // Loaded before anything listens: a bad pair stops the start with its reason.
    let tls = options
        .tls
        .as_ref()
        .map(toolbelt_net::tls::Acceptor::load)
        .transpose()
        .map_err(AppError::Tls)?;
    if tls.is_some() {
        options.control.secure_cookies = true;
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| AppError::Listen {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(AppError::Serve)?;
    let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let public_url = options.public_url.clone().unwrap_or_else(|| url.clone());
    let app = assemble(options, public_url).await?;
    Ok(Bound {
        app,
        listener,
        addr,
        url,
        ready_in: started.elapsed(),
        tls,
    })
}

/// [`bind`], then [`Bound::serve`].
pub async fn start(options: Options) -> Result<Running, AppError> {
    bind(options).await?.serve().await
}

impl Bound {
    /// `http://<bound address>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> &Store {
        self.app.store()
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// See [`App::first_start`].
    pub fn first_start(&self) -> &BootstrapReport {
        self.app.first_start()
    }

    /// From [`bind`] to ready: store open and migrated, bootstrapped, app built.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }
}
