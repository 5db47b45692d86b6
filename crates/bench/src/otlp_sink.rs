//! A local OTLP/HTTP collector for the gateway benchmark's traced route: it takes every
//! export and answers 200 at once, counting requests and bytes, so what the route costs
//! over its untraced twin is the gateway's tracing, not a collector's work.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Received {
    pub exports: AtomicU64,
    pub bytes: AtomicU64,
}

/// The sink's base URL (`http://127.0.0.1:PORT`, for `TOOLBELT_OTLP_ENDPOINT`) and what
/// it received.
pub async fn start() -> anyhow::Result<(String, Arc<Received>)> {
    async fn accept(State(r): State<Arc<Received>>, body: Bytes) -> &'static str {
        r.exports.fetch_add(1, Ordering::Relaxed);
        r.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        ""
    }
    let received = Arc::new(Received::default());
    let app = axum::Router::new()
        .route("/v1/traces", post(accept))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}
