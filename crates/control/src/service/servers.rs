//! Servers: a deploy places a catalog entry on a toolbox; start, stop, restart and delete
//! change the desired state, which the toolbox's DTMA carries out and reports back.

use super::caller::Caller;
use super::error::{Result, ServiceError, found};
use super::toolboxes::may_manage;
use super::{Paging, refs};
use crate::secrets::namespace_label;
use crate::state::AppState;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::catalog::{CatalogEntry, CatalogSource, CatalogSpec, CatalogStatus};
use toolbelt_model::dtma::Health;
use toolbelt_model::error::Checker;
use toolbelt_model::name::{LONG_NAME_MAX, Name, SHORT_NAME_MAX};
use toolbelt_model::server::{DesiredState, Server, ServerStatus};
use toolbelt_model::toolbox::{Toolbox, ToolboxKind};
use toolbelt_model::{Invalid, Page};
use toolbelt_store::{AnyConnection, StoreError, catalog, servers, toolboxes};
use utoipa::ToSchema;

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

/// A change of a server's desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Start,
    Stop,
    /// Recreate its process or container.
    Restart,
    /// Remove it; it disappears when its toolbox confirms.
    Delete,
}

impl Change {
    fn desired(self) -> DesiredState {
        match self {
            Change::Start | Change::Restart => DesiredState::Running,
            Change::Stop => DesiredState::Stopped,
            Change::Delete => DesiredState::Deleted,
        }
    }

    fn action(self) -> AuditAction {
        match self {
            Change::Start => AuditAction::ServerStart,
            Change::Stop => AuditAction::ServerStop,
            Change::Restart => AuditAction::ServerRestart,
            Change::Delete => AuditAction::ServerDelete,
        }
    }
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
        c.check(Name::parse(&format!("secrets.{key}"), name, LONG_NAME_MAX));
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

/// Servers the caller can see (on their toolboxes and shared ones), optionally on one
/// toolbox (id or name).
pub async fn list(
    st: &AppState,
    caller: &Caller,
    toolbox: Option<&str>,
    page: &Paging,
) -> Result<Page<Server>> {
    let mut c = st.store.conn().await?;
    let tb = match toolbox {
        Some(t) => Some(refs::toolbox(&mut c, &caller.scope, t).await?.id),
        None => None,
    };
    Ok(servers::list(
        &mut c,
        &caller.scope,
        tb.as_ref(),
        page.limit(),
        page.cursor(),
    )
    .await?)
}

/// What a deploy is checked against before anything is written: the name, the toolbox
/// (one the caller may manage, of the entry's kind), the entry (not deprecated), the
/// config and secrets against the entry. A reference must name a secret in the server's
/// own namespace (its owner's, or the shared one for shared servers): a missing or someone
/// else's secret is refused now, not at deploy — except those in `to_seal`
/// (requirement names), whose secrets the caller is about to seal, so their names must
/// still be free.
async fn prepare(
    c: &mut AnyConnection,
    caller: &Caller,
    req: &CreateServer,
    to_seal: &BTreeSet<String>,
) -> Result<(Name, Toolbox, CatalogEntry)> {
    let name = Name::parse("name", &req.name, SHORT_NAME_MAX)?;
    let tb = refs::toolbox(c, &caller.scope, &req.toolbox)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                ServiceError::invalid("toolbox", format!("no toolbox {} you can use", req.toolbox))
            } else {
                e
            }
        })?;
    if !may_manage(caller, &tb) {
        return Err(ServiceError::forbidden(
            "members deploy only on their own toolboxes; shared toolboxes are for admins",
        ));
    }
    let entry = match catalog::get(c, &req.catalog).await {
        Ok(e) => e,
        Err(StoreError::NotFound) => {
            return Err(ServiceError::invalid(
                "catalog",
                format!("no catalog entry {}", req.catalog),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if entry.spec.status == CatalogStatus::Deprecated {
        return Err(ServiceError::invalid(
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
        return Err(ServiceError::invalid("toolbox", why));
    }
    if let CatalogSource::Image { image, .. } = &entry.spec.source
        && let Some(why) = toolbelt_model::registry::refusal(&tb.allowed_registries, image)
    {
        return Err(ServiceError::invalid(
            "catalog",
            format!("toolbox {}: {why}", tb.name),
        ));
    }
    check_request(&entry.spec, &req.config, &req.secrets)?;
    for (key, secret) in &req.secrets {
        let found =
            toolbelt_store::secrets::find_in_namespace(c, tb.owner_id.as_ref(), secret).await?;
        let ns = namespace_label(tb.owner_id.as_ref());
        match (to_seal.contains(key), found.is_some()) {
            (false, false) => {
                return Err(ServiceError::invalid(
                    &format!("secrets.{key}"),
                    format!("no secret {secret} in {ns} namespace"),
                ));
            }
            (true, true) => {
                return Err(ServiceError::invalid(
                    &format!("secrets.{key}"),
                    format!("a secret named {secret} already exists in {ns} namespace"),
                ));
            }
            _ => {}
        }
    }
    Ok((name, tb, entry))
}

/// Checks a deploy without making it (nothing written, nothing audited): the checks of
/// [`create`], with the secrets of the requirements in `to_seal` still to be sealed
/// (their names must be free). Answers the toolbox it would go on, whose namespace new
/// secrets belong in. The dashboard's deploy form checks before sealing a typed value,
/// so a refused form leaves nothing in the vault.
pub async fn check(
    st: &AppState,
    caller: &Caller,
    req: &CreateServer,
    to_seal: &BTreeSet<String>,
) -> Result<Toolbox> {
    let mut c = st.store.conn().await?;
    Ok(prepare(&mut c, caller, req, to_seal).await?.1)
}

/// Requests a deployment: a server in desired state `running` on a toolbox the caller may
/// manage (members: their own; shared toolboxes are for admins).
pub async fn create(st: &AppState, caller: &Caller, req: CreateServer) -> Result<Server> {
    let mut tx = st.store.begin_audited().await?;
    let (name, tb, entry) = prepare(&mut tx, caller, &req, &BTreeSet::new()).await?;
    let remote_box = tb.kind == Some(ToolboxKind::Remote);
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
            status: ServerStatus::Running,
            last_error: None,
            restarts: 0,
            health: Health::Unknown,
            instance: None,
        };
        servers::apply_observed(&mut tx, &s.id, obs).await?;
        servers::get_internal(&mut tx, &s.id).await?
    } else {
        s
    };
    tx.commit(caller.event(
        AuditAction::ServerCreate,
        TargetKind::Server,
        &s.id,
        s.owner_id.as_ref(),
        json!({ "name": name, "toolbox": tb.name, "catalog": entry.spec.slug }),
    ))
    .await?;
    Ok(s)
}

/// One server, by id or name (`toolbox` disambiguates a name).
pub async fn get(st: &AppState, caller: &Caller, r: &str, toolbox: Option<&str>) -> Result<Server> {
    let mut c = st.store.conn().await?;
    refs::server(&mut c, &caller.scope, r, toolbox).await
}

/// Changes the desired state of a server the caller owns (shared ones: admins).
pub async fn change(
    st: &AppState,
    caller: &Caller,
    r: &str,
    toolbox: Option<&str>,
    change: Change,
) -> Result<Server> {
    let desired = change.desired();
    let mut tx = st.store.begin_audited().await?;
    let s = refs::server(&mut tx, &caller.scope, r, toolbox).await?;
    may_change(caller, &s)?;
    let s = found(
        format!("server {r}"),
        servers::set_desired(
            &mut tx,
            &caller.scope,
            &s.id,
            desired,
            change == Change::Restart,
        )
        .await,
    )?;
    let s = settle_if_remote(&mut tx, s).await?;
    tx.commit(caller.event(
        change.action(),
        TargetKind::Server,
        &s.id,
        s.owner_id.as_ref(),
        json!({ "name": s.name, "desired": desired.as_str() }),
    ))
    .await?;
    Ok(s)
}

/// A remote toolbox has no DTMA to carry out a desired state and report it back, so the
/// change is observed at once: a remote server is as running (or stopped) as it is told,
/// and a deleted one goes with its grants and pins.
async fn settle_if_remote(c: &mut AnyConnection, s: Server) -> Result<Server, StoreError> {
    let tb = toolboxes::get_internal(c, &s.toolbox_id).await?;
    if tb.kind != Some(ToolboxKind::Remote) {
        return Ok(s);
    }
    let status = match s.desired {
        DesiredState::Deleted => {
            servers::purge(c, &s.id).await?;
            return Ok(s);
        }
        DesiredState::Running => ServerStatus::Running,
        DesiredState::Stopped => ServerStatus::Stopped,
    };
    let obs = servers::Observation {
        status,
        last_error: None,
        restarts: s.restart_count,
        health: Health::Unknown,
        instance: None,
    };
    servers::apply_observed(c, &s.id, obs).await?;
    servers::get_internal(c, &s.id).await
}

/// Who may change a server they can see (start, stop, restart, delete, update its image):
/// its owner, or an admin; and nobody once it is being deleted.
pub(super) fn may_change(caller: &Caller, s: &Server) -> Result<()> {
    if !caller.is_admin() && s.owner_id.as_ref() != Some(caller.id()) {
        return Err(ServiceError::forbidden(
            "only admins may change shared servers",
        ));
    }
    if s.desired == DesiredState::Deleted {
        return Err(ServiceError::conflict(format!(
            "server {} is being deleted",
            s.name
        )));
    }
    Ok(())
}
