//! OAuth rows: providers, flows in progress, connections and their refresh leases.
//! Connections follow the usual tenancy rule: the owner sees them, admins see all; but
//! only the owner's own agents may ever use one (checked where grants are made and used).

mod flows;
pub use flows::*;

use crate::rows::{int, json, now_ms, opt_int, opt_text, opt_ts, parsed, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::oauth::{Connection, ConnectionStatus, Provider, ProviderKind};
use toolbelt_model::{
    AgentId, ConnectionId, Name, Page, ProviderId, Scope, ServerId, Timestamp, UserId, ts_from_ms,
};

fn provider(r: &AnyRow) -> Result<Provider> {
    Ok(Provider {
        id: ProviderId::from_db(text(r, "id")?),
        name: Name::from_db(text(r, "name")?),
        kind: parsed(r, "kind", ProviderKind::parse)?,
        issuer: opt_text(r, "issuer")?,
        authorization_endpoint: text(r, "authorization_endpoint")?,
        token_endpoint: text(r, "token_endpoint")?,
        revocation_endpoint: opt_text(r, "revocation_endpoint")?,
        client_id: text(r, "client_id")?,
        client_secret_id: opt_text(r, "client_secret_id")?,
        default_scopes: json(r, "default_scopes")?,
        created_at: ts(r, "created_at")?,
    })
}

pub struct NewProvider<'a> {
    pub name: &'a Name,
    pub kind: ProviderKind,
    pub issuer: Option<&'a str>,
    pub authorization_endpoint: &'a str,
    pub token_endpoint: &'a str,
    pub revocation_endpoint: Option<&'a str>,
    pub client_id: &'a str,
    pub client_secret_id: Option<&'a str>,
    pub default_scopes: &'a [String],
}

pub async fn create_provider(c: &mut AnyConnection, p: NewProvider<'_>) -> Result<Provider> {
    let r = sqlx::query(
        "INSERT INTO oauth_providers (id, name, kind, issuer, authorization_endpoint,
             token_endpoint, revocation_endpoint, client_id, client_secret_id, default_scopes,
             created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
    )
    .bind(ProviderId::generate().to_string())
    .bind(p.name.to_string())
    .bind(p.kind.as_str())
    .bind(p.issuer.map(str::to_string))
    .bind(p.authorization_endpoint.to_string())
    .bind(p.token_endpoint.to_string())
    .bind(p.revocation_endpoint.map(str::to_string))
    .bind(p.client_id.to_string())
    .bind(p.client_secret_id.map(str::to_string))
    .bind(serde_json::to_string(p.default_scopes).expect("strings serialise"))
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| conflict(e, || format!("a provider named {} already exists", p.name)))?;
    provider(&r)
}

/// By id or name. Providers are visible to every user (they hold no secret).
pub async fn get_provider(c: &mut AnyConnection, key: &str) -> Result<Provider> {
    sqlx::query("SELECT * FROM oauth_providers WHERE id = $1 OR name = $1")
        .bind(key.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)
        .and_then(|r| provider(&r))
}

pub async fn list_providers(c: &mut AnyConnection) -> Result<Vec<Provider>> {
    let rows = sqlx::query("SELECT * FROM oauth_providers ORDER BY name")
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(provider).collect()
}

/// The vault secrets holding tokens of a provider's connections (to delete with it).
pub async fn token_secrets_of_provider(
    c: &mut AnyConnection,
    id: &ProviderId,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT token_secret_id FROM oauth_connections
         WHERE provider_id = $1 AND token_secret_id IS NOT NULL",
    )
    .bind(id.to_string())
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(|r| text(r, "token_secret_id")).collect()
}

/// Deletes a provider and (by cascade) its flows and connections.
pub async fn delete_provider(c: &mut AnyConnection, id: &ProviderId) -> Result<()> {
    let n = sqlx::query("DELETE FROM oauth_providers WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn connection(r: &AnyRow) -> Result<Connection> {
    Ok(Connection {
        id: ConnectionId::from_db(text(r, "id")?),
        owner_id: UserId::from_db(text(r, "owner_id")?),
        provider_id: ProviderId::from_db(text(r, "provider_id")?),
        provider: Name::from_db(text(r, "provider_name")?),
        status: parsed(r, "status", ConnectionStatus::parse)?,
        scopes: json(r, "scopes")?,
        expires_at: opt_ts(r, "expires_at")?,
        has_refresh_token: int(r, "has_refresh")? != 0,
        last_refresh_at: opt_ts(r, "last_refresh_at")?,
        last_used_at: opt_ts(r, "last_used_at")?,
        last_error: opt_text(r, "last_error")?,
        refresh_failures: int(r, "refresh_failures")?,
        next_refresh_at: opt_int(r, "next_refresh_at")?.map(ts_from_ms),
        token_secret_id: opt_text(r, "token_secret_id")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

/// Connection rows with their provider's name (a literal, so queries stay `&'static str`).
macro_rules! select {
    () => {
        "SELECT c.*, p.name AS provider_name FROM oauth_connections c
         JOIN oauth_providers p ON p.id = c.provider_id "
    };
}

pub struct NewConnection<'a> {
    pub id: &'a ConnectionId,
    pub owner_id: &'a UserId,
    pub provider_id: &'a ProviderId,
    pub scopes: &'a [String],
    pub token_secret_id: &'a str,
    pub has_refresh: bool,
    pub expires_at: Option<Timestamp>,
    pub next_refresh_at: Option<Timestamp>,
}

pub async fn insert_connection(c: &mut AnyConnection, n: NewConnection<'_>) -> Result<Connection> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO oauth_connections (id, owner_id, provider_id, status, scopes,
             token_secret_id, has_refresh, expires_at, last_refresh_at, refresh_failures,
             next_refresh_at, created_at, updated_at)
         VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, NULL, 0, $8, $9, $9)",
    )
    .bind(n.id.to_string())
    .bind(n.owner_id.to_string())
    .bind(n.provider_id.to_string())
    .bind(serde_json::to_string(n.scopes).expect("strings serialise"))
    .bind(n.token_secret_id.to_string())
    .bind(i64::from(n.has_refresh))
    .bind(n.expires_at.map(|t| t.timestamp_millis()))
    .bind(n.next_refresh_at.map(|t| t.timestamp_millis()))
    .bind(now)
    .execute(&mut *c)
    .await?;
    get_connection_internal(c, n.id).await
}

/// Puts a re-authorization's new tokens on an existing connection of the same owner and
/// provider: active again, its failures and lease cleared, its id (and so its grants) kept.
/// False when the connection is gone (revoked while the user was at the provider).
pub async fn reauthorize(c: &mut AnyConnection, n: NewConnection<'_>) -> Result<bool> {
    let affected = sqlx::query(
        "UPDATE oauth_connections SET status = 'active', scopes = $1, token_secret_id = $2,
             has_refresh = $3, expires_at = $4, next_refresh_at = $5, last_error = NULL,
             refresh_failures = 0, lease_owner = NULL, lease_until = NULL, updated_at = $6
         WHERE id = $7 AND owner_id = $8 AND provider_id = $9",
    )
    .bind(serde_json::to_string(n.scopes).expect("strings serialise"))
    .bind(n.token_secret_id.to_string())
    .bind(i64::from(n.has_refresh))
    .bind(n.expires_at.map(|t| t.timestamp_millis()))
    .bind(n.next_refresh_at.map(|t| t.timestamp_millis()))
    .bind(now_ms())
    .bind(n.id.to_string())
    .bind(n.owner_id.to_string())
    .bind(n.provider_id.to_string())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(affected == 1)
}

/// A connection visible to `scope` (its owner; admins see all).
pub async fn get_connection(
    c: &mut AnyConnection,
    scope: &Scope,
    id: &ConnectionId,
) -> Result<Connection> {
    sqlx::query(concat!(
        select!(),
        "WHERE c.id = $1 AND (c.owner_id = $2 OR $3 = 1)"
    ))
    .bind(id.to_string())
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)
    .and_then(|r| connection(&r))
}

/// For the refresher and the gateway, which check ownership themselves.
pub async fn get_connection_internal(
    c: &mut AnyConnection,
    id: &ConnectionId,
) -> Result<Connection> {
    sqlx::query(concat!(select!(), "WHERE c.id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)
        .and_then(|r| connection(&r))
}

pub async fn list_connections(
    c: &mut AnyConnection,
    scope: &Scope,
    limit: u32,
    after: Option<&str>,
) -> Result<Page<Connection>> {
    let rows = sqlx::query(concat!(
        select!(),
        "WHERE ($1 IS NULL OR c.id > $1) AND (c.owner_id = $2 OR $3 = 1)
         ORDER BY c.id LIMIT $4"
    ))
    .bind(after.map(str::to_string))
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *c)
    .await?;
    let items = rows.iter().map(connection).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, limit, |x| x.id.to_string()))
}

pub async fn delete_connection(c: &mut AnyConnection, id: &ConnectionId) -> Result<()> {
    sqlx::query("DELETE FROM oauth_connections WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Connections whose refresh is due and whose lease is free, soonest first.
pub async fn due(c: &mut AnyConnection, now: Timestamp, limit: u32) -> Result<Vec<ConnectionId>> {
    let now = now.timestamp_millis();
    let rows = sqlx::query(
        "SELECT id FROM oauth_connections
         WHERE status = 'active' AND has_refresh = 1 AND next_refresh_at <= $1
           AND (lease_until IS NULL OR lease_until < $1)
         ORDER BY next_refresh_at LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| text(r, "id").map(ConnectionId::from_db))
        .collect()
}

/// Takes the refresh lease of a connection until `until`, if nobody holds it (and, with
/// `only_if_due`, if it is still due: another replica may have refreshed it since it was
/// listed). Exactly one replica wins: the conditional UPDATE is atomic on both backends.
pub async fn acquire_lease(
    c: &mut AnyConnection,
    id: &ConnectionId,
    owner: &str,
    until: Timestamp,
    only_if_due: bool,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE oauth_connections SET lease_owner = $1, lease_until = $2
         WHERE id = $3 AND status = 'active' AND (lease_until IS NULL OR lease_until < $4)
           AND ($5 = 0 OR next_refresh_at <= $4)",
    )
    .bind(owner.to_string())
    .bind(until.timestamp_millis())
    .bind(id.to_string())
    .bind(now_ms())
    .bind(i64::from(only_if_due))
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// What a refresh attempt came to; every variant releases the lease.
pub enum RefreshOutcome<'a> {
    Refreshed {
        token_secret_id: &'a str,
        has_refresh: bool,
        expires_at: Option<Timestamp>,
        scopes: Option<&'a [String]>,
        next_refresh_at: Option<Timestamp>,
    },
    /// A transient failure (network, 5xx): retry at `retry_at`.
    Retry { error: &'a str, retry_at: Timestamp },
    /// The provider refused the refresh token: the user must reconnect.
    NeedsReauth { error: &'a str },
}

/// Applies a refresh outcome, only while `lease_owner` still holds the lease.
pub async fn record_refresh(
    c: &mut AnyConnection,
    id: &ConnectionId,
    lease_owner: &str,
    outcome: RefreshOutcome<'_>,
) -> Result<bool> {
    let now = now_ms();
    let q = match outcome {
        RefreshOutcome::Refreshed {
            token_secret_id,
            has_refresh,
            expires_at,
            scopes,
            next_refresh_at,
        } => sqlx::query(
            "UPDATE oauth_connections SET token_secret_id = $1, has_refresh = $2,
                 expires_at = $3, scopes = COALESCE($4, scopes), next_refresh_at = $5,
                 last_refresh_at = $6, last_error = NULL, refresh_failures = 0,
                 lease_owner = NULL, lease_until = NULL, updated_at = $6
             WHERE id = $7 AND lease_owner = $8",
        )
        .bind(token_secret_id.to_string())
        .bind(i64::from(has_refresh))
        .bind(expires_at.map(|t| t.timestamp_millis()))
        .bind(scopes.map(|s| serde_json::to_string(s).expect("strings serialise")))
        .bind(next_refresh_at.map(|t| t.timestamp_millis()))
        .bind(now),
        RefreshOutcome::Retry { error, retry_at } => sqlx::query(
            "UPDATE oauth_connections SET last_error = $1, refresh_failures = refresh_failures + 1,
                 next_refresh_at = $2, lease_owner = NULL, lease_until = NULL, updated_at = $3
             WHERE id = $4 AND lease_owner = $5",
        )
        .bind(error.to_string())
        .bind(retry_at.timestamp_millis())
        .bind(now),
        RefreshOutcome::NeedsReauth { error } => sqlx::query(
            "UPDATE oauth_connections SET status = 'needs_reauth', last_error = $1,
                 refresh_failures = refresh_failures + 1, next_refresh_at = NULL,
                 lease_owner = NULL, lease_until = NULL, updated_at = $2
             WHERE id = $3 AND lease_owner = $4",
        )
        .bind(error.to_string())
        .bind(now),
    };
    let n = q
        .bind(id.to_string())
        .bind(lease_owner.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Marks a connection `needs_reauth` outside a refresh (the provider rejected its token).
pub async fn mark_needs_reauth(
    c: &mut AnyConnection,
    id: &ConnectionId,
    error: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE oauth_connections SET status = 'needs_reauth', last_error = $1,
             next_refresh_at = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(error.to_string())
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn touch_used(c: &mut AnyConnection, id: &ConnectionId) -> Result<()> {
    sqlx::query("UPDATE oauth_connections SET last_used_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The connection an agent may use through a server: an explicit grant for that server
/// first, else a grant without a server whose provider the server asks for. Only the
/// agent owner's own connections qualify, whatever the grant rows say.
pub async fn for_agent_server(
    c: &mut AnyConnection,
    agent: &AgentId,
    server: &ServerId,
    provider: Option<&str>,
) -> Result<Option<Connection>> {
    let r = sqlx::query(concat!(
        select!(),
        "JOIN grants g ON g.connection_id = c.id AND g.kind = 'connection'
         JOIN agents a ON a.id = g.agent_id AND a.owner_id = c.owner_id
         WHERE g.agent_id = $1 AND g.active = 1
           AND (g.server_id = $2 OR (g.server_id IS NULL AND p.name = $3))
         ORDER BY CASE WHEN g.server_id IS NULL THEN 1 ELSE 0 END, g.id LIMIT 1"
    ))
    .bind(agent.to_string())
    .bind(server.to_string())
    .bind(provider.map(str::to_string))
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| connection(&r)).transpose()
}

/// `conn_id` if it is active and its owner granted it for `server`: by a connection
/// grant naming that server, or by a provider-wide one (no server) of an agent that is
/// itself granted the server (a server, toolbox or tool grant) — what discovery may list
/// the server's tools with. Only the agent owner's own connection counts, and only for a
/// server that owner can see. Any other server never receives the token.
pub async fn for_discovery(
    c: &mut AnyConnection,
    server: &ServerId,
    conn_id: &ConnectionId,
    provider: &str,
) -> Result<Option<Connection>> {
    let r = sqlx::query(concat!(
        select!(),
        "JOIN grants g ON g.connection_id = c.id AND g.kind = 'connection'
         JOIN agents a ON a.id = g.agent_id AND a.owner_id = c.owner_id
         JOIN users u ON u.id = a.owner_id
         JOIN servers s ON s.id = $1
         WHERE c.id = $2 AND c.status = 'active' AND g.active = 1
           AND (s.owner_id IS NULL OR s.owner_id = a.owner_id OR u.role = 'admin')
           AND (g.server_id = s.id OR (g.server_id IS NULL AND p.name = $3 AND EXISTS (
                SELECT 1 FROM grants r WHERE r.agent_id = a.id AND (
                    (r.kind = 'server' AND r.server_id = s.id AND r.active = 1)
                    OR (r.kind = 'toolbox' AND r.toolbox_id = s.toolbox_id)
                    OR (r.kind = 'tool' AND r.server_id = s.id AND r.rule <> 'deny')))))
         LIMIT 1"
    ))
    .bind(server.to_string())
    .bind(conn_id.to_string())
    .bind(provider.to_string())
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| connection(&r)).transpose()
}

/// An agent's active connection grants on its owner's own connections, oldest first:
/// (connection, the server it is granted for or None for every server of the provider,
/// the provider's name). What the gateway resolves per server as [`for_agent_server`] does.
pub async fn agent_connection_grants(
    c: &mut AnyConnection,
    agent: &AgentId,
) -> Result<Vec<(ConnectionId, Option<ServerId>, String)>> {
    let rows = sqlx::query(
        "SELECT c.id AS connection_id, g.server_id, p.name AS provider_name
         FROM grants g
         JOIN oauth_connections c ON c.id = g.connection_id
         JOIN oauth_providers p ON p.id = c.provider_id
         JOIN agents a ON a.id = g.agent_id AND a.owner_id = c.owner_id
         WHERE g.agent_id = $1 AND g.kind = 'connection' AND g.active = 1
         ORDER BY g.id",
    )
    .bind(agent.to_string())
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                ConnectionId::from_db(text(r, "connection_id")?),
                opt_text(r, "server_id")?.map(ServerId::from_db),
                text(r, "provider_name")?,
            ))
        })
        .collect()
}

/// A user's newest active connection to a provider (by name): what a server serving only
/// that user gets at deploy.
pub async fn active_for_owner(
    c: &mut AnyConnection,
    owner: &UserId,
    provider: &str,
) -> Result<Option<Connection>> {
    let r = sqlx::query(concat!(
        select!(),
        "WHERE c.owner_id = $1 AND p.name = $2 AND c.status = 'active' ORDER BY c.id DESC LIMIT 1"
    ))
    .bind(owner.to_string())
    .bind(provider.to_string())
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| connection(&r)).transpose()
}
