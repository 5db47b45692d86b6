//! The DTMA's REST API (`/v1`): deploy, remove, start, stop, restart, status, logs,
//! stats, discovery. Errors are problem documents; no route runs a shell, and request
//! fields reach the runtime only through the typed desired-server spec.

use crate::runtime::RuntimeError;
use crate::supervisor::Supervisor;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use toolbelt_model::ServerId;
use toolbelt_model::dtma::{
    DeployRequest, Discovery, ObservedServer, ResolveImageRequest, ResolveImageResponse,
    RuntimeState, SystemMetrics, is_image_digest,
};
use toolbelt_model::name::{Name, SHORT_NAME_MAX};
use toolbelt_model::server::DesiredState;

pub struct ApiState {
    pub sup: Arc<Supervisor>,
    pub toolbox_id: String,
    pub data_dir: PathBuf,
}

pub fn problem(status: StatusCode, kind: &str, detail: impl Into<String>) -> Response {
    let body = json!({ "type": format!("urn:toolbelt:problem:{kind}"), "title": kind, "status": status.as_u16(), "detail": detail.into() });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// A refusal, turned into a problem document at the edge.
pub struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        problem(self.0, self.1, self.2)
    }
}

fn lookup(st: &ApiState, name: &str) -> Result<ServerId, Refusal> {
    if let Err(e) = Name::parse("name", name, SHORT_NAME_MAX) {
        return Err(Refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            e.to_string(),
        ));
    }
    st.sup.find(name).ok_or_else(|| {
        Refusal(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("server {name} not found"),
        )
    })
}

fn observed(st: &ApiState, id: &ServerId) -> Response {
    match st.sup.observed().into_iter().find(|o| &o.id == id) {
        Some(o) => (StatusCode::ACCEPTED, Json(o)).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    }
}

pub async fn deploy(State(st): State<Arc<ApiState>>, body: Bytes) -> Response {
    let req: DeployRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                format!("invalid deploy request: {e}"),
            );
        }
    };
    if let Err(e) = req.server.validate() {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            e.to_string(),
        );
    }
    if let Some(other) = st.sup.find(&req.server.name)
        && other != req.server.id
    {
        return problem(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "another server named {} runs on this toolbox",
                req.server.name
            ),
        );
    }
    // DeployRequest's Debug shows secret names, never values.
    tracing::debug!(request = ?req, "deploy request");
    let id = req.server.id.clone();
    // Ids and names become directory and file names: refused unless plain components.
    if let Err(e) = st.sup.deploy(req.server, req.secrets) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            e.to_string(),
        );
    }
    observed(&st, &id)
}

pub async fn list(State(st): State<Arc<ApiState>>) -> Json<Vec<ObservedServer>> {
    Json(st.sup.observed())
}

pub async fn get(State(st): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    match lookup(&st, &name) {
        Ok(id) => match st.sup.observed().into_iter().find(|o| o.id == id) {
            Some(o) => Json(o).into_response(),
            None => problem(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("server {name} not found"),
            ),
        },
        Err(r) => r.into_response(),
    }
}

pub async fn delete(State(st): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    match lookup(&st, &name) {
        Ok(id) => {
            st.sup.remove(&id);
            observed(&st, &id)
        }
        Err(r) => r.into_response(),
    }
}

pub async fn action(
    State(st): State<Arc<ApiState>>,
    Path((name, verb)): Path<(String, String)>,
) -> Response {
    let id = match lookup(&st, &name) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let (desired, restart) = match verb.as_str() {
        "start" => (DesiredState::Running, false),
        "stop" => (DesiredState::Stopped, false),
        "restart" => (DesiredState::Running, true),
        _ => {
            return problem(
                StatusCode::NOT_FOUND,
                "route-not-found",
                "the verbs are start, stop and restart",
            );
        }
    };
    st.sup.set_state(&id, desired, restart);
    observed(&st, &id)
}

#[derive(Deserialize)]
pub struct LogsQuery {
    tail: Option<usize>,
    follow: Option<u8>,
}

pub async fn logs(
    State(st): State<Arc<ApiState>>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    let id = match lookup(&st, &name) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let Some(inst) = st.sup.instance(&id) else {
        return problem(
            StatusCode::CONFLICT,
            "not-running",
            format!("server {name} has no running instance"),
        );
    };
    // Through the supervisor, which masks the server's secret values.
    match st
        .sup
        .logs(
            &inst,
            q.tail.unwrap_or(100).min(10_000),
            q.follow == Some(1),
        )
        .await
    {
        Ok(stream) => {
            use futures::StreamExt;
            let body = Body::from_stream(stream.map(Ok::<_, std::convert::Infallible>));
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
        }
        Err(e) => runtime_problem(e),
    }
}

pub async fn stats(State(st): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    let id = match lookup(&st, &name) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let Some(inst) = st.sup.instance(&id) else {
        return problem(
            StatusCode::CONFLICT,
            "not-running",
            format!("server {name} has no running instance"),
        );
    };
    match st.sup.runtime.stats(&inst).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => runtime_problem(e),
    }
}

/// The image ID an explicit update moves a server to (the control plane pins it, then
/// sends the new pin with a new generation). Pulls if needed; runs nothing.
pub async fn resolve_image(State(st): State<Arc<ApiState>>, body: Bytes) -> Response {
    let req: ResolveImageRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                format!("invalid resolve request: {e}"),
            );
        }
    };
    if let Some(d) = &req.digest
        && !is_image_digest(d)
    {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "digest must be sha256: and 64 hex digits",
        );
    }
    if let Some(why) = toolbelt_model::registry::refusal(&req.allowed_registries, &req.image) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "image-refused", why);
    }
    match st
        .sup
        .runtime
        .resolve_image(&req.image, req.digest.as_deref())
        .await
    {
        Ok(image_digest) => Json(ResolveImageResponse { image_digest }).into_response(),
        Err(RuntimeError::Refused(m)) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, "image-refused", m)
        }
        Err(e) => runtime_problem(e),
    }
}

fn runtime_problem(e: RuntimeError) -> Response {
    match e {
        RuntimeError::NotFound => {
            problem(StatusCode::NOT_FOUND, "not-found", "the instance is gone")
        }
        RuntimeError::Unavailable(m) => {
            problem(StatusCode::SERVICE_UNAVAILABLE, "runtime-unavailable", m)
        }
        other => problem(StatusCode::BAD_GATEWAY, "runtime-error", other.to_string()),
    }
}

#[derive(Serialize)]
pub struct Status {
    pub toolbox_id: String,
    pub version: &'static str,
    pub runtime: RuntimeState,
    pub system: SystemMetrics,
    pub servers: Vec<ObservedServer>,
}

pub async fn status(State(st): State<Arc<ApiState>>) -> Json<Status> {
    Json(Status {
        toolbox_id: st.toolbox_id.clone(),
        version: env!("CARGO_PKG_VERSION"),
        runtime: st.sup.runtime_status(),
        system: crate::system::sample(&st.data_dir),
        servers: st.sup.observed(),
    })
}

pub async fn discovery(State(st): State<Arc<ApiState>>) -> Json<Vec<Discovery>> {
    Json(st.sup.discovery())
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}
