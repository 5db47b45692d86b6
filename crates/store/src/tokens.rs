//! Issued tokens of every kind, stored as digests.

use crate::rows::{ms, now_ms, opt_text, opt_ts, parsed, text, ts};
use crate::{Result, StoreError};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::agent::{Discovery, TokenInfo};
use toolbelt_model::token::{TokenDigest, TokenKind};
use toolbelt_model::{AgentId, ChatId, Role, Timestamp, TokenId, ToolboxId, UserId};

/// Whom a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(UserId),
    Agent(AgentId),
    Toolbox(ToolboxId),
}

/// A presented token that matched: its subject and what the caller needs to authorise.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: TokenId,
    pub kind: TokenKind,
    pub subject: Subject,
    /// The user's role (user tokens) — read in the same query, never stale.
    pub role: Option<Role>,
    /// The agent's owner (agent tokens).
    pub agent_owner: Option<UserId>,
    /// The discovery mode an agent token overrides its agent's with.
    pub discovery: Option<Discovery>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// A chat turn's minted agent credential: the chat it acts for.
    pub chat_id: Option<ChatId>,
}

fn info(r: &AnyRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: TokenId::from_db(text(r, "id")?),
        kind: parsed(r, "kind", TokenKind::parse)?,
        label: text(r, "label")?,
        discovery: opt_text(r, "discovery")?.and_then(|d| Discovery::parse(&d)),
        created_at: ts(r, "created_at")?,
        expires_at: opt_ts(r, "expires_at")?,
        revoked_at: opt_ts(r, "revoked_at")?,
        last_used_at: opt_ts(r, "last_used_at")?,
    })
}

pub async fn insert(
    c: &mut AnyConnection,
    kind: TokenKind,
    digest: &TokenDigest,
    subject: &Subject,
    label: &str,
    expires_at: Option<Timestamp>,
) -> Result<TokenInfo> {
    let (u, a, t) = match subject {
        Subject::User(u) => (Some(u.to_string()), None, None),
        Subject::Agent(a) => (None, Some(a.to_string()), None),
        Subject::Toolbox(t) => (None, None, Some(t.to_string())),
    };
    let r = sqlx::query(
        "INSERT INTO tokens (id, kind, lookup, hash, user_id, agent_id, toolbox_id, label,
             created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
    )
    .bind(TokenId::generate().to_string())
    .bind(kind.as_str())
    .bind(digest.lookup.clone())
    .bind(digest.hash.clone())
    .bind(u)
    .bind(a)
    .bind(t)
    .bind(label.to_string())
    .bind(now_ms())
    .bind(expires_at.map(ms))
    .fetch_one(&mut *c)
    .await?;
    info(&r)
}

/// A chat turn's agent credential: an agent token marked with the chat it acts for,
/// expiring at `expires_at` (and deleted by [`delete_chat_token`] when the turn ends).
pub async fn insert_chat_token(
    c: &mut AnyConnection,
    digest: &TokenDigest,
    agent: &AgentId,
    chat: &ChatId,
    discovery: Option<Discovery>,
    expires_at: Timestamp,
) -> Result<TokenId> {
    let id = TokenId::generate();
    sqlx::query(
        "INSERT INTO tokens (id, kind, lookup, hash, agent_id, label, created_at, expires_at,
             discovery, chat_id)
         VALUES ($1, $2, $3, $4, $5, 'chat turn', $6, $7, $8, $9)",
    )
    .bind(id.to_string())
    .bind(TokenKind::Agent.as_str())
    .bind(digest.lookup.clone())
    .bind(digest.hash.clone())
    .bind(agent.to_string())
    .bind(now_ms())
    .bind(ms(expires_at))
    .bind(discovery.map(|d| d.as_str()))
    .bind(chat.to_string())
    .execute(&mut *c)
    .await?;
    Ok(id)
}

/// Deletes a chat turn's credential, and any of that agent's that outlived their turn.
pub async fn delete_chat_token(c: &mut AnyConnection, agent: &AgentId, id: &TokenId) -> Result<()> {
    sqlx::query(
        "DELETE FROM tokens WHERE agent_id = $1 AND chat_id IS NOT NULL
             AND (id = $2 OR expires_at < $3)",
    )
    .bind(agent.to_string())
    .bind(id.to_string())
    .bind(now_ms())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Finds the token whose digest matches (constant-time comparison of the full digest).
/// Revoked and expired tokens are returned too: the caller decides, and says why.
pub async fn find(c: &mut AnyConnection, presented: &TokenDigest) -> Result<Option<Found>> {
    let rows = sqlx::query(
        "SELECT t.*, u.role AS user_role, a.owner_id AS agent_owner
         FROM tokens t
         LEFT JOIN users u ON u.id = t.user_id
         LEFT JOIN agents a ON a.id = t.agent_id
         WHERE t.lookup = $1",
    )
    .bind(presented.lookup.clone())
    .fetch_all(&mut *c)
    .await?;
    for r in &rows {
        if !presented.matches(&text(r, "hash")?) {
            continue;
        }
        let subject = if let Some(u) = opt_text(r, "user_id")? {
            Subject::User(UserId::from_db(u))
        } else if let Some(a) = opt_text(r, "agent_id")? {
            Subject::Agent(AgentId::from_db(a))
        } else if let Some(t) = opt_text(r, "toolbox_id")? {
            Subject::Toolbox(ToolboxId::from_db(t))
        } else {
            return Err(StoreError::Corrupt("token without subject".into()));
        };
        return Ok(Some(Found {
            id: TokenId::from_db(text(r, "id")?),
            kind: parsed(r, "kind", TokenKind::parse)?,
            subject,
            role: opt_text(r, "user_role")?.and_then(|s| Role::parse(&s)),
            agent_owner: opt_text(r, "agent_owner")?.map(UserId::from_db),
            discovery: opt_text(r, "discovery")?.and_then(|d| Discovery::parse(&d)),
            expires_at: opt_ts(r, "expires_at")?,
            revoked_at: opt_ts(r, "revoked_at")?,
            last_used_at: opt_ts(r, "last_used_at")?,
            chat_id: opt_text(r, "chat_id")?.map(ChatId::from_db),
        }));
    }
    Ok(None)
}

/// Records use, at most once a minute per token so the hot path stays read-only.
pub async fn touch(c: &mut AnyConnection, id: &TokenId) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "UPDATE tokens SET last_used_at = $1
         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(now - 60_000)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Marks a one-time token used. False when it was already used or revoked.
pub async fn consume(c: &mut AnyConnection, id: &TokenId) -> Result<bool> {
    let n = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Revokes one token of `subject`. `NotFound` when it is not that subject's.
pub async fn revoke(c: &mut AnyConnection, subject: &Subject, id: &TokenId) -> Result<TokenInfo> {
    let (col, sid) = subject_col(subject);
    let sql = match col {
        "user_id" => {
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND user_id = $3 RETURNING *"
        }
        "agent_id" => {
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND agent_id = $3 RETURNING *"
        }
        _ => {
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND toolbox_id = $3 RETURNING *"
        }
    };
    let r = sqlx::query(sql)
        .bind(now_ms())
        .bind(id.to_string())
        .bind(sid)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    info(&r)
}

/// Revokes every live token of `subject` of the given kind; returns how many.
pub async fn revoke_all(c: &mut AnyConnection, subject: &Subject, kind: TokenKind) -> Result<u64> {
    let (col, sid) = subject_col(subject);
    let sql = match col {
        "user_id" => {
            "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND kind = $3 AND revoked_at IS NULL"
        }
        "agent_id" => {
            "UPDATE tokens SET revoked_at = $1 WHERE agent_id = $2 AND kind = $3 AND revoked_at IS NULL"
        }
        _ => {
            "UPDATE tokens SET revoked_at = $1 WHERE toolbox_id = $2 AND kind = $3 AND revoked_at IS NULL"
        }
    };
    Ok(sqlx::query(sql)
        .bind(now_ms())
        .bind(sid)
        .bind(kind.as_str())
        .execute(&mut *c)
        .await?
        .rows_affected())
}

pub async fn list(
    c: &mut AnyConnection,
    subject: &Subject,
    kind: TokenKind,
) -> Result<Vec<TokenInfo>> {
    let (col, sid) = subject_col(subject);
    let sql = match col {
        "user_id" => "SELECT * FROM tokens WHERE user_id = $1 AND kind = $2 ORDER BY id",
        // A chat turn's credential lives for one turn and is nobody's to manage.
        "agent_id" => {
            "SELECT * FROM tokens WHERE agent_id = $1 AND kind = $2 AND chat_id IS NULL ORDER BY id"
        }
        _ => "SELECT * FROM tokens WHERE toolbox_id = $1 AND kind = $2 ORDER BY id",
    };
    let rows = sqlx::query(sql)
        .bind(sid)
        .bind(kind.as_str())
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(info).collect()
}

fn subject_col(s: &Subject) -> (&'static str, String) {
    match s {
        Subject::User(u) => ("user_id", u.to_string()),
        Subject::Agent(a) => ("agent_id", a.to_string()),
        Subject::Toolbox(t) => ("toolbox_id", t.to_string()),
    }
}
