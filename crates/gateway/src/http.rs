//! The HTTP side of `/mcp`: the agent's bearer token checked on every request, sessions
//! bound to the agent that opened them (rmcp does not bind them; a session id of another
//! agent is answered 404), errors answered before rmcp (or by rmcp in plain text) as
//! JSON-RPC errors of the table, and one-event SSE replies collapsed into plain JSON for
//! clients that accept it (rmcp's legacy sessions always answer with SSE).

use crate::Hub;
use crate::error::CallError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rmcp::transport::streamable_http_server::SessionManager;
use std::sync::Arc;

const SESSION: &str = "mcp-session-id";

/// A 401 with the challenge MCP clients start their OAuth discovery from (RFC 9728 §5.1):
/// `resource_metadata` names this resource's metadata document; `error` only when a token
/// was sent (RFC 6750 §3.1: a request without credentials gets no error code).
fn unauthorized(hub: &Hub, why: &'static str, token_sent: bool) -> Response {
    let mut res = rpc_error(StatusCode::UNAUTHORIZED, CallError::Unauthorized(why));
    let mut challenge = String::from("Bearer realm=\"toolbelt\"");
    if let Some(url) = &hub.config.public_url {
        challenge.push_str(&format!(
            ", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            url.trim_end_matches('/')
        ));
    }
    if token_sent {
        challenge.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{why}\""
        ));
    }
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer")),
    );
    res
}

pub async fn layer(State(hub): State<Arc<Hub>>, req: Request, next: Next) -> Response {
    use toolbelt_net::otel::{Attribute, Kind, Span};
    // The agent's own trace, when it sent one, is the parent of everything below.
    let parent = toolbelt_net::otel::incoming(req.headers());
    let span = Span::start(
        format!("{} /mcp", req.method()),
        Kind::Server,
        &parent,
        || {
            vec![Attribute::new(
                "http.request.method",
                req.method().to_string(),
            )]
        },
    );
    let res = serve(hub, req, next, &span).await;
    if res.status().is_server_error() || res.status().is_client_error() {
        span.set(|| {
            vec![Attribute::new(
                "http.response.status_code",
                i64::from(res.status().as_u16()),
            )]
        });
    }
    res
}

async fn serve(
    hub: Arc<Hub>,
    mut req: Request,
    next: Next,
    span: &toolbelt_net::otel::Span,
) -> Response {
    // Before anything else: a page in a browser gets nothing from `/mcp`, not even a 401.
    if let Err(e) = hub.doors.check(req.headers()) {
        return rpc_error(StatusCode::FORBIDDEN, e);
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let Some(token) = token else {
        return unauthorized(
            &hub,
            "send the agent's token as 'Authorization: Bearer <token>'",
            false,
        );
    };
    let mut agent = match hub.policies.authenticate(&token).await {
        Ok(a) => a,
        Err(crate::policy::AuthError::Refused(why)) => return unauthorized(&hub, why, true),
        Err(crate::policy::AuthError::Store(e)) => {
            tracing::error!(error = %e, "authentication failed");
            let wait = e.retry_after();
            let mut res = rpc_error(StatusCode::SERVICE_UNAVAILABLE, CallError::Store(e));
            if let Some(wait) = wait {
                unavailable(&mut res, wait);
            }
            return res;
        }
    };
    if let Some(name) = req.uri().path().rsplit_once("/toolsets/").map(|(_, n)| n) {
        match crate::search::toolset_of(&hub, &agent, name).await {
            Ok(t) => agent.toolset = Some(t),
            Err(res) => return res,
        }
    }
    let session = req
        .headers()
        .get(SESSION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let owned = match &session {
        Some(s) => match hub.session_table.owner(s) {
            // Sessions never authenticate: another agent's session id does not exist for you.
            Some(o) if o != agent.agent_id => {
                return rpc_error(StatusCode::NOT_FOUND, CallError::SessionNotFound);
            }
            Some(_) => true,
            None => false,
        },
        None => false,
    };
    // Malformed bodies get JSON-RPC's own error codes (rmcp would answer 415 with text).
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, hub.config.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => return rpc_error(StatusCode::PAYLOAD_TOO_LARGE, CallError::RequestTooLarge),
        };
        let decoded = match crate::decode::decode(&bytes) {
            Ok(d) => d,
            Err(e) => return rpc_error(StatusCode::BAD_REQUEST, e.into()),
        };
        if let (Some(s), crate::decode::Decoded::Cancel { request }) = (&session, &decoded) {
            // A fast-path call rmcp never saw; rmcp ignores the id (it is not one of its).
            hub.session_table.cancel(s, request);
        }
        if let Some(s) = session.as_deref().filter(|_| owned && hub.config.fast_path)
            && crate::fast::claims(&parts.headers, &decoded)
            && let Some(live) = hub.session_table.live(s)
            && hub
                .rmcp_sessions
                .has_session(&s.into())
                .await
                .unwrap_or(false)
        {
            return crate::fast::serve(&hub, &agent, s, live, decoded, span.context()).await;
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let wants_json = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("application/json")));
    let method = req.method().clone();
    let agent_id = agent.agent_id.clone();
    req.extensions_mut().insert(agent);
    if toolbelt_net::otel::enabled() {
        req.extensions_mut()
            .insert(crate::call::Traced(span.context()));
    }
    let res = next.run(req).await;
    // rmcp answers an unknown session id in plain text; agents get the table's error.
    if res.status() == StatusCode::NOT_FOUND && session.is_some() && !is_json(&res) {
        return rpc_error(StatusCode::NOT_FOUND, CallError::SessionNotFound);
    }
    if let Some(s) = res.headers().get(SESSION).and_then(|v| v.to_str().ok()) {
        hub.session_table.opened(s, agent_id);
    }
    if method == Method::DELETE
        && res.status().is_success()
        && let Some(s) = &session
    {
        hub.session_table.closed(s);
        // A session ended is a plain success (rmcp says 202; SDKs expect 200).
        let mut res = res;
        *res.status_mut() = StatusCode::OK;
        return res;
    }
    let sse = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if method == Method::POST && wants_json && sse {
        return collapse(res).await;
    }
    res
}

/// The gateway's own `unavailable` error (the database is down) as HTTP says it: 503 and
/// `Retry-After`, as the REST API answers, not an error inside a 200.
pub(crate) fn unavailable(res: &mut Response, wait: std::time::Duration) {
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
}

/// An error answered before rmcp sees the request (so with no id to answer to).
pub(crate) fn rpc_error(status: StatusCode, e: CallError) -> Response {
    let body = e.reply(&serde_json::Value::Null);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The `data:` payload of one SSE event, if it has one.
fn data_of(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("data:")
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
        })
        .collect();
    let joined = data.join("\n");
    (!joined.trim().is_empty()).then_some(joined)
}

/// Whether a JSON-RPC message is a response (not a request or notification), looked at
/// without building it (a listing of a thousand tools is hundreds of kilobytes): None if
/// not, `Some(error)` if it is, with its error when it is an error response.
fn final_response(data: &str) -> Option<Option<rmcp::ErrorData>> {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct Probe {
        method: Option<IgnoredAny>,
        result: Option<IgnoredAny>,
        error: Option<serde_json::Value>,
    }
    let p = serde_json::from_str::<Probe>(data).ok()?;
    if p.method.is_some() || (p.result.is_none() && p.error.is_none()) {
        return None;
    }
    Some(p.error.and_then(|e| serde_json::from_value(e).ok()))
}

/// When the first real event of an SSE reply is the final response, answer with it as
/// JSON; otherwise pass the stream on (progress and server requests must stream).
async fn collapse(res: Response) -> Response {
    let (mut parts, body) = res.into_parts();
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut consumed = 0;
    // Where the search for the end of the current event resumes: a big event arrives in
    // many chunks, and rescanning it from its start each time would be quadratic.
    let mut scanned = 0;
    loop {
        while let Some(pos) = buf[scanned.max(consumed)..]
            .windows(2)
            .position(|w| w == b"\n\n")
        {
            let end = scanned.max(consumed) + pos;
            let event = &buf[consumed..end];
            consumed = end + 2;
            scanned = consumed;
            let Some(data) = data_of(event) else { continue };
            if let Some(error) = final_response(&data) {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                parts.headers.remove(header::CONTENT_LENGTH);
                let wait = error.and_then(|e| crate::error::unavailable_retry(&e));
                let mut res = Response::from_parts(parts, Body::from(data));
                if let Some(wait) = wait {
                    unavailable(&mut res, wait);
                }
                return res;
            }
            // Something must stream first: replay what was read, then the rest.
            let head = Bytes::from(buf);
            let rest = stream.map(|r| r.map_err(std::io::Error::other));
            let all =
                futures::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(rest);
            return Response::from_parts(parts, Body::from_stream(all));
        }
        // Resume one byte early: a `\n\n` may straddle two chunks.
        scanned = buf.len().saturating_sub(1).max(consumed);
        match stream.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(_)) | None => {
                let head = Bytes::from(buf);
                return Response::from_parts(parts, Body::from(head));
            }
        }
    }
}
