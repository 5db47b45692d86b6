//! `toolbelt agent connect NAME --client claude|vscode|cursor`: a fresh token labelled
//! for that client, and configuration to paste — the stdio bridge form and the direct
//! Streamable HTTP form — and the OAuth form (just the URL: the client discovers Toolbelt's
//! authorization server from the gateway's 401 and the user picks the agent on the consent
//! page), which `--oauth` prints alone, issuing no token.

use super::Ctx;
use super::client::seg;
use anyhow::Result;
use serde_json::{Value, json};

/// The OAuth form of `client`'s configuration: no token anywhere. Claude Desktop takes
/// remote servers as a custom connector (Settings → Connectors), not in its config file.
fn oauth_form(client: &str, key: &str, url: &str) -> (&'static str, Value) {
    match client {
        "claude" => (
            "Claude Desktop: Settings → Connectors → Add custom connector",
            json!({ "name": key, "url": url }),
        ),
        "vscode" => (
            ".vscode/mcp.json",
            json!({ "servers": { key: { "type": "http", "url": url } } }),
        ),
        _ => (
            "~/.cursor/mcp.json",
            json!({ "mcpServers": { key: { "url": url } } }),
        ),
    }
}

async fn oauth_only(ctx: &Ctx, agent: &str, client: &str) -> Result<()> {
    // The agent must exist (and be yours): the consent page will offer it.
    let a = ctx
        .api
        .get(&format!("/api/v1/agents/{}", seg(agent)))
        .await?;
    let url = format!("{}/mcp", ctx.api.base);
    let key = format!("toolbelt-{agent}");
    let (place, form) = oauth_form(client, &key, &url);
    let out = json!({ "client": client, "agent": a["id"], "file": place, "oauth": form });
    match ctx.out.format {
        super::output::Format::Json => ctx.out.json(&out),
        super::output::Format::Table => println!(
            "Add to {place} (no token: the client opens a browser, you sign in and pick {agent} on the consent page):\n{}",
            serde_json::to_string_pretty(&form)?
        ),
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, agent: &str, client: &str, oauth: bool) -> Result<()> {
    if oauth {
        return oauth_only(ctx, agent, client).await;
    }
    let label = match client {
        "claude" => "claude-desktop",
        "vscode" => "vscode",
        _ => "cursor",
    };
    let issued = ctx
        .api
        .post(
            &format!("/api/v1/agents/{}/tokens", seg(agent)),
            json!({ "label": label }),
        )
        .await?;
    let token = issued["token"].as_str().unwrap_or_default();
    let url = format!("{}/mcp", ctx.api.base);
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "toolbelt".into());
    let key = format!("toolbelt-{agent}");
    let env = json!({ "TOOLBELT_URL": ctx.api.base, "TOOLBELT_AGENT_TOKEN": token });
    let auth = json!({ "Authorization": format!("Bearer {token}") });
    let (file, stdio, http): (&str, Value, Value) = match client {
        "claude" => (
            "claude_desktop_config.json",
            json!({ "mcpServers": { &key: { "command": exe, "args": ["stdio"], "env": env } } }),
            json!({ "mcpServers": { &key: { "type": "http", "url": url, "headers": auth } } }),
        ),
        "vscode" => (
            ".vscode/mcp.json",
            json!({ "servers": { &key: { "type": "stdio", "command": exe, "args": ["stdio"], "env": env } } }),
            json!({ "servers": { &key: { "type": "http", "url": url, "headers": auth } } }),
        ),
        _ => (
            "~/.cursor/mcp.json",
            json!({ "mcpServers": { &key: { "command": exe, "args": ["stdio"], "env": env } } }),
            json!({ "mcpServers": { &key: { "url": url, "headers": auth } } }),
        ),
    };
    let (oauth_place, oauth) = oauth_form(client, &key, &url);
    let out = json!({ "client": client, "file": file, "token_id": issued["info"]["id"], "stdio": stdio, "http": http, "oauth": oauth });
    match ctx.out.format {
        super::output::Format::Json => ctx.out.json(&out),
        super::output::Format::Table => {
            println!(
                "A new token for {agent}, labelled {label:?} (revoke it with `toolbelt agent token revoke {agent} --id {}`).\n",
                issued["info"]["id"].as_str().unwrap_or("")
            );
            println!(
                "Add to {file} — through the stdio bridge:\n{}\n",
                serde_json::to_string_pretty(&stdio)?
            );
            println!(
                "or, where the client speaks Streamable HTTP itself:\n{}\n",
                serde_json::to_string_pretty(&http)?
            );
            println!(
                "or with OAuth, no token (add to {oauth_place}; `--oauth` prints only this):\n{}",
                serde_json::to_string_pretty(&oauth)?
            );
        }
    }
    Ok(())
}
