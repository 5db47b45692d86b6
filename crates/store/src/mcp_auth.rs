//! The authorization server of Toolbelt's own gateway (MCP authorization): registered
//! clients, one-time authorization codes, and token families. Rules (who may consent,
//! which redirect URIs are valid, rotation) are the control plane's service
//! (`service::mcp_auth`); this module only stores and finds, by digest.

use crate::rows::{ms, now_ms, opt_text, opt_ts, text, ts};
use crate::{Result, StoreError};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::token::TokenDigest;
use toolbelt_model::{AgentId, Timestamp, UserId};

/// A registered client (RFC 7591), public: it authenticates with PKCE, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// The registration response's metadata, as returned to the client.
    pub metadata: serde_json::Value,
    pub created_at: Timestamp,
}

fn client(r: &AnyRow) -> Result<Client> {
    Ok(Client {
        id: text(r, "id")?,
        name: text(r, "name")?,
        redirect_uris: serde_json::from_str(&text(r, "redirect_uris")?)
            .map_err(|e| StoreError::Corrupt(format!("redirect_uris: {e}")))?,
        metadata: serde_json::from_str(&text(r, "metadata")?)
            .map_err(|e| StoreError::Corrupt(format!("metadata: {e}")))?,
        created_at: ts(r, "created_at")?,
    })
}

pub async fn insert_client(c: &mut AnyConnection, cl: &Client) -> Result<()> {
    sqlx::query(
        "INSERT INTO mcp_clients (id, name, redirect_uris, metadata, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(cl.id.clone())
    .bind(cl.name.clone())
    .bind(serde_json::to_string(&cl.redirect_uris).unwrap_or_default())
    .bind(cl.metadata.to_string())
    .bind(ms(cl.created_at))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Stores a client known by its metadata document, or refreshes the stored copy (its
/// name and redirect URIs may have changed since the last fetch).
pub async fn upsert_client(c: &mut AnyConnection, cl: &Client) -> Result<()> {
    sqlx::query(
        "INSERT INTO mcp_clients (id, name, redirect_uris, metadata, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name,
             redirect_uris = excluded.redirect_uris, metadata = excluded.metadata",
    )
    .bind(cl.id.clone())
    .bind(cl.name.clone())
    .bind(serde_json::to_string(&cl.redirect_uris).unwrap_or_default())
    .bind(cl.metadata.to_string())
    .bind(ms(cl.created_at))
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn get_client(c: &mut AnyConnection, id: &str) -> Result<Option<Client>> {
    let r = sqlx::query("SELECT * FROM mcp_clients WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await?;
    r.as_ref().map(client).transpose()
}

/// What a consent grants: this client acts as this agent (of this user) towards this
/// resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub user_id: UserId,
    pub agent_id: AgentId,
    pub resource: String,
    pub scope: Option<String>,
}

/// A one-time authorization code, as stored.
#[derive(Debug, Clone)]
pub struct Code {
    pub id: String,
    pub grant: Grant,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

pub async fn insert_code(
    c: &mut AnyConnection,
    id: &str,
    digest: &TokenDigest,
    grant: &Grant,
    redirect_uri: &str,
    code_challenge: &str,
    expires_at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mcp_codes (id, lookup, hash, client_id, user_id, agent_id, redirect_uri,
             code_challenge, resource, scope, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id.to_string())
    .bind(digest.lookup.clone())
    .bind(digest.hash.clone())
    .bind(grant.client_id.clone())
    .bind(grant.user_id.to_string())
    .bind(grant.agent_id.to_string())
    .bind(redirect_uri.to_string())
    .bind(code_challenge.to_string())
    .bind(grant.resource.clone())
    .bind(grant.scope.clone())
    .bind(now_ms())
    .bind(ms(expires_at))
    .execute(&mut *c)
    .await?;
    Ok(())
}

fn grant(r: &AnyRow) -> Result<Grant> {
    Ok(Grant {
        client_id: text(r, "client_id")?,
        user_id: UserId::from_db(text(r, "user_id")?),
        agent_id: AgentId::from_db(text(r, "agent_id")?),
        resource: text(r, "resource")?,
        scope: opt_text(r, "scope")?,
    })
}

/// The code whose digest matches, used or not (the caller decides and says why).
pub async fn find_code(c: &mut AnyConnection, presented: &TokenDigest) -> Result<Option<Code>> {
    let rows = sqlx::query("SELECT * FROM mcp_codes WHERE lookup = $1")
        .bind(presented.lookup.clone())
        .fetch_all(&mut *c)
        .await?;
    for r in &rows {
        if presented.matches(&text(r, "hash")?) {
            return Ok(Some(Code {
                id: text(r, "id")?,
                grant: grant(r)?,
                redirect_uri: text(r, "redirect_uri")?,
                code_challenge: text(r, "code_challenge")?,
                expires_at: ts(r, "expires_at")?,
                used_at: opt_ts(r, "used_at")?,
            }));
        }
    }
    Ok(None)
}

/// Marks a code used; false when it already was (a second exchange of one code).
pub async fn use_code(c: &mut AnyConnection, id: &str) -> Result<bool> {
    let n = sqlx::query("UPDATE mcp_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn insert_family(c: &mut AnyConnection, id: &str, g: &Grant) -> Result<()> {
    insert_family_of(c, id, g, None).await
}

/// A family, remembering the authorization code it was issued for (when there is one).
pub async fn insert_family_of(
    c: &mut AnyConnection,
    id: &str,
    g: &Grant,
    code_id: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mcp_families (id, client_id, user_id, agent_id, resource, scope, created_at,
             code_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.to_string())
    .bind(g.client_id.clone())
    .bind(g.user_id.to_string())
    .bind(g.agent_id.to_string())
    .bind(g.resource.clone())
    .bind(g.scope.clone())
    .bind(now_ms())
    .bind(code_id.map(str::to_string))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Revokes every live family issued for the code `code_id` (a code presented again);
/// how many were live.
pub async fn revoke_families_of_code(c: &mut AnyConnection, code_id: &str) -> Result<u64> {
    let ids: Vec<String> =
        sqlx::query("SELECT id FROM mcp_families WHERE code_id = $1 AND revoked_at IS NULL")
            .bind(code_id.to_string())
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| text(r, "id"))
            .collect::<Result<_>>()?;
    let mut n = 0;
    for id in &ids {
        if revoke_family(c, id).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Revokes a family and every token in it; true when it was live.
pub async fn revoke_family(c: &mut AnyConnection, id: &str) -> Result<bool> {
    let now = now_ms();
    let n =
        sqlx::query("UPDATE mcp_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *c)
            .await?
            .rows_affected();
    sqlx::query(
        "UPDATE mcp_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id.to_string())
    .execute(&mut *c)
    .await?;
    Ok(n == 1)
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

pub async fn insert_token(
    c: &mut AnyConnection,
    id: &str,
    family_id: &str,
    kind: TokenKind,
    digest: &TokenDigest,
    expires_at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mcp_tokens (id, family_id, kind, lookup, hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(family_id.to_string())
    .bind(kind.as_str())
    .bind(digest.lookup.clone())
    .bind(digest.hash.clone())
    .bind(now_ms())
    .bind(ms(expires_at))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// A presented token that matched, with its family's grant.
#[derive(Debug, Clone)]
pub struct FoundToken {
    pub id: String,
    pub family_id: String,
    pub kind: TokenKind,
    pub grant: Grant,
    /// The client's name (for the audit: "via OAuth client X").
    pub client_name: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// The token's or its family's revocation.
    pub revoked: bool,
}

/// The token whose digest matches, whatever its state (the caller decides).
pub async fn find_token(
    c: &mut AnyConnection,
    presented: &TokenDigest,
) -> Result<Option<FoundToken>> {
    let rows = sqlx::query(
        "SELECT t.id, t.family_id, t.kind, t.hash, t.expires_at, t.used_at,
                t.revoked_at, f.revoked_at AS family_revoked_at, f.client_id, f.user_id,
                f.agent_id, f.resource, f.scope, cl.name AS client_name
         FROM mcp_tokens t
         JOIN mcp_families f ON f.id = t.family_id
         JOIN mcp_clients cl ON cl.id = f.client_id
         WHERE t.lookup = $1",
    )
    .bind(presented.lookup.clone())
    .fetch_all(&mut *c)
    .await?;
    for r in &rows {
        if !presented.matches(&text(r, "hash")?) {
            continue;
        }
        let kind = match text(r, "kind")?.as_str() {
            "access" => TokenKind::Access,
            "refresh" => TokenKind::Refresh,
            k => return Err(StoreError::Corrupt(format!("mcp token kind {k:?}"))),
        };
        return Ok(Some(FoundToken {
            id: text(r, "id")?,
            family_id: text(r, "family_id")?,
            kind,
            grant: grant(r)?,
            client_name: text(r, "client_name")?,
            expires_at: ts(r, "expires_at")?,
            used_at: opt_ts(r, "used_at")?,
            revoked: opt_ts(r, "revoked_at")?.is_some()
                || opt_ts(r, "family_revoked_at")?.is_some(),
        }));
    }
    Ok(None)
}

/// Marks a refresh token used (rotated); false when it already was: a replay.
pub async fn use_token(c: &mut AnyConnection, id: &str) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE mcp_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL
             AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}
