//! The gateway: one MCP endpoint (`/mcp`, Streamable HTTP through `rmcp`) at which each
//! agent sees exactly the tools it was granted, across every toolbox, as
//! `<server>__<tool>`. Every call is authorized at call time, checked against pinned
//! definitions, rate limited, routed to the server's DTMA (or a remote URL through the
//! SSRF guard) over a pooled upstream session, and audited durably before it returns.
//! See `README.md` in this directory for the design.

pub mod audit_writer;
pub mod browser;
pub mod call;
/// The body of a POST to `/mcp`, decoded once (in `toolbelt-wire`, which the fuzz targets
/// build without the gateway's dependencies).
pub use toolbelt_wire::mcp_body as decode;
pub mod error;
pub mod fast;
pub mod handler;
pub mod http;
pub mod naming;
pub mod pinning;
pub mod policy;
pub mod ratelimit;
pub mod registry;
pub mod reply_cap;
pub(crate) mod request_audit;
pub mod scan;
pub mod search;
pub mod session_table;
pub mod sessions;
pub mod upstream;
pub mod upstream_call;
pub mod upstream_client;
pub mod view;

/// The SSRF guard lives in `toolbelt-net` (every client of the binary uses it).
pub use toolbelt_net::ssrf;

use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;
use std::time::Duration;
use toolbelt_store::Store;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The longest an upstream request may take (a tool call, a prompt, a resource read,
    /// a completion).
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long an `ask` call waits for its owner.
    pub ask_timeout: Duration,
    /// Items per page of `tools/list`, `prompts/list`, `resources/list`.
    pub page_size: usize,
    pub agent_rate: Option<ratelimit::Rate>,
    pub tool_rate: Option<ratelimit::Rate>,
    /// Addresses remote servers may have although the SSRF guard refuses them by default.
    pub ssrf_allow: ssrf::AllowList,
    /// TLS roots and the plain-HTTP rule of upstream clients (remote servers, DTMAs).
    pub outbound: toolbelt_net::http::Outbound,
    /// Host names (or `host:port`) the endpoint answers to (DNS-rebinding protection);
    /// empty: the public URL's host and loopback; `*`: any.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed on `/mcp` besides the public URL's (`*`: any).
    pub allowed_origins: Vec<String>,
    /// Where browsers reach Toolbelt (its origin is allowed, its host answered to).
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    /// The largest reply taken from an upstream (larger: `reply_too_large`).
    pub max_reply_bytes: usize,
    pub discovery_deadline: Duration,
    pub refresh_interval: Duration,
    /// Serve `tools/call` and `tools/list` of legacy sessions on the request's own task
    /// (`fast.rs`); off: rmcp serves every request.
    pub fast_path: bool,
    /// Post `tools/call` upstream on the caller's task (`upstream_call.rs`); off: through
    /// rmcp's client.
    pub direct_upstream: bool,
    /// Append audit batches as one INSERT linked to the head the writer's last batch left
    /// (SQLite; `toolbelt_store::AuditConnection`); off: every batch in a transaction
    /// under the chain lock, the head read inside it.
    pub linked_audit: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            call_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            ask_timeout: Duration::from_secs(120),
            page_size: 500,
            agent_rate: None,
            tool_rate: None,
            ssrf_allow: ssrf::AllowList::default(),
            outbound: Default::default(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            public_url: None,
            max_body_bytes: 4 * 1024 * 1024,
            max_reply_bytes: reply_cap::DEFAULT_MAX_REPLY_BYTES,
            discovery_deadline: Duration::from_secs(5),
            refresh_interval: Duration::from_secs(1),
            fast_path: true,
            direct_upstream: true,
            linked_audit: true,
        }
    }
}

/// Everything the gateway's sessions share.
pub struct Hub {
    pub store: Store,
    pub config: GatewayConfig,
    pub policies: policy::Policies,
    pub registry: Arc<registry::Registry>,
    pub views: view::Views,
    /// The tool search index, one for every agent (`search`).
    pub index: search::Index,
    pub audit: audit_writer::AuditWriter,
    pub agent_limiter: Option<ratelimit::Limiter>,
    pub tool_limiter: Option<ratelimit::Limiter>,
    pub sessions: sessions::Sessions,
    /// Legacy sessions by id: owner, peer, last use, fast-path calls in flight.
    pub session_table: session_table::SessionTable,
    /// rmcp's sessions (the fast path asks whether one is still open).
    pub rmcp_sessions: Arc<LocalSessionManager>,
    /// Users' OAuth connections, for servers that act with them.
    pub oauth: Option<toolbelt_oauth::OAuth>,
    /// The browser origins and hosts `/mcp` answers to.
    pub doors: browser::Doors,
}

/// A started gateway: its `/mcp` router and the state its background work shares.
pub struct Started {
    pub router: axum::Router,
    pub hub: Arc<Hub>,
}

/// Starts the gateway's background work and returns its `/mcp` router. With OAuth, calls
/// to servers that act with users' tokens carry the token of the connection the agent was
/// granted. Assembled with the rest of the app by `toolbelt-app`.
pub async fn start_with(
    store: Store,
    sign: upstream::Signer,
    config: GatewayConfig,
    oauth: Option<toolbelt_oauth::OAuth>,
) -> Started {
    let routes = Arc::new(upstream::Routes::default());
    let (changed_tx, changed_rx) = tokio::sync::mpsc::unbounded_channel();
    *routes.changed.lock().await = Some(changed_tx);
    let guard = Arc::new(ssrf::Guard {
        allow: config.ssrf_allow.clone(),
    });
    let upstreams = Arc::new(
        upstream::Upstreams::new(sign, guard, routes, &config.outbound)
            .with_max_reply(config.max_reply_bytes),
    );
    let registry = registry::Registry::new(
        store.clone(),
        upstreams,
        config.discovery_deadline,
        oauth.clone(),
    );
    // Idle sessions are closed by the gateway, which sees the fast path's calls too.
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = None;
    let manager = Arc::new(manager);
    let doors = browser::Doors::new(
        config.public_url.as_deref(),
        &config.allowed_hosts,
        &config.allowed_origins,
    );
    let hub = Arc::new(Hub {
        store: store.clone(),
        policies: policy::Policies::new(store.clone()).with_resource(
            config
                .public_url
                .as_deref()
                .map(|u| format!("{}/mcp", u.trim_end_matches('/'))),
        ),
        registry: registry.clone(),
        views: view::Views::default(),
        index: search::Index::default(),
        audit: audit_writer::AuditWriter::start(store.clone(), config.linked_audit),
        agent_limiter: config.agent_rate.map(ratelimit::Limiter::new),
        tool_limiter: config.tool_rate.map(ratelimit::Limiter::new),
        sessions: sessions::Sessions::default(),
        session_table: session_table::SessionTable::default(),
        rmcp_sessions: manager.clone(),
        oauth,
        doors: doors.clone(),
        config: config.clone(),
    });
    tokio::spawn(registry.clone().run(config.refresh_interval, changed_rx));
    tokio::spawn(sessions::notifier(hub.clone()));
    tokio::spawn(close_idle(hub.clone()));

    let mut cfg = StreamableHttpServerConfig::default().with_json_response(true);
    // The HTTP layer checks hosts and origins first (with JSON errors); rmcp's own check
    // gets the same host list, in case a request ever reaches it another way.
    let hosts = doors.rmcp_hosts();
    cfg = if hosts.is_empty() {
        cfg.disable_allowed_hosts()
    } else {
        cfg.with_allowed_hosts(hosts)
    };
    cfg.max_request_body_bytes = config.max_body_bytes;
    let h = hub.clone();
    let service = StreamableHttpService::new(
        move || Ok(handler::Gateway { hub: h.clone() }),
        manager,
        cfg,
    );
    // A toolset is the same MCP service under the same protected resource; the HTTP layer
    // reads the toolset's name from the path.
    let router = axum::Router::new()
        .route_service("/mcp", service.clone())
        .route_service("/mcp/toolsets/{toolset}", service)
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            http::layer,
        ))
        // Outermost: a preflight is answered before the origin check refuses it.
        .layer(doors.cors());
    Started { router, hub }
}

/// Closes sessions nobody used for [`session_table::IDLE`].
async fn close_idle(hub: Arc<Hub>) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        for id in hub.session_table.idle(session_table::IDLE) {
            let _ = hub.rmcp_sessions.close_session(&id.as_str().into()).await;
            hub.session_table.closed(&id);
        }
    }
}
