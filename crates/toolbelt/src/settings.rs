//! Settings read from the environment, for the parts the binary wires together.

use anyhow::{Context, Result};
use std::time::Duration;
use toolbelt_gateway::GatewayConfig;
use toolbelt_gateway::ratelimit::Rate;
use toolbelt_gateway::ssrf::AllowList;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn millis(name: &str) -> Result<Option<Duration>> {
    env(name)
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .with_context(|| format!("{name} must be milliseconds"))
        })
        .transpose()
}

/// The gateway's settings (see the README's configuration table).
pub fn gateway() -> Result<GatewayConfig> {
    let mut c = GatewayConfig::default();
    if let Some(v) = env("TOOLBELT_RATE_LIMIT_AGENT") {
        c.agent_rate = Some(Rate::parse(&v).context("TOOLBELT_RATE_LIMIT_AGENT")?);
    }
    if let Some(v) = env("TOOLBELT_RATE_LIMIT_TOOL") {
        c.tool_rate = Some(Rate::parse(&v).context("TOOLBELT_RATE_LIMIT_TOOL")?);
    }
    if let Some(v) = env("TOOLBELT_SSRF_ALLOW") {
        c.ssrf_allow = AllowList::parse(&v).context("TOOLBELT_SSRF_ALLOW")?;
    }
    if let Some(v) = env("TOOLBELT_ALLOWED_HOSTS") {
        c.allowed_hosts = v
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect();
    }
    if let Some(d) = millis("TOOLBELT_ASK_TIMEOUT_MS")? {
        c.ask_timeout = d;
    }
    if let Some(d) = millis("TOOLBELT_CALL_TIMEOUT_MS")? {
        c.call_timeout = d;
    }
    if let Some(d) = millis("TOOLBELT_DISCOVERY_DEADLINE_MS")? {
        c.discovery_deadline = d;
    }
    Ok(c)
}

/// OAuth's settings; `public_url` is where browsers reach this control plane (callbacks).
pub fn oauth(public_url: String) -> Result<toolbelt_oauth::OAuthConfig> {
    let mut c = toolbelt_oauth::OAuthConfig {
        public_url: env("TOOLBELT_PUBLIC_URL").unwrap_or(public_url),
        ..Default::default()
    };
    if let Some(d) = millis("TOOLBELT_OAUTH_REFRESH_LEAD_MS")? {
        c.refresh_lead = d;
    }
    if let Some(d) = millis("TOOLBELT_OAUTH_REFRESH_JITTER_MS")? {
        c.refresh_jitter = d;
    }
    if let Some(d) = millis("TOOLBELT_OAUTH_TICK_MS")? {
        c.tick = d;
    }
    if let Some(d) = millis("TOOLBELT_OAUTH_RETRY_MS")? {
        c.retry_base = d;
    }
    if let Some(v) = env("TOOLBELT_OAUTH_MAX_FAILURES") {
        c.max_failures = v
            .trim()
            .parse()
            .context("TOOLBELT_OAUTH_MAX_FAILURES must be a number")?;
    }
    Ok(c)
}

/// The vault over `store`: keys from `TOOLBELT_VAULT_KEY` when set, else from the key file
/// (`TOOLBELT_VAULT_KEY_FILE`, default `<data dir>/vault.key`, created on first start).
pub async fn vault(
    store: &toolbelt_store::Store,
    data_dir: &std::path::Path,
) -> Result<(
    toolbelt_vault::Vault,
    Option<std::sync::Arc<toolbelt_vault::KeyFileProvider>>,
)> {
    use std::sync::Arc;
    use toolbelt_vault::{EnvKeyProvider, KeyFileProvider, KeyProvider, Vault};
    let (keys, file): (Arc<dyn KeyProvider>, _) =
        match EnvKeyProvider::from_env().context("TOOLBELT_VAULT_KEY")? {
            Some(p) => (Arc::new(p), None),
            None => {
                let path = env("TOOLBELT_VAULT_KEY_FILE")
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("vault.key"));
                let f = Arc::new(
                    KeyFileProvider::open_or_create(&path)
                        .with_context(|| format!("the vault key file {}", path.display()))?,
                );
                (f.clone(), Some(f))
            }
        };
    let v = Vault::open(store.clone(), keys)
        .await
        .context("the vault does not open")?;
    Ok((v, file))
}
