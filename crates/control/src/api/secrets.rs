//! Secrets in the vault: written once, then only their metadata ever comes back. Members
//! keep their own; admins also keep shared ones (for shared servers).

use super::common::{CommonErrors, ListQuery, WriteErrors};
use crate::auth::UserCaller;
use crate::extract::{Body, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use toolbelt_model::page::clamp_limit;
use toolbelt_model::{Name, Page, UserId};
use toolbelt_vault::{Owner, SecretKind, SecretMeta, SecretValue, VaultError};
use utoipa::ToSchema;

/// A secret's metadata. Its value is never returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretInfo {
    pub id: String,
    pub name: String,
    /// Absent: a shared secret (admins).
    pub owner_id: Option<UserId>,
    /// generic, api_key, password, oauth_client_secret, oauth_token
    pub kind: String,
    /// Bumped by every update (and by each OAuth refresh for token secrets).
    pub version: i64,
    /// The key-encryption key its data key is wrapped under.
    pub kek_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SecretMeta> for SecretInfo {
    fn from(m: SecretMeta) -> SecretInfo {
        SecretInfo {
            id: m.id.to_string(),
            name: m.name.to_string(),
            owner_id: m.owner_id,
            kind: m.kind.as_str().into(),
            version: m.version,
            kek_id: m.kek_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    pub name: String,
    /// The value; never echoed, logged or returned.
    #[schema(value_type = String)]
    pub value: SecretValue,
    /// generic (default), api_key or password.
    pub kind: Option<String>,
    /// Admins: create it in the shared namespace (for shared servers).
    #[serde(default)]
    pub shared: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSecret {
    #[schema(value_type = String)]
    pub value: SecretValue,
}

/// Kinds a user may write; OAuth secrets belong to providers and connections.
fn user_kind(kind: Option<&str>) -> ApiResult<SecretKind> {
    let k = match kind {
        None => SecretKind::Generic,
        Some(s) => SecretKind::parse(s)
            .ok_or_else(|| Problem::invalid("kind", "must be one of generic, api_key, password"))?,
    };
    if matches!(k, SecretKind::OauthToken | SecretKind::OauthClientSecret) {
        return Err(Problem::invalid(
            "kind",
            "OAuth secrets are written by providers and connections, not directly",
        ));
    }
    Ok(k)
}

fn managed(m: &SecretMeta) -> ApiResult<()> {
    if matches!(
        m.kind,
        SecretKind::OauthToken | SecretKind::OauthClientSecret
    ) {
        return Err(Problem::conflict(format!(
            "secret {} is managed by OAuth (a connection's tokens or a provider's client \
             secret): revoke the connection or delete the provider instead",
            m.name
        )));
    }
    Ok(())
}

fn check_value(v: &SecretValue) -> ApiResult<()> {
    if v.is_empty() {
        return Err(Problem::invalid("value", "must not be empty"));
    }
    if v.len() > 64 * 1024 {
        return Err(Problem::invalid("value", "must be at most 64 KiB"));
    }
    Ok(())
}

/// Secrets the caller can see, metadata only (members: their own; admins: all).
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets", params(ListQuery),
    responses((status = 200, body = Page<SecretInfo>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<SecretInfo>>> {
    let vault = &st.credentials()?.vault;
    let page = vault
        .list_page(&caller.scope, clamp_limit(q.limit), q.cursor.as_deref())
        .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(SecretInfo::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Stores a new secret, sealed under its own data key. The value is never returned.
#[utoipa::path(post, path = "/api/v1/secrets", tag = "secrets", request_body = CreateSecret,
    responses((status = 201, body = SecretInfo), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<CreateSecret>,
) -> ApiResult<(StatusCode, Json<SecretInfo>)> {
    let vault = &st.credentials()?.vault;
    let name = Name::parse("name", &req.name, toolbelt_model::name::LONG_NAME_MAX)?;
    let kind = user_kind(req.kind.as_deref())?;
    check_value(&req.value)?;
    let owner = if req.shared {
        Owner::Shared
    } else {
        Owner::Caller
    };
    let namespace = match owner {
        Owner::Shared => None,
        Owner::Caller => Some(caller.id().clone()),
    };
    {
        let mut c = st.store.conn().await?;
        if toolbelt_store::secrets::find_in_namespace(&mut c, namespace.as_ref(), name.as_str())
            .await?
            .is_some()
        {
            return Err(Problem::conflict(format!(
                "a secret named {name} already exists; update it with PUT"
            )));
        }
    }
    let meta = vault
        .put(&caller.scope, owner, &name, kind, req.value)
        .await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}

/// One secret's metadata, by id or name.
#[utoipa::path(get, path = "/api/v1/secrets/{secret}", tag = "secrets",
    params(("secret" = String, Path, description = "Secret id or name")),
    responses((status = 200, body = SecretInfo), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    let vault = &st.credentials()?.vault;
    Ok(Json(found(&r, vault.meta(&caller.scope, &r).await)?.into()))
}

fn found<T>(r: &str, res: Result<T, VaultError>) -> ApiResult<T> {
    res.map_err(|e| match e {
        VaultError::NotFound => Problem::not_found(format!("secret {r}")),
        e => e.into(),
    })
}

/// Replaces a secret's value: a new version, sealed under a new data key.
#[utoipa::path(put, path = "/api/v1/secrets/{secret}", tag = "secrets", request_body = UpdateSecret,
    params(("secret" = String, Path, description = "Secret id or name")),
    responses((status = 200, body = SecretInfo), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Body(req): Body<UpdateSecret>,
) -> ApiResult<Json<SecretInfo>> {
    let vault = &st.credentials()?.vault;
    check_value(&req.value)?;
    let m = found(&r, vault.meta(&caller.scope, &r).await)?;
    managed(&m)?;
    // Only the namespace's own writers: the owner, or an admin for shared secrets.
    let owner = match &m.owner_id {
        Some(o) if o == caller.id() => Owner::Caller,
        None if caller.is_admin() => Owner::Shared,
        _ => {
            return Err(Problem::forbidden(
                "only a secret's owner may change its value",
            ));
        }
    };
    let meta = vault
        .put(&caller.scope, owner, &m.name, m.kind, req.value)
        .await?;
    Ok(Json(meta.into()))
}

/// Deletes a secret (its owner, or an admin).
#[utoipa::path(delete, path = "/api/v1/secrets/{secret}", tag = "secrets",
    params(("secret" = String, Path, description = "Secret id or name")),
    responses((status = 200, body = SecretInfo), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    let vault = &st.credentials()?.vault;
    let m = found(&r, vault.meta(&caller.scope, &r).await)?;
    managed(&m)?;
    let meta = found(&r, vault.delete(&caller.scope, m.id.as_str()).await)?;
    Ok(Json(meta.into()))
}
