//! `toolbelt secret …` and `toolbelt vault …`. A value is read from stdin or a file, never
//! from argv (where `ps` and shell history would see it), and never printed back.

use super::client::seg;
use super::output::Col;
use super::{Ctx, usage};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;

const COLS: &[Col] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("KIND", "/kind"),
    ("VERSION", "/version"),
    ("OWNER", "/owner_id"),
    ("KEK", "/kek_id"),
    ("UPDATED", "/updated_at"),
];

#[derive(Debug, Args)]
pub struct ValueSource {
    /// Read the value from standard input (one trailing newline is dropped).
    #[arg(long, conflicts_with = "from_file")]
    from_stdin: bool,
    /// Read the value from a file (one trailing newline is dropped).
    #[arg(long)]
    from_file: Option<PathBuf>,
}

impl ValueSource {
    /// The value as text, or a usage error when no source was given.
    pub fn read(&self) -> Result<String> {
        let mut raw = Vec::new();
        match (&self.from_file, self.from_stdin) {
            (Some(p), _) => {
                raw = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            }
            (None, true) => {
                std::io::stdin()
                    .read_to_end(&mut raw)
                    .context("cannot read standard input")?;
            }
            (None, false) => return usage("give --from-stdin or --from-file FILE"),
        }
        let mut s = String::from_utf8(raw)
            .map_err(|_| super::UsageError("the value must be UTF-8 text".into()))?;
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        if s.is_empty() {
            return usage("the value is empty");
        }
        Ok(s)
    }
}

#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Store a new secret.
    Create {
        name: String,
        #[command(flatten)]
        value: ValueSource,
        #[arg(long, value_parser = ["generic", "api_key", "password"])]
        kind: Option<String>,
        /// In the shared namespace, for shared servers (admins).
        #[arg(long)]
        shared: bool,
    },
    /// Replace a secret's value (a new version).
    Update {
        name: String,
        #[command(flatten)]
        value: ValueSource,
    },
    /// Secrets' metadata (never values).
    List,
    Get {
        name: String,
    },
    Delete {
        name: String,
    },
}

pub async fn secret(cmd: SecretCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        SecretCmd::Create {
            name,
            value,
            kind,
            shared,
        } => {
            let v = value.read()?;
            let body = json!({ "name": name, "value": v, "kind": kind, "shared": shared });
            ctx.out
                .one(&ctx.api.post("/api/v1/secrets", body).await?, COLS);
        }
        SecretCmd::Update { name, value } => {
            let v = value.read()?;
            let r = ctx
                .api
                .send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/secrets/{}", seg(&name)),
                    Some(json!({ "value": v })),
                )
                .await?;
            ctx.out.one(&r, COLS);
        }
        SecretCmd::List => ctx.out.list(&ctx.api.all("/api/v1/secrets").await?, COLS),
        SecretCmd::Get { name } => ctx.out.one(
            &ctx.api
                .get(&format!("/api/v1/secrets/{}", seg(&name)))
                .await?,
            COLS,
        ),
        SecretCmd::Delete { name } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/secrets/{}", seg(&name)))
                .await?;
            ctx.out.done(&v, &format!("Deleted secret {name}"));
        }
    }
    Ok(())
}

const KEY_COLS: &[Col] = &[
    ("KEK", "/id"),
    ("CURRENT", "/current"),
    ("SECRETS", "/secrets"),
    ("CHAT TURNS", "/records"),
];

#[derive(Debug, Subcommand)]
pub enum VaultCmd {
    /// The key-encryption keys and how many secrets each wraps.
    Keys,
    /// Add a new key (key files) and re-wrap every data key under it, while serving.
    Rotate {
        /// Do not add a key: move every row to the provider's current key (after
        /// changing TOOLBELT_VAULT_KEY to `new,old`).
        #[arg(long)]
        keep_key: bool,
    },
    /// Delete an old key once no secret is wrapped by it.
    DeleteKey { kek: String },
}

pub async fn vault(cmd: VaultCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        VaultCmd::Keys => {
            let v = ctx.api.get("/api/v1/vault/keys").await?;
            ctx.out
                .list(v["keys"].as_array().map_or(&[][..], |a| a), KEY_COLS);
        }
        VaultCmd::Rotate { keep_key } => {
            let r = ctx
                .api
                .post("/api/v1/vault/rotate", json!({ "new_key": !keep_key }))
                .await?;
            ctx.out.done(
                &r,
                &format!(
                    "Rotated to {}: {} re-wrapped, {} still under other keys{}",
                    r["kek_id"].as_str().unwrap_or("?"),
                    r["rewrapped"],
                    r["remaining"],
                    match r["unreadable"].as_array() {
                        Some(u) if !u.is_empty() => format!(", {} unreadable", u.len()),
                        _ => String::new(),
                    }
                ),
            );
        }
        VaultCmd::DeleteKey { kek } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/vault/keys/{}", seg(&kek)))
                .await?;
            ctx.out.done(&v, &format!("Deleted key {kek}"));
        }
    }
    Ok(())
}
