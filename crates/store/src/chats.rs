//! Conversations: one user's with one agent, strictly the owner's (admins included: a
//! transcript holds tool results, personal data). Turns are stored sealed (the vault seals
//! them; nothing here sees a plaintext), one row per finished turn. Daily token usage per
//! user for the chat budget.

use crate::rows::{int, now_ms, text, ts};
use crate::secrets::Sealed;
use crate::{Result, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use toolbelt_model::chat::{Chat, Usage};
use toolbelt_model::{AgentId, ChatId, UserId};

fn chat(r: &AnyRow) -> Result<Chat> {
    Ok(Chat {
        id: ChatId::from_db(text(r, "id")?),
        agent: text(r, "agent_name")?,
        agent_id: AgentId::from_db(text(r, "agent_id")?),
        owner_id: UserId::from_db(text(r, "owner_id")?),
        turns: int(r, "turns")?.max(0) as u32,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub async fn create(c: &mut AnyConnection, owner: &UserId, agent: &AgentId) -> Result<Chat> {
    let id = ChatId::generate();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO chats (id, owner_id, agent_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id.to_string())
    .bind(owner.to_string())
    .bind(agent.to_string())
    .bind(now)
    .execute(&mut *c)
    .await?;
    get(c, owner, &id).await
}

/// The owner's chat; `NotFound` for anyone else's.
pub async fn get(c: &mut AnyConnection, owner: &UserId, id: &ChatId) -> Result<Chat> {
    let r = sqlx::query(
        "SELECT c.*, a.name AS agent_name,
             (SELECT COUNT(*) FROM chat_turns t WHERE t.chat_id = c.id) AS turns
         FROM chats c JOIN agents a ON a.id = c.agent_id
         WHERE c.id = $1 AND c.owner_id = $2",
    )
    .bind(id.to_string())
    .bind(owner.to_string())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    chat(&r)
}

/// The owner's chats, newest first.
pub async fn list(c: &mut AnyConnection, owner: &UserId) -> Result<Vec<Chat>> {
    let rows = sqlx::query(
        "SELECT c.*, a.name AS agent_name,
             (SELECT COUNT(*) FROM chat_turns t WHERE t.chat_id = c.id) AS turns
         FROM chats c JOIN agents a ON a.id = c.agent_id
         WHERE c.owner_id = $1 ORDER BY c.id DESC LIMIT 1000",
    )
    .bind(owner.to_string())
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(chat).collect()
}

pub async fn delete(c: &mut AnyConnection, owner: &UserId, id: &ChatId) -> Result<Chat> {
    let ch = get(c, owner, id).await?;
    sqlx::query("DELETE FROM chats WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(ch)
}

/// A stored turn, still sealed.
#[derive(Debug, Clone)]
pub struct SealedTurn {
    pub seq: i64,
    pub sealed: Sealed,
    pub usage: Usage,
}

fn bytes(r: &AnyRow, col: &str) -> Result<Vec<u8>> {
    r.try_get::<Vec<u8>, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// The sequence number the next turn of the chat gets.
pub async fn next_seq(c: &mut AnyConnection, chat: &ChatId) -> Result<i64> {
    let n: Option<i64> = sqlx::query("SELECT MAX(seq) AS m FROM chat_turns WHERE chat_id = $1")
        .bind(chat.to_string())
        .fetch_one(&mut *c)
        .await?
        .try_get("m")
        .map_err(|e| StoreError::Corrupt(format!("seq: {e}")))?;
    Ok(n.map_or(1, |n| n + 1))
}

/// Appends a finished turn; a `Conflict` when another turn took `seq` meanwhile.
pub async fn insert_turn(
    c: &mut AnyConnection,
    chat: &ChatId,
    seq: i64,
    sealed: &Sealed,
    usage: Usage,
) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO chat_turns (chat_id, seq, nonce, ciphertext, wrapped_key, kek_id,
             input_tokens, output_tokens, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(chat.to_string())
    .bind(seq)
    .bind(sealed.nonce.clone())
    .bind(sealed.ciphertext.clone())
    .bind(sealed.wrapped_key.clone())
    .bind(sealed.kek_id.clone())
    .bind(usage.input_tokens as i64)
    .bind(usage.output_tokens as i64)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(|e| crate::conflict(e, || "another turn of this chat finished first".into()))?;
    sqlx::query("UPDATE chats SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(chat.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Every turn of the chat, in order (the caller has checked the chat is theirs).
pub async fn turns(c: &mut AnyConnection, chat: &ChatId) -> Result<Vec<SealedTurn>> {
    let rows = sqlx::query("SELECT * FROM chat_turns WHERE chat_id = $1 ORDER BY seq")
        .bind(chat.to_string())
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SealedTurn {
                seq: int(r, "seq")?,
                sealed: Sealed {
                    nonce: bytes(r, "nonce")?,
                    ciphertext: bytes(r, "ciphertext")?,
                    wrapped_key: bytes(r, "wrapped_key")?,
                    kek_id: text(r, "kek_id")?,
                },
                usage: Usage {
                    input_tokens: int(r, "input_tokens")?.max(0) as u64,
                    output_tokens: int(r, "output_tokens")?.max(0) as u64,
                },
            })
        })
        .collect()
}

/// Tokens the user's LLM calls used on `day` (unix days, UTC).
pub async fn usage(c: &mut AnyConnection, user: &UserId, day: i64) -> Result<u64> {
    let r = sqlx::query("SELECT tokens FROM chat_usage WHERE user_id = $1 AND day = $2")
        .bind(user.to_string())
        .bind(day)
        .fetch_optional(&mut *c)
        .await?;
    Ok(match r {
        Some(r) => int(&r, "tokens")?.max(0) as u64,
        None => 0,
    })
}

/// Adds `tokens` to the user's count for `day`.
pub async fn add_usage(c: &mut AnyConnection, user: &UserId, day: i64, tokens: u64) -> Result<()> {
    let n =
        sqlx::query("UPDATE chat_usage SET tokens = tokens + $1 WHERE user_id = $2 AND day = $3")
            .bind(tokens as i64)
            .bind(user.to_string())
            .bind(day)
            .execute(&mut *c)
            .await?
            .rows_affected();
    if n == 0 {
        let ins = sqlx::query("INSERT INTO chat_usage (user_id, day, tokens) VALUES ($1, $2, $3)")
            .bind(user.to_string())
            .bind(day)
            .bind(tokens as i64)
            .execute(&mut *c)
            .await;
        if let Err(e) = ins {
            // Another writer inserted the row first: add to it.
            match crate::conflict(e, String::new) {
                StoreError::Conflict(_) => {
                    sqlx::query(
                        "UPDATE chat_usage SET tokens = tokens + $1 WHERE user_id = $2 AND day = $3",
                    )
                    .bind(tokens as i64)
                    .bind(user.to_string())
                    .bind(day)
                    .execute(&mut *c)
                    .await?;
                }
                e => return Err(e),
            }
        }
    }
    Ok(())
}

/// A turn's wrapped data key, with what its binding needs: for key rotation.
#[derive(Debug, Clone)]
pub struct TurnKey {
    pub chat_id: ChatId,
    pub owner_id: UserId,
    pub seq: i64,
    pub kek_id: String,
    pub wrapped_key: Vec<u8>,
}

/// Turns whose data key is wrapped by another KEK than `kek_id`, in (chat, seq) order after
/// `after`, at most `limit`.
pub async fn turn_keys_not_wrapped_by(
    c: &mut AnyConnection,
    kek_id: &str,
    after: Option<(&ChatId, i64)>,
    limit: u32,
) -> Result<Vec<TurnKey>> {
    let rows = sqlx::query(
        "SELECT t.chat_id, c.owner_id, t.seq, t.kek_id, t.wrapped_key
         FROM chat_turns t JOIN chats c ON c.id = t.chat_id
         WHERE t.kek_id <> $1
           AND ($2 IS NULL OR t.chat_id > $2 OR (t.chat_id = $2 AND t.seq > $3))
         ORDER BY t.chat_id, t.seq LIMIT $4",
    )
    .bind(kek_id.to_string())
    .bind(after.map(|(c, _)| c.to_string()))
    .bind(after.map_or(0, |(_, s)| s))
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TurnKey {
                chat_id: ChatId::from_db(text(r, "chat_id")?),
                owner_id: UserId::from_db(text(r, "owner_id")?),
                seq: int(r, "seq")?,
                kek_id: text(r, "kek_id")?,
                wrapped_key: bytes(r, "wrapped_key")?,
            })
        })
        .collect()
}

/// Swaps a turn's wrapped data key if it is still under `old_kek` (false otherwise). The
/// ciphertext is untouched.
pub async fn rewrap_turn(
    c: &mut AnyConnection,
    chat: &ChatId,
    seq: i64,
    old_kek: &str,
    new_kek: &str,
    wrapped_key: Vec<u8>,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE chat_turns SET wrapped_key = $1, kek_id = $2
         WHERE chat_id = $3 AND seq = $4 AND kek_id = $5",
    )
    .bind(wrapped_key)
    .bind(new_kek.to_string())
    .bind(chat.to_string())
    .bind(seq)
    .bind(old_kek.to_string())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}
