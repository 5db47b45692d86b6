//! LLM endpoints. Admins add shared ones; members add their own. The API key is a vault
//! secret named here (in the endpoint's namespace), checked to exist, never returned.
//! The base URL must be http(s) without credentials, may not be plain http off loopback
//! unless allowed, and its addresses must pass the SSRF guard (checked now for what it
//! resolves to, and again on every connection by the guarded resolver).

use crate::Chat;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;
use toolbelt_control::service::{Caller, Result, ServiceError, found};
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::chat::{DEFAULT_MAX_TOOLS, Llm, LlmKind};
use toolbelt_model::name::{LONG_NAME_MAX, Name};
use toolbelt_model::{LlmId, Scope};
use toolbelt_store::llms::{self, NewLlm};
use toolbelt_store::{AnyConnection, secrets};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLlm {
    pub name: String,
    /// `openai`, `azure` (Azure OpenAI's deployment API) or `anthropic`.
    pub kind: String,
    /// `https://api.openai.com/v1`, `https://api.anthropic.com` (…/v1 is added), a vLLM,
    /// Ollama or LiteLLM URL ending in `/v1`; for `azure` the deployment's URL with its API
    /// version, `https://RESOURCE.openai.azure.com/openai/deployments/NAME?api-version=2024-10-21`.
    pub base_url: String,
    /// The name of a vault secret holding the API key.
    pub api_key_secret: Option<String>,
    pub model: Option<String>,
    /// Default 128.
    pub max_tools: Option<u32>,
    /// A shared endpoint (admins).
    #[serde(default)]
    pub shared: bool,
}

/// Checks and normalizes a base URL: Anthropic's bare host gets its `/v1`.
pub async fn check_base_url(chat: &Chat, kind: LlmKind, raw: &str) -> Result<String> {
    let bad = |m: String| ServiceError::invalid("base_url", m);
    let mut url = url::Url::parse(raw.trim()).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be http:// or https://".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not hold credentials (put the API key in a vault secret)".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment".into()));
    }
    if kind == LlmKind::Azure {
        check_api_version(&url).map_err(bad)?;
    } else if url.query().is_some() {
        return Err(bad("must not have a query".into()));
    }
    let Some(host) = url.host_str().map(str::to_string) else {
        return Err(bad("has no host".into()));
    };
    if let Err(e) = chat.guard.check_url(&url) {
        return Err(bad(format!("{e} (TOOLBELT_SSRF_ALLOW)")));
    }
    chat.config
        .outbound
        .check_scheme(&url, "an LLM endpoint")
        .map_err(|e| bad(e.to_string()))?;
    if host.parse::<IpAddr>().is_err() && !host.starts_with('[') {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await;
        // A name that does not resolve now may later; one that resolves only to refused
        // addresses is refused now, with the reason.
        if let Ok(Ok(addrs)) = addrs {
            let addrs: Vec<_> = addrs.collect();
            if !addrs.is_empty() && addrs.iter().all(|a| chat.guard.check(a.ip()).is_err()) {
                let e = chat.guard.check(addrs[0].ip()).unwrap_err();
                return Err(bad(format!("{host}: {e} (TOOLBELT_SSRF_ALLOW)")));
            }
        }
    }
    if kind == LlmKind::Anthropic && matches!(url.path(), "" | "/") {
        url.set_path("/v1");
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

const AZURE_EXAMPLE: &str =
    "https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT?api-version=2024-10-21";

/// An Azure deployment URL's query: exactly one `api-version`, a date-like value.
fn check_api_version(url: &url::Url) -> std::result::Result<(), String> {
    let pairs: Vec<_> = url.query_pairs().collect();
    match pairs.as_slice() {
        [(k, v)] if k == "api-version" => {
            let ok = !v.is_empty()
                && v.len() <= 40
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "api-version {v:?} is not a version (e.g. 2024-10-21)"
                ))
            }
        }
        [] => Err(format!(
            "an Azure OpenAI deployment URL needs its api-version: {AZURE_EXAMPLE}"
        )),
        _ => Err(format!(
            "the only query an Azure OpenAI URL may have is api-version: {AZURE_EXAMPLE}"
        )),
    }
}

pub async fn create(chat: &Chat, caller: &Caller, req: CreateLlm) -> Result<Llm> {
    let name = Name::parse("name", &req.name, LONG_NAME_MAX)?;
    let kind = LlmKind::parse(req.kind.trim())
        .ok_or_else(|| ServiceError::invalid("kind", "must be openai, azure or anthropic"))?;
    if req.shared {
        caller.require_admin("add shared LLM endpoints")?;
    }
    let owner = (!req.shared).then(|| caller.id().clone());
    let base_url = check_base_url(chat, kind, &req.base_url).await?;
    let max_tools = req.max_tools.unwrap_or(DEFAULT_MAX_TOOLS);
    if !(1..=10_000).contains(&max_tools) {
        return Err(ServiceError::invalid("max_tools", "must be 1 to 10000"));
    }
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
    let key = req
        .api_key_secret
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let mut tx = chat.state.store.begin_audited().await?;
    if let Some(k) = key
        && secrets::find_in_namespace(&mut tx, owner.as_ref(), k)
            .await?
            .is_none()
    {
        return Err(ServiceError::invalid(
            "api_key_secret",
            format!(
                "no secret {k} in {} namespace (toolbelt secret create {k}{})",
                if owner.is_some() {
                    "your"
                } else {
                    "the shared"
                },
                if owner.is_some() { "" } else { " --shared" }
            ),
        ));
    }
    let llm = llms::insert(
        &mut tx,
        &NewLlm {
            owner: owner.as_ref(),
            name: &name,
            kind,
            base_url: &base_url,
            api_key_secret: key,
            model,
            max_tools,
        },
    )
    .await?;
    tx.commit(caller.event(
        AuditAction::LlmCreate,
        TargetKind::Llm,
        &llm.id,
        owner.as_ref(),
        json!({ "name": llm.name, "kind": kind, "base_url": llm.base_url, "shared": req.shared }),
    ))
    .await?;
    Ok(llm)
}

pub async fn list(chat: &Chat, caller: &Caller) -> Result<Vec<Llm>> {
    let mut c = chat.state.store.conn().await?;
    Ok(llms::list(&mut c, &caller.scope).await?)
}

/// An endpoint `scope` can see, by id or name (its own first, then a shared one).
pub async fn resolve(c: &mut AnyConnection, scope: &Scope, r: &str) -> Result<Llm> {
    let res = match LlmId::parse(r) {
        Some(id) => llms::get(c, scope, &id).await,
        None => llms::find_by_name(c, scope, r).await,
    };
    found(format!("LLM endpoint {r}"), res)
}

pub async fn get(chat: &Chat, caller: &Caller, r: &str) -> Result<Llm> {
    let mut c = chat.state.store.conn().await?;
    resolve(&mut c, &caller.scope, r).await
}

/// Deletes an endpoint (and every agent's settings that use it). Shared ones: admins.
pub async fn delete(chat: &Chat, caller: &Caller, r: &str) -> Result<Llm> {
    let mut tx = chat.state.store.begin_audited().await?;
    let llm = resolve(&mut tx, &caller.scope, r).await?;
    if llm.owner_id.is_none() {
        caller.require_admin("delete shared LLM endpoints")?;
    }
    llms::delete(&mut tx, &llm.id).await?;
    tx.commit(caller.event(
        AuditAction::LlmDelete,
        TargetKind::Llm,
        &llm.id,
        llm.owner_id.as_ref(),
        json!({ "name": llm.name }),
    ))
    .await?;
    Ok(llm)
}
