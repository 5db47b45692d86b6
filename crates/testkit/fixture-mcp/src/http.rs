//! Streamable HTTP at `/mcp`, served by axum.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::handler::Fixture;

/// `json`: legacy sessions, but a reply that is one response event is sent as
/// `application/json` (rmcp answers legacy sessions with SSE only), as a lean upstream
/// for the gateway's benchmark would.
pub async fn serve(addr: SocketAddr, json: bool) -> std::io::Result<()> {
    // No Host check: containers are reached by IP, and rmcp allows only loopback names
    // by default (anything else gets 403).
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let service: StreamableHttpService<Fixture, LocalSessionManager> = StreamableHttpService::new(
        || Ok(Fixture),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mut router = axum::Router::new().route_service("/mcp", service);
    if json {
        router = router.layer(axum::middleware::from_fn(json_replies));
    }
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

/// A POST answered with an SSE stream whose only message is the response becomes that
/// response as JSON; anything else (progress, server requests) streams as it came.
async fn json_replies(req: Request, next: Next) -> Response {
    let post = req.method() == Method::POST;
    let res = next.run(req).await;
    let sse = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !(post && sse) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // Legacy-session POST streams end with their response.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let data: Vec<&str> = text
        .split("\n\n")
        .filter(|event| {
            let d: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                .collect();
            !d.is_empty() && !d.concat().trim().is_empty()
        })
        .collect();
    if let [only] = data.as_slice() {
        let payload: String = only
            .lines()
            .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
            .collect::<Vec<_>>()
            .join("\n");
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(payload));
    }
    Response::from_parts(parts, Body::from(bytes))
}
