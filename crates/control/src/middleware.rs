//! The one layer every matched route passes through: resolve the caller and the client's
//! address, refuse cross-site cookie writes, record metrics, and audit mutations that
//! failed (successful ones are audited by their service, in the same transaction as the
//! change; anonymous failures are summed up by [`crate::failure_ledger`]).

use crate::audit_log;
use crate::auth::{self, Auth, Principal};
use crate::client_ip::ClientIp;
use crate::metrics::{RequestLabels, RouteLabels};
use crate::problem::{Problem, ProblemType};
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

pub async fn api_layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let path = req.uri().path().to_string();

    // The scrape token is no user's: it is not looked up (nor counted as refused).
    let scraper = route == "/metrics" && crate::health::is_scraper(&st, req.headers());
    let auth = if scraper {
        Auth::Anonymous
    } else {
        match auth::resolve(&st.store, req.headers()).await {
            Ok(a) => a,
            Err(p) => return p.into_response(),
        }
    };
    if matches!(auth, Auth::Rejected(_)) {
        st.metrics.auth_failures.inc();
    }
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating
        && let Auth::Caller(Principal::User(u)) = &auth
        && u.session().is_some()
        && !same_origin(&req)
    {
        return Problem::forbidden("cross-site request refused").into_response();
    }
    let (mut parts, body) = req.into_parts();
    let client = ClientIp::of(&parts, &st.config.trusted_proxies);
    parts.extensions.insert(client);
    parts.extensions.insert(auth.clone());
    if scraper {
        parts.extensions.insert(crate::health::Scraper);
    }
    let req = Request::from_parts(parts, body);

    let res = next.run(req).await;

    let status = res.status();
    // 401s have no identity to record; 429s were tallied by the throttle.
    let audited = !matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
    );
    if mutating && status.as_u16() >= 400 && audited {
        if matches!(auth, Auth::Anonymous | Auth::Rejected(_)) {
            let a = audit_log::route_action(&method, &route);
            st.failures
                .failed_request(client.0, a.action, a.target_kind, status.as_u16());
        } else {
            let problem = res.extensions().get::<ProblemType>().and_then(|p| p.0);
            if let Err(e) =
                audit_log::record_failure(&st, &auth, &method, &route, &path, status, problem).await
            {
                tracing::error!(error = %e.detail, "could not audit a failed request");
            }
        }
        st.metrics.audit_events.inc();
    }
    st.metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.to_string(),
            route: route.clone(),
            status: status.as_u16(),
        })
        .inc();
    st.metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    res
}

/// Browsers send `Origin` on cross-site writes; it must name this host. (The session
/// cookie is also `SameSite=Lax`, which keeps it off cross-site subrequests and POSTs;
/// the dashboard's forms add a CSRF token.)
fn same_origin(req: &Request) -> bool {
    same_origin_headers(req.headers())
}

/// The Origin check of [`api_layer`], for the other browser-facing routers (the
/// dashboard): true without an `Origin`, else when it names the `Host`.
pub fn same_origin_headers(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}
