//! Conversations: strictly their owner's (admins included — a transcript holds tool
//! results), with an agent the owner owns. Turns are sealed by the vault at rest, one row
//! per finished turn, bound to (owner, chat, seq).

use crate::Chat;
use crate::wire::Message;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_control::service::{Caller, Result, ServiceError, found, refs};
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::chat::{Chat as ChatInfo, Transcript, TurnRecord};
use toolbelt_model::{ChatId, UserId};
use toolbelt_store::chats;
use toolbelt_vault::{RecordBinding, TURN_KIND};
use utoipa::ToSchema;

const KIND: &str = TURN_KIND;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChat {
    /// The agent, by id or name; it must be the caller's own.
    pub agent: String,
}

/// What a sealed turn holds: the transcript's view, and the messages to resume from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTurn {
    pub record: TurnRecord,
    pub messages: Vec<Message>,
}

pub async fn create(chat: &Chat, caller: &Caller, req: CreateChat) -> Result<ChatInfo> {
    let mut tx = chat.state.store.begin_audited().await?;
    let a = refs::agent(&mut tx, &caller.scope, &req.agent).await?;
    if &a.owner_id != caller.id() {
        return Err(ServiceError::forbidden(
            "only the agent's owner may chat with it",
        ));
    }
    let ch = chats::create(&mut tx, caller.id(), &a.id).await?;
    tx.commit(caller.event(
        AuditAction::ChatCreate,
        TargetKind::Chat,
        &ch.id,
        None,
        json!({ "agent": a.id, "agent_name": a.name }),
    ))
    .await?;
    Ok(ch)
}

pub async fn list(chat: &Chat, caller: &Caller) -> Result<Vec<ChatInfo>> {
    let mut c = chat.state.store.conn().await?;
    Ok(chats::list(&mut c, caller.id()).await?)
}

fn parse_id(r: &str) -> Result<ChatId> {
    ChatId::parse(r).ok_or_else(|| ServiceError::not_found(format!("chat {r}")))
}

/// The caller's chat.
pub async fn info(chat: &Chat, caller: &Caller, r: &str) -> Result<ChatInfo> {
    let id = parse_id(r)?;
    let mut c = chat.state.store.conn().await?;
    found(
        format!("chat {r}"),
        chats::get(&mut c, caller.id(), &id).await,
    )
}

/// Every finished turn of the caller's chat, opened.
pub async fn turns(chat: &Chat, owner: &UserId, id: &ChatId) -> Result<Vec<StoredTurn>> {
    let rows = {
        let mut c = chat.state.store.conn().await?;
        chats::turns(&mut c, id).await?
    };
    let vault = &chat.state.credentials()?.vault;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let b = RecordBinding {
            kind: KIND,
            owner,
            id: id.as_str(),
            seq: r.seq,
        };
        let plain = vault.open_record(&b, &r.sealed).await.map_err(|e| {
            tracing::error!(chat = %id, seq = r.seq, error = %e, "a chat turn does not open");
            ServiceError::Undecryptable(format!("turn {} of chat {id} does not open: {e}", r.seq))
        })?;
        let t: StoredTurn = serde_json::from_slice(plain.expose()).map_err(|e| {
            ServiceError::Undecryptable(format!("turn {} of chat {id} is unreadable: {e}", r.seq))
        })?;
        out.push(t);
    }
    Ok(out)
}

/// The transcript of the caller's chat.
pub async fn transcript(chat: &Chat, caller: &Caller, r: &str) -> Result<Transcript> {
    let ch = info(chat, caller, r).await?;
    let turns = turns(chat, caller.id(), &ch.id).await?;
    Ok(Transcript {
        id: ch.id,
        agent: ch.agent,
        turns: turns.into_iter().map(|t| t.record).collect(),
    })
}

pub async fn delete(chat: &Chat, caller: &Caller, r: &str) -> Result<ChatInfo> {
    let id = parse_id(r)?;
    let mut tx = chat.state.store.begin_audited().await?;
    let ch = found(
        format!("chat {r}"),
        chats::delete(&mut tx, caller.id(), &id).await,
    )?;
    tx.commit(caller.event(
        AuditAction::ChatDelete,
        TargetKind::Chat,
        &ch.id,
        None,
        json!({ "agent": ch.agent_id, "turns": ch.turns }),
    ))
    .await?;
    Ok(ch)
}

/// A finished turn sealed for its place (the next seq of the chat), ready to insert.
pub struct SealedTurn {
    pub seq: i64,
    pub sealed: toolbelt_store::secrets::Sealed,
}

/// Seals a finished turn, outside any transaction (a KMS may be slow).
pub async fn seal_turn(
    chat: &Chat,
    owner: &UserId,
    id: &ChatId,
    turn: &StoredTurn,
) -> Result<SealedTurn> {
    let seq = {
        let mut c = chat.state.store.conn().await?;
        chats::next_seq(&mut c, id).await?
    };
    let b = RecordBinding {
        kind: KIND,
        owner,
        id: id.as_str(),
        seq,
    };
    // A SecretValue is wiped when dropped.
    let plain = toolbelt_vault::SecretValue::new(
        serde_json::to_vec(turn).map_err(|_| ServiceError::Internal)?,
    );
    let vault = &chat.state.credentials()?.vault;
    let sealed = vault
        .seal_record(&b, plain.expose())
        .await
        .map_err(|e| ServiceError::unavailable(format!("the vault cannot seal the turn: {e}")))?;
    Ok(SealedTurn { seq, sealed })
}
