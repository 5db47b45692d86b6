//! Streamable HTTP at `/mcp`, served by axum.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::handler::Fixture;

pub async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    // No Host check: containers are reached by IP, and rmcp allows only loopback names
    // by default (anything else gets 403).
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let service: StreamableHttpService<Fixture, LocalSessionManager> = StreamableHttpService::new(
        || Ok(Fixture),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // Small JSON-RPC messages: do not let Nagle hold them back.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("fixture-mcp: set_nodelay: {e}");
        }
    });
    eprintln!("fixture-mcp ready (http {local}/mcp)");
    axum::serve(listener, router).await
}
