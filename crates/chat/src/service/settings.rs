//! An agent's chat settings: which endpoint and model, the system prompt, the temperature
//! and the most tool rounds per turn. Set by the agent's owner (or an admin); the endpoint
//! must be one the agent's owner can use (shared, or their own).

use crate::Chat;
use crate::service::llms::resolve;
use serde::Deserialize;
use serde_json::json;
use toolbelt_control::service::{Caller, Result, ServiceError, refs};
use toolbelt_model::Role;
use toolbelt_model::Scope;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::chat::ChatSettings;
use toolbelt_store::llms::{self, NewSettings};
use utoipa::ToSchema;

/// Tool rounds per turn when the settings do not say.
pub const DEFAULT_MAX_STEPS: u32 = 10;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSettings {
    /// The endpoint, by id or name.
    pub llm: String,
    /// Overrides the endpoint's default model.
    pub model: Option<String>,
    pub system: Option<String>,
    /// 0 to 2.
    pub temperature: Option<f64>,
    /// 1 to 100 (default 10).
    pub max_steps: Option<u32>,
}

pub async fn put(
    chat: &Chat,
    caller: &Caller,
    agent: &str,
    req: PutSettings,
) -> Result<ChatSettings> {
    let model = req
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    if model.is_some_and(|m| m.len() > 200) {
        return Err(ServiceError::invalid(
            "model",
            "must be at most 200 characters",
        ));
    }
    let system = req.system.as_deref().filter(|s| !s.trim().is_empty());
    if system.is_some_and(|s| s.len() > 32 * 1024) {
        return Err(ServiceError::invalid("system", "must be at most 32 KiB"));
    }
    if let Some(t) = req.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ServiceError::invalid("temperature", "must be 0 to 2"));
    }
    let max_steps = req.max_steps.unwrap_or(DEFAULT_MAX_STEPS);
    if !(1..=100).contains(&max_steps) {
        return Err(ServiceError::invalid("max_steps", "must be 1 to 100"));
    }
    let mut tx = chat.state.store.begin_audited().await?;
    let a = refs::agent(&mut tx, &caller.scope, agent).await?;
    // The endpoint as the agent's owner sees it: an admin setting a member's agent cannot
    // hand it the admin's own endpoint (or key).
    let owner_scope = Scope {
        user_id: a.owner_id.clone(),
        role: Role::Member,
    };
    let llm = resolve(&mut tx, &owner_scope, &req.llm)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound(_) => ServiceError::invalid(
                "llm",
                format!("no LLM endpoint {} that the agent's owner may use", req.llm),
            ),
            e => e,
        })?;
    if model.is_none() && llm.model.is_none() {
        return Err(ServiceError::invalid(
            "model",
            format!("endpoint {} has no default model: name one", llm.name),
        ));
    }
    let s = llms::put_settings(
        &mut tx,
        &a.id,
        &NewSettings {
            llm_id: &llm.id,
            model,
            system,
            temperature: req.temperature,
            max_steps,
        },
    )
    .await?;
    tx.commit(caller.event(
        AuditAction::AgentChat,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "llm": llm.name, "model": model, "max_steps": max_steps,
                "temperature": req.temperature, "system_chars": system.map_or(0, str::len) }),
    ))
    .await?;
    Ok(s)
}

pub async fn get(chat: &Chat, caller: &Caller, agent: &str) -> Result<ChatSettings> {
    let mut c = chat.state.store.conn().await?;
    let a = refs::agent(&mut c, &caller.scope, agent).await?;
    llms::settings(&mut c, &a.id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("chat settings of agent {agent}")))
}
