//! Secrets in the vault: written once, then only their metadata ever comes back. Members
//! keep their own; admins also keep shared ones (for shared servers). Secrets that OAuth
//! manages (tokens, client secrets) are changed only through their provider or connection.

use super::Paging;
use super::caller::Caller;
use super::error::{Result, ServiceError};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use toolbelt_model::name::LONG_NAME_MAX;
use toolbelt_model::{Name, Page, SecretId, UserId};
use toolbelt_vault::{Owner, SecretKind, SecretMeta, SecretValue, Vault, VaultError};
use utoipa::ToSchema;

/// A secret's metadata. Its value is never returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretInfo {
    pub id: SecretId,
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
            id: m.id,
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

fn vault(st: &AppState) -> Result<&Vault> {
    Ok(&st.credentials()?.vault)
}

/// Kinds a user may write; OAuth secrets belong to providers and connections.
fn user_kind(kind: Option<&str>) -> Result<SecretKind> {
    let k = match kind {
        None => SecretKind::Generic,
        Some(s) => SecretKind::parse(s).ok_or_else(|| {
            ServiceError::invalid("kind", "must be one of generic, api_key, password")
        })?,
    };
    if matches!(k, SecretKind::OauthToken | SecretKind::OauthClientSecret) {
        return Err(ServiceError::invalid(
            "kind",
            "OAuth secrets are written by providers and connections, not directly",
        ));
    }
    Ok(k)
}

fn not_managed(m: &SecretMeta) -> Result<()> {
    if matches!(
        m.kind,
        SecretKind::OauthToken | SecretKind::OauthClientSecret
    ) {
        return Err(ServiceError::conflict(format!(
            "secret {} is managed by OAuth (a connection's tokens or a provider's client \
             secret): revoke the connection or delete the provider instead",
            m.name
        )));
    }
    Ok(())
}

fn check_value(v: &SecretValue) -> Result<()> {
    if v.is_empty() {
        return Err(ServiceError::invalid("value", "must not be empty"));
    }
    if v.len() > 64 * 1024 {
        return Err(ServiceError::invalid("value", "must be at most 64 KiB"));
    }
    Ok(())
}

fn found<T>(r: &str, res: Result<T, VaultError>) -> Result<T> {
    res.map_err(|e| match e {
        VaultError::NotFound => ServiceError::not_found(format!("secret {r}")),
        e => e.into(),
    })
}

/// Secrets the caller can see, metadata only (members: their own; admins: all).
pub async fn list(st: &AppState, caller: &Caller, page: &Paging) -> Result<Page<SecretInfo>> {
    let page = vault(st)?
        .list_page(&caller.scope, page.limit(), page.cursor())
        .await?;
    Ok(Page {
        items: page.items.into_iter().map(SecretInfo::from).collect(),
        next_cursor: page.next_cursor,
    })
}

/// Stores a new secret, sealed under its own data key; a taken name is a conflict.
pub async fn create(st: &AppState, caller: &Caller, req: CreateSecret) -> Result<SecretInfo> {
    let vault = vault(st)?;
    let name = Name::parse("name", &req.name, LONG_NAME_MAX)?;
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
            return Err(ServiceError::conflict(format!(
                "a secret named {name} already exists; update it with PUT"
            )));
        }
    }
    let meta = vault
        .put(&caller.scope, owner, &name, kind, req.value)
        .await?;
    Ok(meta.into())
}

/// One secret's metadata, by id or name.
pub async fn get(st: &AppState, caller: &Caller, r: &str) -> Result<SecretInfo> {
    Ok(found(r, vault(st)?.meta(&caller.scope, r).await)?.into())
}

/// Replaces a secret's value (a new version under a new data key); only its namespace's
/// writers may: the owner, or an admin for shared secrets.
pub async fn update(
    st: &AppState,
    caller: &Caller,
    r: &str,
    req: UpdateSecret,
) -> Result<SecretInfo> {
    let vault = vault(st)?;
    check_value(&req.value)?;
    let m = found(r, vault.meta(&caller.scope, r).await)?;
    not_managed(&m)?;
    let owner = match &m.owner_id {
        Some(o) if o == caller.id() => Owner::Caller,
        None if caller.is_admin() => Owner::Shared,
        _ => {
            return Err(ServiceError::forbidden(
                "only a secret's owner may change its value",
            ));
        }
    };
    let meta = vault
        .put(&caller.scope, owner, &m.name, m.kind, req.value)
        .await?;
    Ok(meta.into())
}

/// Deletes a secret (its owner, or an admin).
pub async fn delete(st: &AppState, caller: &Caller, r: &str) -> Result<SecretInfo> {
    let vault = vault(st)?;
    let m = found(r, vault.meta(&caller.scope, r).await)?;
    not_managed(&m)?;
    Ok(found(r, vault.delete(&caller.scope, m.id.as_str()).await)?.into())
}
