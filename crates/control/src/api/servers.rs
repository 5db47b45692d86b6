//! Servers: a deploy request places a catalog entry on a toolbox; start, stop, restart and
//! delete change the desired state, which the toolbox's DTMA carries out and reports back.

use super::common::{self, CommonErrors, WriteErrors, nf};
use super::toolboxes::may_manage;
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::{Body, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::catalog::{CatalogSource, CatalogSpec, CatalogStatus};
use toolbelt_model::error::Checker;
use toolbelt_model::name::{Name, SHORT_NAME_MAX};
use toolbelt_model::page::clamp_limit;
use toolbelt_model::server::{DesiredState, Server};
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_model::{FieldError, Invalid, Page};
use toolbelt_store::{catalog, servers, toolboxes};
use utoipa::{IntoParams, ToSchema};

fn default_toolbox() -> String {
    "local".into()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    pub name: String,
    /// Catalog slug or id.
    pub catalog: String,
    /// Toolbox id or name (default `local`).
    #[serde(default = "default_toolbox")]
    pub toolbox: String,
    /// Values for the entry's `config_schema`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Secret requirement name → the name of the secret that fills it.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServerQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only servers on this toolbox (id or name); also disambiguates a server name.
    pub toolbox: Option<String>,
}

/// Checks config against the entry's schema and secrets against its requirements.
fn check_request(
    spec: &CatalogSpec,
    config: &Map<String, Value>,
    secrets: &BTreeMap<String, String>,
) -> Result<(), Invalid> {
    let mut c = Checker::new();
    let instance = Value::Object(config.clone());
    match jsonschema::validator_for(&spec.config_schema) {
        Ok(v) => {
            for e in v.iter_errors(&instance) {
                let ptr = e.instance_path().as_str().to_string();
                let field = if ptr.is_empty() {
                    "config".to_string()
                } else {
                    format!("config{}", ptr.replace('/', "."))
                };
                c.fail(field, e.to_string());
            }
        }
        Err(e) => c.fail("catalog", format!("its config_schema is unusable: {e}")),
    }
    for key in secrets.keys() {
        if !spec.secrets.iter().any(|s| &s.name == key) {
            c.fail(
                format!("secrets.{key}"),
                format!("catalog entry {} declares no such secret", spec.slug),
            );
        }
    }
    for (key, name) in secrets {
        c.check(Name::parse(
            &format!("secrets.{key}"),
            name,
            toolbelt_model::name::LONG_NAME_MAX,
        ));
    }
    for req in spec.secrets.iter().filter(|s| s.required) {
        if !secrets.contains_key(&req.name) {
            c.fail(
                format!("secrets.{}", req.name),
                format!("is required by catalog entry {}", spec.slug),
            );
        }
    }
    c.finish()
}

/// Servers the caller can see (on their toolboxes and shared ones).
#[utoipa::path(get, path = "/api/v1/servers", tag = "servers", params(ServerQuery),
    responses((status = 200, body = Page<Server>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Page<Server>>> {
    let mut c = st.store.conn().await?;
    let tb = match &q.toolbox {
        Some(t) => Some(common::toolbox(&mut c, &caller.scope, t).await?.id),
        None => None,
    };
    Ok(Json(
        servers::list(
            &mut c,
            &caller.scope,
            tb.as_ref(),
            clamp_limit(q.limit),
            q.cursor.as_deref(),
        )
        .await?,
    ))
}

/// Requests a deployment: a server in desired state `running` on a toolbox.
#[utoipa::path(post, path = "/api/v1/servers", tag = "servers", request_body = CreateServer,
    responses((status = 201, body = Server), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<CreateServer>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    let name = Name::parse("name", &req.name, SHORT_NAME_MAX)?;
    let mut tx = st.store.begin_audited().await?;
    let tb = common::toolbox(&mut tx, &caller.scope, &req.toolbox)
        .await
        .map_err(|p| {
            if p.status == 404 {
                Problem::invalid("toolbox", format!("no toolbox {} you can use", req.toolbox))
            } else {
                p
            }
        })?;
    if !may_manage(&caller, &tb) {
        return Err(Problem::forbidden(
            "members deploy only on their own toolboxes; shared toolboxes are for admins",
        ));
    }
    let entry = match catalog::get(&mut tx, &req.catalog).await {
        Ok(e) => e,
        Err(toolbelt_store::StoreError::NotFound) => {
            return Err(Problem::invalid(
                "catalog",
                format!("no catalog entry {}", req.catalog),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if entry.spec.status == CatalogStatus::Deprecated {
        return Err(Problem::invalid(
            "catalog",
            format!("catalog entry {} is deprecated", entry.spec.slug),
        ));
    }
    let remote_entry = matches!(entry.spec.source, CatalogSource::Remote { .. });
    let remote_box = tb.kind == Some(ToolboxKind::Remote);
    if remote_entry != remote_box {
        let why = if remote_entry {
            "a remote (URL) server belongs on a remote toolbox"
        } else {
            "a remote toolbox holds only remote (URL) servers"
        };
        return Err(Invalid(vec![FieldError {
            field: "toolbox".into(),
            message: why.into(),
        }])
        .into());
    }
    check_request(&entry.spec, &req.config, &req.secrets)?;
    // A reference must name a secret in the server's own namespace (its owner's, or the
    // shared one for shared servers): a missing or someone else's secret is refused now,
    // not at deploy.
    for (key, secret) in &req.secrets {
        let found =
            toolbelt_store::secrets::find_in_namespace(&mut tx, tb.owner_id.as_ref(), secret)
                .await?;
        if found.is_none() {
            return Err(Problem::invalid(
                &format!("secrets.{key}"),
                format!(
                    "no secret {secret} in {} namespace",
                    crate::secrets::namespace_label(tb.owner_id.as_ref())
                ),
            ));
        }
    }
    let s = servers::create(
        &mut tx,
        servers::NewServer {
            name: &name,
            toolbox_id: &tb.id,
            catalog_id: &entry.id,
            owner_id: tb.owner_id.as_ref(),
            config: &req.config,
            secrets: &req.secrets,
        },
    )
    .await?;
    // Remote servers have no DTMA to report them: they are as running as their URL;
    // the gateway's discovery tells whether they answer.
    let s = if remote_box {
        let obs = servers::Observation {
            status: toolbelt_model::server::ServerStatus::Running,
            last_error: None,
            restarts: 0,
            health: toolbelt_model::dtma::Health::Unknown,
            instance: None,
        };
        servers::apply_observed(&mut tx, &s.id, obs).await?;
        servers::get_internal(&mut tx, &s.id).await?
    } else {
        s
    };
    tx.commit(by_user(
        &caller,
        AuditAction::ServerCreate,
        TargetKind::Server,
        &s.id,
        s.owner_id.as_ref(),
        json!({ "name": name, "toolbox": tb.name, "catalog": entry.spec.slug }),
    ))
    .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// One server, by id or name.
#[utoipa::path(get, path = "/api/v1/servers/{server}", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    let mut c = st.store.conn().await?;
    Ok(Json(
        common::server(&mut c, &caller.scope, &r, q.toolbox.as_deref()).await?,
    ))
}

async fn change(
    st: &AppState,
    caller: &UserCaller,
    r: &str,
    toolbox: Option<&str>,
    desired: DesiredState,
    restart: bool,
    action: AuditAction,
) -> ApiResult<Json<Server>> {
    let mut tx = st.store.begin_audited().await?;
    let s = common::server(&mut tx, &caller.scope, r, toolbox).await?;
    if !caller.is_admin() && s.owner_id.as_ref() != Some(caller.id()) {
        return Err(Problem::forbidden("only admins may change shared servers"));
    }
    if s.desired == DesiredState::Deleted {
        return Err(Problem::conflict(format!(
            "server {} is being deleted",
            s.name
        )));
    }
    let s = nf(
        &format!("server {r}"),
        servers::set_desired(&mut tx, &caller.scope, &s.id, desired, restart).await,
    )?;
    let s = settle_if_remote(&mut tx, s).await?;
    tx.commit(by_user(
        caller,
        action,
        TargetKind::Server,
        &s.id,
        s.owner_id.as_ref(),
        json!({ "name": s.name, "desired": desired.as_str() }),
    ))
    .await?;
    Ok(Json(s))
}

/// A remote toolbox has no DTMA to carry out a desired state and report it back, so the
/// change is observed at once: a remote server is as running (or stopped) as it is told,
/// and a deleted one goes with its grants and pins.
async fn settle_if_remote(
    c: &mut toolbelt_store::AnyConnection,
    s: Server,
) -> Result<Server, toolbelt_store::StoreError> {
    let tb = toolboxes::get_internal(c, &s.toolbox_id).await?;
    if tb.kind != Some(ToolboxKind::Remote) {
        return Ok(s);
    }
    let status = match s.desired {
        DesiredState::Deleted => {
            servers::purge(c, &s.id).await?;
            return Ok(s);
        }
        DesiredState::Running => toolbelt_model::server::ServerStatus::Running,
        DesiredState::Stopped => toolbelt_model::server::ServerStatus::Stopped,
    };
    let obs = servers::Observation {
        status,
        last_error: None,
        restarts: s.restart_count,
        health: toolbelt_model::dtma::Health::Unknown,
        instance: None,
    };
    servers::apply_observed(c, &s.id, obs).await?;
    servers::get_internal(c, &s.id).await
}

/// Requests removal; the server disappears when its toolbox confirms.
#[utoipa::path(delete, path = "/api/v1/servers/{server}", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    change(
        &st,
        &caller,
        &r,
        q.toolbox.as_deref(),
        DesiredState::Deleted,
        false,
        AuditAction::ServerDelete,
    )
    .await
}

/// Desired state `running`.
#[utoipa::path(post, path = "/api/v1/servers/{server}/start", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors, WriteErrors))]
pub async fn start(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    change(
        &st,
        &caller,
        &r,
        q.toolbox.as_deref(),
        DesiredState::Running,
        false,
        AuditAction::ServerStart,
    )
    .await
}

/// Desired state `stopped`.
#[utoipa::path(post, path = "/api/v1/servers/{server}/stop", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors, WriteErrors))]
pub async fn stop(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    change(
        &st,
        &caller,
        &r,
        q.toolbox.as_deref(),
        DesiredState::Stopped,
        false,
        AuditAction::ServerStop,
    )
    .await
}

/// Recreates the server's process or container (desired state `running`).
#[utoipa::path(post, path = "/api/v1/servers/{server}/restart", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors, WriteErrors))]
pub async fn restart(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    change(
        &st,
        &caller,
        &r,
        q.toolbox.as_deref(),
        DesiredState::Running,
        true,
        AuditAction::ServerRestart,
    )
    .await
}
