//! Every DTMA route but `/healthz` needs a short-lived token signed by the control plane
//! for this toolbox. Refusals say nothing beyond 401.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use toolbelt_model::signed::ControlPublicKey;

pub struct Verifier {
    pub key: ControlPublicKey,
    pub toolbox_id: String,
}

pub async fn require(State(v): State<Arc<Verifier>>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let now = chrono::Utc::now().timestamp();
    match token.map(|t| v.key.verify(t, &v.toolbox_id, now)) {
        Some(Ok(_)) => next.run(req).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response(),
    }
}
