//! Flows in progress: from the start URL to the provider's callback.

use crate::rows::{json, now_ms, opt_text, text, ts};
use crate::{Result, StoreError};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::{ConnectionId, FlowId, ProviderId, Timestamp, UserId};

/// A flow between its start and its callback.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: FlowId,
    pub owner_id: UserId,
    pub provider_id: ProviderId,
    pub session_digest: Option<String>,
    pub scopes: Vec<String>,
    pub verifier: String,
    pub redirect_uri: String,
    pub login_hint: Option<String>,
    pub connection_id: Option<ConnectionId>,
    /// The connection this flow re-authorizes (same id, grants and token secret kept).
    pub reconnects: Option<ConnectionId>,
    pub error: Option<String>,
    pub expires_at: Timestamp,
}

fn flow(r: &AnyRow) -> Result<Flow> {
    Ok(Flow {
        id: FlowId::from_db(text(r, "id")?),
        owner_id: UserId::from_db(text(r, "owner_id")?),
        provider_id: ProviderId::from_db(text(r, "provider_id")?),
        session_digest: opt_text(r, "session_digest")?,
        scopes: json(r, "scopes")?,
        verifier: text(r, "verifier")?,
        redirect_uri: text(r, "redirect_uri")?,
        login_hint: opt_text(r, "login_hint")?,
        connection_id: opt_text(r, "connection_id")?.map(ConnectionId::from_db),
        reconnects: opt_text(r, "reconnects")?.map(ConnectionId::from_db),
        error: opt_text(r, "error")?,
        expires_at: ts(r, "expires_at")?,
    })
}

pub struct NewFlow<'a> {
    pub owner_id: &'a UserId,
    pub provider_id: &'a ProviderId,
    pub state_digest: &'a str,
    pub session_digest: Option<&'a str>,
    pub scopes: &'a [String],
    pub verifier: &'a str,
    pub redirect_uri: &'a str,
    pub login_hint: Option<&'a str>,
    pub reconnects: Option<&'a ConnectionId>,
    pub expires_at: Timestamp,
}

pub async fn insert_flow(c: &mut AnyConnection, f: NewFlow<'_>) -> Result<Flow> {
    let r = sqlx::query(
        "INSERT INTO oauth_flows (id, state_digest, owner_id, provider_id, session_digest,
             scopes, verifier, redirect_uri, login_hint, expires_at, created_at, reconnects)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *",
    )
    .bind(FlowId::generate().to_string())
    .bind(f.state_digest.to_string())
    .bind(f.owner_id.to_string())
    .bind(f.provider_id.to_string())
    .bind(f.session_digest.map(str::to_string))
    .bind(serde_json::to_string(f.scopes).expect("strings serialise"))
    .bind(f.verifier.to_string())
    .bind(f.redirect_uri.to_string())
    .bind(f.login_hint.map(str::to_string))
    .bind(f.expires_at.timestamp_millis())
    .bind(now_ms())
    .bind(f.reconnects.map(|c| c.to_string()))
    .fetch_one(&mut *c)
    .await?;
    flow(&r)
}

/// The caller's own flow (flows are never anyone else's business, admins included).
pub async fn get_flow(c: &mut AnyConnection, owner: &UserId, id: &FlowId) -> Result<Flow> {
    sqlx::query("SELECT * FROM oauth_flows WHERE id = $1 AND owner_id = $2")
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)
        .and_then(|r| flow(&r))
}

/// Takes the flow a callback's `state` names: deletes its state digest so the same state
/// can never complete twice (a replay finds nothing), and returns it.
pub async fn take_flow_by_state(c: &mut AnyConnection, state_digest: &str) -> Result<Flow> {
    let r = sqlx::query(
        "UPDATE oauth_flows SET state_digest = 'used:' || id
         WHERE state_digest = $1 RETURNING *",
    )
    .bind(state_digest.to_string())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    flow(&r)
}

/// Binds a flow to the dashboard session that opened its start URL (once).
pub async fn bind_flow(c: &mut AnyConnection, id: &FlowId, session_digest: &str) -> Result<()> {
    let n = sqlx::query(
        "UPDATE oauth_flows SET session_digest = $1
         WHERE id = $2 AND (session_digest IS NULL OR session_digest = $1)",
    )
    .bind(session_digest.to_string())
    .bind(id.to_string())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::Conflict(
            "this flow is bound to another browser session".into(),
        ));
    }
    Ok(())
}

/// Sets the digest of the state a flow's authorization request carries (minted when the
/// browser opens the start URL).
pub async fn set_flow_state(c: &mut AnyConnection, id: &FlowId, state_digest: &str) -> Result<()> {
    sqlx::query("UPDATE oauth_flows SET state_digest = $1 WHERE id = $2")
        .bind(state_digest.to_string())
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Records how a flow ended; the verifier is wiped, the row stays until it expires so the
/// CLI that started it can read the outcome.
pub async fn finish_flow(
    c: &mut AnyConnection,
    id: &FlowId,
    connection: Option<&ConnectionId>,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE oauth_flows SET verifier = '', connection_id = $1, error = $2 WHERE id = $3",
    )
    .bind(connection.map(|c| c.to_string()))
    .bind(error.map(str::to_string))
    .bind(id.to_string())
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn purge_expired_flows(c: &mut AnyConnection) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM oauth_flows WHERE expires_at < $1")
        .bind(now_ms())
        .execute(&mut *c)
        .await?
        .rows_affected())
}
