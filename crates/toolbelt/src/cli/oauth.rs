//! `toolbelt provider …` and `toolbelt connection …`.

use super::client::seg;
use super::output::{Col, Format};
use super::secrets::ValueSource;
use super::{Ctx, usage};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

const PROVIDER_COLS: &[Col] = &[
    ("NAME", "/name"),
    ("KIND", "/kind"),
    ("CLIENT ID", "/client_id"),
    ("TOKEN ENDPOINT", "/token_endpoint"),
    ("REVOCATION", "/revocation_endpoint"),
    ("SCOPES", "/default_scopes"),
];

const CONNECTION_COLS: &[Col] = &[
    ("ID", "/id"),
    ("PROVIDER", "/provider"),
    ("STATUS", "/status"),
    ("SCOPES", "/scopes"),
    ("EXPIRES", "/expires_at"),
    ("LAST REFRESH", "/last_refresh_at"),
    ("LAST USED", "/last_used_at"),
    ("LAST ERROR", "/last_error"),
];

#[derive(Debug, Args)]
pub struct AddProvider {
    name: String,
    #[arg(long, value_parser = ["github", "google", "microsoft", "slack", "custom"])]
    kind: String,
    #[arg(long)]
    client_id: String,
    /// Custom providers: discover endpoints from this issuer (RFC 8414 / OIDC).
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long)]
    authorization_endpoint: Option<String>,
    #[arg(long)]
    token_endpoint: Option<String>,
    #[arg(long)]
    revocation_endpoint: Option<String>,
    /// Default scopes (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A public client (PKCE alone): no client secret.
    #[arg(long, conflicts_with_all = ["from_stdin", "from_file"])]
    public: bool,
    #[command(flatten)]
    secret: ValueSource,
}

#[derive(Debug, Subcommand)]
pub enum ProviderCmd {
    List,
    Get {
        name: String,
    },
    /// Configure a provider (admins). The client secret is read like a secret's value.
    Add(Box<AddProvider>),
    Delete {
        name: String,
    },
}

pub async fn provider(cmd: ProviderCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        ProviderCmd::List => {
            let v = ctx.api.get("/api/v1/providers").await?;
            ctx.out
                .list(v.as_array().map_or(&[][..], |a| a), PROVIDER_COLS);
        }
        ProviderCmd::Get { name } => ctx.out.one(
            &ctx.api
                .get(&format!("/api/v1/providers/{}", seg(&name)))
                .await?,
            PROVIDER_COLS,
        ),
        ProviderCmd::Add(a) => {
            let AddProvider {
                name,
                kind,
                client_id,
                issuer,
                authorization_endpoint,
                token_endpoint,
                revocation_endpoint,
                scopes,
                public,
                secret,
            } = *a;
            let client_secret = if public { None } else { Some(secret.read()?) };
            let body = json!({
                "name": name, "kind": kind, "client_id": client_id, "client_secret": client_secret,
                "issuer": issuer, "authorization_endpoint": authorization_endpoint,
                "token_endpoint": token_endpoint, "revocation_endpoint": revocation_endpoint,
                "default_scopes": (!scopes.is_empty()).then_some(scopes),
            });
            ctx.out.one(
                &ctx.api.post("/api/v1/providers", body).await?,
                PROVIDER_COLS,
            );
        }
        ProviderCmd::Delete { name } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/providers/{}", seg(&name)))
                .await?;
            ctx.out.done(&v, &format!("Deleted provider {name}"));
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCmd {
    List,
    Get {
        id: String,
    },
    /// Connect an account: prints a URL to open in a browser logged in to the dashboard,
    /// then waits until the provider has answered.
    Start {
        provider: String,
        /// Scopes to ask for (repeatable; default: the provider's).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Which account to sign in with (passed to the provider as `login_hint`).
        #[arg(long)]
        login_hint: Option<String>,
        /// Print the URL and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Re-authorize a connection (one that needs it, or to change its scopes): like
    /// `start`, but the new tokens go on this connection, so its grants hold.
    Reconnect {
        id: String,
        /// Scopes to ask for (repeatable; default: the connection's).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Which account to sign in with (passed to the provider as `login_hint`).
        #[arg(long)]
        login_hint: Option<String>,
        /// Print the URL and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Refresh the tokens now.
    Refresh {
        id: String,
    },
    /// Revoke at the provider and delete here, at once.
    Revoke {
        id: String,
    },
}

pub async fn connection(cmd: ConnectionCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        ConnectionCmd::List => ctx
            .out
            .list(&ctx.api.all("/api/v1/connections").await?, CONNECTION_COLS),
        ConnectionCmd::Get { id } => ctx.out.one(
            &ctx.api
                .get(&format!("/api/v1/connections/{}", seg(&id)))
                .await?,
            CONNECTION_COLS,
        ),
        ConnectionCmd::Start {
            provider,
            scopes,
            login_hint,
            no_wait,
        } => {
            let body = json!({
                "provider": provider, "login_hint": login_hint,
                "scopes": (!scopes.is_empty()).then_some(scopes),
            });
            start(ctx, "/api/v1/connections", body, no_wait).await?
        }
        ConnectionCmd::Reconnect {
            id,
            scopes,
            login_hint,
            no_wait,
        } => {
            let body = json!({
                "login_hint": login_hint, "scopes": (!scopes.is_empty()).then_some(scopes),
            });
            let path = format!("/api/v1/connections/{}/reconnect", seg(&id));
            start(ctx, &path, body, no_wait).await?
        }
        ConnectionCmd::Refresh { id } => ctx.out.one(
            &ctx.api
                .post(
                    &format!("/api/v1/connections/{}/refresh", seg(&id)),
                    json!({}),
                )
                .await?,
            CONNECTION_COLS,
        ),
        ConnectionCmd::Revoke { id } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/connections/{}", seg(&id)))
                .await?;
            let note = v["provider_note"]
                .as_str()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            ctx.out.done(&v, &format!("Revoked connection {id}{note}"));
        }
    }
    Ok(())
}

/// Starts a flow at `path` (a new connection, or a reconnect) and waits for its outcome.
async fn start(ctx: &Ctx, path: &str, body: Value, no_wait: bool) -> Result<()> {
    let flow = ctx.api.post(path, body).await?;
    let url = flow["start_url"].as_str().unwrap_or_default();
    // The URL goes to stderr in JSON mode, so stdout stays one JSON document.
    let line =
        format!("Open this URL in a browser that is logged in to the Toolbelt dashboard:\n  {url}");
    match ctx.out.format {
        Format::Json if !no_wait => eprintln!("{line}"),
        Format::Json => ctx.out.json(&flow),
        Format::Table => println!("{line}"),
    }
    let _ = std::io::stdout().flush();
    if no_wait {
        return Ok(());
    }
    let Some(id) = flow["flow_id"].as_str() else {
        return usage("the control plane answered no flow id");
    };
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = ctx
            .api
            .get(&format!("/api/v1/connections/flows/{}", seg(id)))
            .await?;
        match s["status"].as_str() {
            Some("connected") => {
                let c = &s["connection"];
                ctx.out.done(
                    c,
                    &format!(
                        "Connected: {} ({}, scopes {})",
                        c["id"].as_str().unwrap_or("?"),
                        c["provider"].as_str().unwrap_or("?"),
                        scopes_of(c)
                    ),
                );
                return Ok(());
            }
            Some("failed") => anyhow::bail!(
                "the connection failed: {}",
                s["error"].as_str().unwrap_or("unknown error")
            ),
            Some("expired") => anyhow::bail!("the flow expired before the provider answered"),
            _ => {}
        }
    }
}

fn scopes_of(c: &Value) -> String {
    c["scopes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
