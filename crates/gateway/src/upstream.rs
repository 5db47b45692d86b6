//! Connections to upstream MCP servers through `rmcp`'s client: one pooled session per
//! server (never one per call), to the server's DTMA (`/mcp/{server}`, with a token the
//! control plane signed for that toolbox) or, for remote servers, straight to their URL
//! through the SSRF guard. Notifications and server → client requests are routed back to
//! the agent request that caused them.

#![allow(deprecated)]
use crate::error::CallError;
use rmcp::model::{
    ClientCapabilities, ClientConfig, ClientResult, CreateMessageRequestParams,
    CreateMessageResult, ElicitRequest, ElicitRequestParams, ElicitResult, Implementation,
    ListRootsResult, ProgressNotificationParam, ProtocolVersion, RequestId, ServerRequest,
};
use rmcp::service::{
    NotificationContext, Peer, RequestContext, RoleClient, RoleServer, RunningService,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData as McpError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use toolbelt_model::{ConnectionId, ServerId, Timestamp};
use toolbelt_oauth::Credential;

/// Where to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Through its toolbox's DTMA; the token's audience is the toolbox.
    /// `pin`: the SHA-256 of the DTMA's TLS key pinned at join; only that key is accepted.
    Dtma {
        url: String,
        toolbox_id: String,
        pin: Option<String>,
    },
    /// A remote server's own URL.
    Remote { url: String },
}

mod routes;

pub use routes::Routes;

/// The gateway as a client of one upstream session.
#[derive(Clone)]
pub struct UpstreamHandler {
    server: ServerId,
    /// The session's key in [`Routes`].
    key: Arc<str>,
    routes: Arc<Routes>,
}

/// The agent's own error passes on to the server as it is.
fn forward_err(e: rmcp::service::ServiceError) -> McpError {
    match e {
        rmcp::service::ServiceError::McpError(e) => e,
        other => CallError::Agent(other.to_string()).into(),
    }
}

fn answered_otherwise(request: &str) -> McpError {
    CallError::Agent(format!("it answered {request} with something else")).into()
}

// Sampling and roots are deprecated by the spec (SEP-2577) but still what legacy
// servers use; the gateway forwards them faithfully.
#[allow(deprecated)]
impl ClientHandler for UpstreamHandler {
    fn get_info(&self) -> ClientConfig {
        let caps = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        ClientConfig::new(
            caps,
            Implementation::new("toolbelt-gateway", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.routes.tools_changed(&self.server).await;
    }

    async fn on_progress(
        &self,
        p: ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        let target = self
            .routes
            .progress_route(&self.key, &p.progress_token)
            .await;
        if let Some((peer, token)) = target {
            let mut p = p;
            p.progress_token = token;
            let _ = peer.notify_progress(p).await;
        }
    }

    #[allow(deprecated)]
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        ctx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let peer = self.routes.requester(&self.key, &ctx).await?;
        match peer
            .send_request(ServerRequest::CreateMessageRequest(
                rmcp::model::CreateMessageRequest::new(params),
            ))
            .await
            .map_err(forward_err)?
        {
            ClientResult::CreateMessageResult(r) => Ok(*r),
            _ => Err(answered_otherwise("sampling")),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let peer = self.routes.requester(&self.key, &ctx).await?;
        match peer
            .send_request(ServerRequest::ElicitRequest(ElicitRequest::new(params)))
            .await
            .map_err(forward_err)?
        {
            ClientResult::ElicitResult(r) => Ok(r),
            _ => Err(answered_otherwise("elicitation")),
        }
    }

    #[allow(deprecated)]
    async fn list_roots(
        &self,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        let peer = self.routes.requester(&self.key, &ctx).await?;
        match peer
            .send_request(ServerRequest::ListRootsRequest(Default::default()))
            .await
            .map_err(forward_err)?
        {
            ClientResult::ListRootsResult(r) => Ok(r),
            _ => Err(answered_otherwise("roots/list")),
        }
    }
}

/// An upstream's request to the client during a call (on a reply the gateway read
/// itself), put to the agent whose call it is: sampling, elicitation and roots as the
/// handler above forwards them; ping answered here.
pub async fn ask_agent(
    agent: &Peer<RoleServer>,
    req: ServerRequest,
) -> Result<ClientResult, McpError> {
    match req {
        ServerRequest::PingRequest(_) => Ok(ClientResult::empty(())),
        req @ (ServerRequest::CreateMessageRequest(_)
        | ServerRequest::ElicitRequest(_)
        | ServerRequest::ListRootsRequest(_)) => agent.send_request(req).await.map_err(forward_err),
        _ => Err(McpError::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            "the gateway does not forward this request",
            None,
        )),
    }
}

/// An error with its causes ("a: b: c"): the reason (an SSRF refusal, a DNS failure, a
/// certificate the roots do not vouch for) is usually a few sources down.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = cause(e);
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out = format!("{out}: {m}");
        }
        cur = cause(s);
    }
    out
}

/// An error's source, also where rmcp displays one without naming it as the source (its
/// handshake's transport error, its HTTP client's `Client(E)`): without these the chain
/// ends at "error sending request" and the reason is lost.
fn cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    use rmcp::service::ClientInitializeError;
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    if let Some(ClientInitializeError::TransportError { error, .. }) = e.downcast_ref() {
        return Some(error);
    }
    if let Some(StreamableHttpError::<reqwest::Error>::Client(inner)) = e.downcast_ref() {
        return Some(inner);
    }
    e.source()
}

pub struct Conn {
    service: RunningService<RoleClient, UpstreamHandler>,
    /// The session as rmcp's transport posts to it (for calls on the caller's task).
    wire: crate::upstream_client::WireCell,
    pub(crate) http: reqwest::Client,
    /// Ids of requests posted outside rmcp: far above rmcp's own counter.
    next_id: std::sync::atomic::AtomicI64,
    endpoint: Endpoint,
    /// The largest reply taken from this upstream ([`crate::reply_cap`]).
    pub max_reply: usize,
    renew_at: Instant,
    key: Arc<str>,
    /// The credential's version this session's requests carry (None: no credential).
    stamp: Option<Timestamp>,
}

impl Conn {
    pub fn peer(&self) -> &Peer<RoleClient> {
        self.service.peer()
    }

    /// This session's key in [`Routes`].
    pub fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// How to post to this session directly, once its handshake is done.
    pub fn wire(&self) -> Option<Arc<crate::upstream_client::Wire>> {
        self.wire.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A request id of our own for this session.
    pub fn next_id(&self) -> RequestId {
        RequestId::Number(
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }

    pub fn server(&self) -> &ServerId {
        &self.service.service().server
    }

    pub fn routes(&self) -> &Arc<Routes> {
        &self.service.service().routes
    }

    fn usable(&self, endpoint: &Endpoint, stamp: Option<Timestamp>) -> bool {
        !self.service.is_closed()
            && &self.endpoint == endpoint
            && Instant::now() < self.renew_at
            && self.stamp == stamp
    }

    pub fn protocol_version(&self) -> Option<String> {
        self.service
            .peer()
            .peer_info()
            .map(|i| i.protocol_version.to_string())
    }
}

/// Why an upstream session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting timed out after {:.1} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("bad URL {url}: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error(transparent)]
    Refused(#[from] crate::ssrf::Refused),
    #[error(transparent)]
    PlainHttp(#[from] toolbelt_net::http::PlainHttp),
    /// A toolbox address stored before the DTMA guard existed, or by hand.
    #[error("the toolbox's DTMA address {0}")]
    DtmaAddress(#[from] toolbelt_net::dtma_address::BadAdvertiseUrl),
    #[error("the {0} is not a valid header value")]
    BadHeader(&'static str),
    /// The cause chain of the handshake's failure ("a: b: c"), where the reason is.
    #[error("MCP handshake with {url} failed: {reason}")]
    Handshake { url: String, reason: String },
}

/// Signs the DTMA bearer token for a toolbox (the gateway runs in the control plane).
pub type Signer = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// How long an upstream session is used before it is replaced (its DTMA token lasts longer).
const RENEW_AFTER: Duration = Duration::from_secs(45 * 60);

/// One server's session, behind a lock so concurrent callers connect once.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Conn>>>>;

/// A pooled session: a server's shared one, or its own per OAuth connection (requests
/// carry that user's token, and upstream sessions are never shared between users).
type PoolKey = (ServerId, Option<ConnectionId>);

pub struct Upstreams {
    conns: tokio::sync::Mutex<HashMap<PoolKey, Slot>>,
    /// One client per pinned DTMA key (and one for unpinned DTMAs).
    dtma_http: toolbelt_net::dtma_pin::DtmaClients,
    remote_http: reqwest::Client,
    sign: Signer,
    /// Checks remote URLs whose host is an IP literal (the guarded resolver never sees those).
    guard: Arc<crate::ssrf::Guard>,
    outbound: toolbelt_net::http::Outbound,
    pub routes: Arc<Routes>,
    /// The largest reply taken from an upstream ([`crate::reply_cap`]).
    pub max_reply: usize,
}

impl Upstreams {
    pub fn new(
        sign: Signer,
        guard: Arc<crate::ssrf::Guard>,
        routes: Arc<Routes>,
        outbound: &toolbelt_net::http::Outbound,
    ) -> Upstreams {
        let remote_http = outbound
            .guarded(guard.clone())
            .build()
            .expect("an HTTP client builds");
        let dtma_http = toolbelt_net::dtma_pin::DtmaClients::new(outbound, |b| {
            b.pool_idle_timeout(Duration::from_secs(300))
        });
        Upstreams {
            conns: Default::default(),
            dtma_http,
            remote_http,
            sign,
            guard,
            outbound: outbound.clone(),
            routes,
            max_reply: crate::reply_cap::DEFAULT_MAX_REPLY_BYTES,
        }
    }

    /// With another limit on an upstream reply's size.
    pub fn with_max_reply(mut self, bytes: usize) -> Upstreams {
        self.max_reply = bytes;
        self
    }

    /// The pooled session of a server (for one credential, when given), connecting once
    /// however many callers ask. A credential whose tokens changed (a refresh) gets a
    /// new session carrying the new token.
    pub async fn get(
        &self,
        server: &ServerId,
        endpoint: &Endpoint,
        timeout: Duration,
        cred: Option<&Credential>,
    ) -> Result<Arc<Conn>, ConnectError> {
        let key = (server.clone(), cred.map(|c| c.connection_id.clone()));
        let slot = self.conns.lock().await.entry(key).or_default().clone();
        let mut slot = slot.lock().await;
        let stamp = cred.map(|c| c.stamp);
        if let Some(c) = slot.as_ref()
            && c.usable(endpoint, stamp)
        {
            return Ok(c.clone());
        }
        let conn = tokio::time::timeout(timeout, self.connect(server, endpoint, cred))
            .await
            .map_err(|_| ConnectError::Timeout(timeout))??;
        let conn = Arc::new(conn);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Drops a server's sessions (after a transport failure) so the next call reconnects.
    pub async fn reset(&self, server: &ServerId) {
        let slots: Vec<Slot> = self
            .conns
            .lock()
            .await
            .iter()
            .filter(|((s, _), _)| s == server)
            .map(|(_, slot)| slot.clone())
            .collect();
        for slot in slots {
            *slot.lock().await = None;
        }
    }

    async fn connect(
        &self,
        server: &ServerId,
        endpoint: &Endpoint,
        cred: Option<&Credential>,
    ) -> Result<Conn, ConnectError> {
        let (url, client, headers) = match endpoint {
            Endpoint::Dtma {
                url,
                toolbox_id,
                pin,
            } => {
                let mut h = HashMap::new();
                let token = (self.sign)(toolbox_id);
                h.insert(
                    http::header::AUTHORIZATION,
                    http::HeaderValue::from_str(&format!("Bearer {token}"))
                        .map_err(|_| ConnectError::BadHeader("signed toolbox token"))?,
                );
                self.outbound.dtma.check_channel(url, pin.is_some())?;
                (url.clone(), self.dtma_http.get(pin.as_deref()), h)
            }
            Endpoint::Remote { url } => {
                let parsed = reqwest::Url::parse(url).map_err(|source| ConnectError::BadUrl {
                    url: url.clone(),
                    source,
                })?;
                self.outbound
                    .check_scheme(&parsed, &format!("remote server {server}"))?;
                self.guard.check_url(&parsed)?;
                let mut h = HashMap::new();
                // The user's token, never the agent's: the agent's bearer stops here.
                if let Some(c) = cred {
                    h.insert(
                        http::header::AUTHORIZATION,
                        http::HeaderValue::from_str(&c.authorization)
                            .map_err(|_| ConnectError::BadHeader("stored access token"))?,
                    );
                }
                (url.clone(), self.remote_http.clone(), h)
            }
        };
        let cfg = StreamableHttpClientTransportConfig::with_uri(url.clone())
            .custom_headers(headers)
            .max_concurrent_requests(256)
            .max_sse_event_size(self.max_reply);
        let wire = crate::upstream_client::WireCell::default();
        let transport = StreamableHttpClientTransport::with_client(
            crate::upstream_client::UpstreamClient {
                max_reply: self.max_reply,
                http: client.clone(),
                wire: wire.clone(),
            },
            cfg,
        );
        let key: Arc<str> = match cred {
            Some(c) => Arc::from(format!("{server}/{}", c.connection_id)),
            None => Arc::from(server.as_str()),
        };
        let handler = UpstreamHandler {
            server: server.clone(),
            key: key.clone(),
            routes: self.routes.clone(),
        };
        let service =
            rmcp::serve_client(handler, transport)
                .await
                .map_err(|e| ConnectError::Handshake {
                    url: url.clone(),
                    reason: chain(&e),
                })?;
        service
            .peer()
            .set_response_cache_config(rmcp::service::ClientCacheConfig::disabled())
            .await;
        Ok(Conn {
            service,
            wire,
            http: client,
            next_id: std::sync::atomic::AtomicI64::new(1 << 40),
            endpoint: endpoint.clone(),
            renew_at: Instant::now() + RENEW_AFTER,
            max_reply: self.max_reply,
            key,
            stamp: cred.map(|c| c.stamp),
        })
    }
}
