//! LLM endpoints for chat, and the agents' chat settings that point at them. An endpoint
//! is shared (`owner_id` NULL, admins add it) or one member's own.

use crate::rows::{int, now_ms, opt_text, parsed, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use toolbelt_model::chat::{ChatSettings, Llm, LlmKind};
use toolbelt_model::{AgentId, LlmId, Name, Scope, UserId};

fn llm(r: &AnyRow) -> Result<Llm> {
    Ok(Llm {
        id: LlmId::from_db(text(r, "id")?),
        name: Name::from_db(text(r, "name")?),
        kind: parsed(r, "kind", LlmKind::parse)?,
        base_url: text(r, "base_url")?,
        api_key_secret: opt_text(r, "api_key_secret")?,
        model: opt_text(r, "model")?,
        max_tools: int(r, "max_tools")?.clamp(0, u32::MAX as i64) as u32,
        owner_id: opt_text(r, "owner_id")?.map(UserId::from_db),
        created_at: ts(r, "created_at")?,
    })
}

/// What a new endpoint is; the service has validated every field.
pub struct NewLlm<'a> {
    pub owner: Option<&'a UserId>,
    pub name: &'a Name,
    pub kind: LlmKind,
    pub base_url: &'a str,
    pub api_key_secret: Option<&'a str>,
    pub model: Option<&'a str>,
    pub max_tools: u32,
}

pub async fn insert(c: &mut AnyConnection, n: &NewLlm<'_>) -> Result<Llm> {
    let r = sqlx::query(
        "INSERT INTO llms (id, owner_id, name, kind, base_url, api_key_secret, model, max_tools,
             created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
    )
    .bind(LlmId::generate().to_string())
    .bind(n.owner.map(|o| o.to_string()))
    .bind(n.name.to_string())
    .bind(n.kind.as_str())
    .bind(n.base_url.to_string())
    .bind(n.api_key_secret.map(str::to_string))
    .bind(n.model.map(str::to_string))
    .bind(i64::from(n.max_tools))
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| {
        conflict(e, || {
            format!("an LLM endpoint named {} already exists there", n.name)
        })
    })?;
    llm(&r)
}

/// Shared endpoints and the caller's own (admins: every one).
pub async fn list(c: &mut AnyConnection, scope: &Scope) -> Result<Vec<Llm>> {
    let rows = sqlx::query(
        "SELECT * FROM llms WHERE owner_id IS NULL OR owner_id = $1 OR $2 = 1 ORDER BY id",
    )
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(llm).collect()
}

/// One endpoint the scope can see, by id.
pub async fn get(c: &mut AnyConnection, scope: &Scope, id: &LlmId) -> Result<Llm> {
    let r = sqlx::query(
        "SELECT * FROM llms WHERE id = $1 AND (owner_id IS NULL OR owner_id = $2 OR $3 = 1)",
    )
    .bind(id.to_string())
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    llm(&r)
}

/// By name: the caller's own first, then a shared one.
pub async fn find_by_name(c: &mut AnyConnection, scope: &Scope, name: &str) -> Result<Llm> {
    let r = sqlx::query(
        "SELECT * FROM llms WHERE name = $1 AND (owner_id = $2 OR owner_id IS NULL)
         ORDER BY owner_id IS NULL LIMIT 1",
    )
    .bind(name.to_string())
    .bind(scope.user_id.to_string())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    llm(&r)
}

pub async fn delete(c: &mut AnyConnection, id: &LlmId) -> Result<()> {
    sqlx::query("DELETE FROM llms WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// An agent's chat settings, validated by the service.
pub struct NewSettings<'a> {
    pub llm_id: &'a LlmId,
    pub model: Option<&'a str>,
    pub system: Option<&'a str>,
    pub temperature: Option<f64>,
    pub max_steps: u32,
}

/// Sets (replaces) the agent's chat settings.
pub async fn put_settings(
    c: &mut AnyConnection,
    agent: &AgentId,
    s: &NewSettings<'_>,
) -> Result<ChatSettings> {
    sqlx::query("DELETE FROM agent_chat WHERE agent_id = $1")
        .bind(agent.to_string())
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO agent_chat (agent_id, llm_id, model, system_prompt, temperature, max_steps,
             updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(agent.to_string())
    .bind(s.llm_id.to_string())
    .bind(s.model.map(str::to_string))
    .bind(s.system.map(str::to_string))
    .bind(s.temperature)
    .bind(i64::from(s.max_steps))
    .bind(now_ms())
    .execute(&mut *c)
    .await?;
    settings(c, agent).await?.ok_or(StoreError::NotFound)
}

/// The agent's chat settings, if any (the caller has checked the agent is theirs).
pub async fn settings(c: &mut AnyConnection, agent: &AgentId) -> Result<Option<ChatSettings>> {
    let r = sqlx::query(
        "SELECT s.*, l.name AS llm_name FROM agent_chat s JOIN llms l ON l.id = s.llm_id
         WHERE s.agent_id = $1",
    )
    .bind(agent.to_string())
    .fetch_optional(&mut *c)
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(ChatSettings {
        agent_id: AgentId::from_db(text(&r, "agent_id")?),
        llm_id: LlmId::from_db(text(&r, "llm_id")?),
        llm: text(&r, "llm_name")?,
        model: opt_text(&r, "model")?,
        system: opt_text(&r, "system_prompt")?,
        temperature: r
            .try_get::<Option<f64>, _>("temperature")
            .map_err(|e| StoreError::Corrupt(format!("temperature: {e}")))?,
        max_steps: int(&r, "max_steps")?.clamp(1, 1000) as u32,
    }))
}
