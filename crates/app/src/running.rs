//! [`Bound::serve`]: the app served, its background tasks running, and for `toolbelt up`
//! the local toolbox's DTMA; [`Running::shutdown`] stops it in order.

use crate::app::App;
use crate::bound::Bound;
use crate::error::AppError;
use crate::local;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;
use toolbelt_control::AppState;
use toolbelt_control::bootstrap::BootstrapReport;
use toolbelt_store::Store;

/// How long a stopping server waits for open connections (SSE streams) to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A serving app. Dropped without [`Running::shutdown`] (a test ending), its server and
/// background tasks are aborted; a local DTMA then stops with the runtime.
pub struct Running {
    app: App,
    addr: SocketAddr,
    url: String,
    ready_in: Duration,
    stop: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    /// Token rollout, liveness, login upkeep, the OAuth refresher, the event relay, the
    /// metrics writer.
    background: Vec<JoinHandle<()>>,
    dtma: Option<toolbelt_dtma::Dtma>,
}

/// Serves a router on a listener until `stopping` turns true, with each connection's peer
/// address (login throttling keys on it). A macro: the listener types differ (plain, TLS).
macro_rules! spawn_server {
    ($listener:expr, $router:expr, $stopping:expr) => {{
        let mut stopping = $stopping;
        tokio::spawn(
            axum::serve(
                $listener,
                $router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|s| *s).await;
            })
            .into_future(),
        )
    }};
}

impl Bound {
    /// Serves the app, starts its background work and, for `toolbelt up`, the local
    /// toolbox's DTMA.
    pub async fn serve(self) -> Result<Running, AppError> {
        let Bound {
            app,
            listener,
            addr,
            url,
            ready_in,
            tls,
        } = self;
        let state = app.state().clone();
        let credentials = state.credentials.clone();
        let mut background = vec![
            tokio::spawn(toolbelt_control::token_rollout::run(state.clone())),
            tokio::spawn(toolbelt_control::liveness::run(
                state.clone(),
                std::future::pending::<()>(),
            )),
            tokio::spawn(toolbelt_control::login_upkeep::run(state.clone())),
        ];
        if let Some(cp) = state.audit_checkpoints.get() {
            background.push(tokio::spawn(cp.clone().run(state.store.clone())));
        }
        if let Some(cr) = credentials {
            background.push(tokio::spawn(cr.oauth.run_refresher()));
        }
        // Live updates from other replicas (PostgreSQL), and the metrics history.
        background.push(tokio::spawn(toolbelt_store::events::relay(
            app.store().clone(),
        )));
        background.push(tokio::spawn(toolbelt_store::metrics::run(
            app.store().clone(),
            app.options().metrics.clone(),
        )));
        let store = app.store();
        tracing::info!(%addr, backend = store.backend().as_str(), seeded = app.first_start().seeded_entries, "serving");

        use axum::serve::ListenerExt;
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let server = match tls {
            None => {
                let listener = listener.tap_io(|tcp| {
                    // Replies written in pieces stall ~40 ms behind Nagle + delayed ACK otherwise.
                    let _ = tcp.set_nodelay(true);
                });
                spawn_server!(listener, app.router(), stopping)
            }
            Some(acceptor) => {
                let reload = app.options().tls_reload;
                let listener = toolbelt_net::tls::TlsListener::new(listener, acceptor, reload)
                    .map_err(AppError::Serve)?
                    // (TapIo gives the peer address as connect info.)
                    .tap_io(|_| {});
                let router = app.router().layer(axum::middleware::map_response(
                    |mut r: axum::response::Response| async move {
                        r.headers_mut().insert(
                            axum::http::header::STRICT_TRANSPORT_SECURITY,
                            axum::http::HeaderValue::from_static(toolbelt_net::tls::HSTS),
                        );
                        r
                    },
                ));
                spawn_server!(listener, router, stopping)
            }
        };
        let mut running = Running {
            app,
            addr,
            url,
            ready_in,
            stop,
            server,
            background,
            dtma: None,
        };
        if running.app.options().local_toolbox {
            // Joins over HTTP: the server must already be serving.
            let dtma = local::start(running.app.options(), running.store(), &running.url).await?;
            running.dtma = Some(dtma);
        }
        Ok(running)
    }
}

impl Running {
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

    pub fn state(&self) -> &AppState {
        self.app.state()
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// See [`App::first_start`].
    pub fn first_start(&self) -> &BootstrapReport {
        self.app.first_start()
    }

    /// See [`Bound::ready_in`].
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    /// The local toolbox's DTMA, when this is `toolbelt up`.
    pub fn local_toolbox(&self) -> Option<&toolbelt_dtma::Dtma> {
        self.dtma.as_ref()
    }

    /// Serves until `signal` resolves (or the server fails), then shuts down.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), AppError> {
        tokio::select! {
            r = &mut self.server => {
                let failed = served(r).err();
                self.stop_tasks().await;
                return Err(failed.unwrap_or(AppError::Serve(std::io::Error::other("it stopped by itself"))));
            }
            () = signal => {}
        }
        self.shutdown().await
    }

    /// Stops accepting, lets open connections finish for at most [`SHUTDOWN_GRACE`] (an
    /// agent holding an SSE stream open must not keep the process alive), then stops the
    /// local DTMA and the background tasks and closes the store.
    pub async fn shutdown(mut self) -> Result<(), AppError> {
        let _ = self.stop.send(true);
        let result = match tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server).await {
            Ok(r) => served(r),
            Err(_) => {
                tracing::warn!(
                    grace_s = SHUTDOWN_GRACE.as_secs(),
                    "connections still open after the grace period; closing them"
                );
                self.server.abort();
                Ok(())
            }
        };
        self.stop_tasks().await;
        tracing::info!("stopped");
        result
    }

    async fn stop_tasks(&mut self) {
        if let Some(d) = self.dtma.take() {
            d.shutdown().await;
        }
        for t in self.background.drain(..) {
            t.abort();
        }
        // The minute in progress is written, not lost with the process.
        if let Err(e) = toolbelt_store::metrics::flush(self.store()).await {
            tracing::warn!(error = %e, "could not write the last call metrics");
        }
        // The window's anonymous-failure summaries, before the store closes.
        toolbelt_control::login_upkeep::tick(self.state()).await;
        // The last events signed, so a clean stop leaves no tail only the chain vouches for.
        if let Some(cp) = self.state().audit_checkpoints.get()
            && let Err(e) = cp.checkpoint(self.store()).await
        {
            tracing::warn!(error = %e, "could not write the last audit checkpoint");
        }
        self.store().close().await;
        // The last spans batched, sent (the SDK blocks while it flushes).
        if toolbelt_net::otel::enabled() {
            let _ = tokio::task::spawn_blocking(toolbelt_net::otel::shutdown).await;
        }
    }
}

fn served(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), AppError> {
    r.map_err(AppError::ServerTask)?.map_err(AppError::Serve)
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
        for t in &self.background {
            t.abort();
        }
    }
}
