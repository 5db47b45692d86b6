//! `toolbelt audit …`

use super::client::seg;
use super::output::{Col, Format};
use super::{Ctx, usage};
use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use toolbelt_model::audit_checkpoint::{AuditPublicKey, CheckpointError, read_verified, thin};

/// At most this many checkpoints go to the server (it takes 4096); see [`thin`].
const MAX_SENT: usize = 4096;

const COLS: &[Col] = &[
    ("SEQ", "/seq"),
    ("TIME", "/ts"),
    ("ACTOR", "/actor_kind"),
    ("ACTOR ID", "/actor_id"),
    ("ACTION", "/action"),
    ("TARGET", "/target_id"),
    ("OUTCOME", "/outcome"),
];

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Events, newest first.
    List {
        #[arg(long)]
        agent: Option<String>,
        /// An action or a prefix (`agent`, `server.create`).
        #[arg(long)]
        action: Option<String>,
        /// RFC 3339 time, or an age like 15m, 2h, 7d.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Walk the hash chain; exits non-zero when it is broken. With --checkpoint and
    /// --public-key, also against signed checkpoints: a rewritten or cut chain fails.
    Verify {
        /// A checkpoint file (JSON lines, TOOLBELT_AUDIT_CHECKPOINT_FILE on the server).
        #[arg(long, requires = "public_key")]
        checkpoint: Option<std::path::PathBuf>,
        /// The audit key's public half (`toolbelt audit public-key`), from a record you trust.
        #[arg(long, requires = "checkpoint")]
        public_key: Option<String>,
    },
    /// The audit key's public half (Ed25519, base64url), for `audit verify --public-key`.
    PublicKey,
    /// Sign the chain's head into the checkpoint file now.
    Checkpoint,
    /// Every event, oldest first, as JSON lines.
    Export,
}

/// `15m`, `2h`, `7d` → an RFC 3339 time that long ago; RFC 3339 passes through.
pub fn since(s: &str) -> Result<String> {
    if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return Ok(s.to_string());
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = match n.parse() {
        Ok(n) if n >= 0 => n,
        _ => {
            return usage(format!(
                "--since takes an RFC 3339 time or an age like 15m, 2h, 7d; got {s:?}"
            ));
        }
    };
    let d = match unit {
        "s" => chrono::TimeDelta::seconds(n),
        "m" => chrono::TimeDelta::minutes(n),
        "h" => chrono::TimeDelta::hours(n),
        "d" => chrono::TimeDelta::days(n),
        _ => return usage(format!("--since: unknown unit in {s:?} (use s, m, h or d)")),
    };
    Ok((chrono::Utc::now() - d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

pub async fn run(cmd: AuditCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        AuditCmd::List {
            agent,
            action,
            since: s,
            limit,
        } => {
            let mut q = format!("/api/v1/audit?limit={limit}");
            if let Some(a) = agent {
                q.push_str(&format!("&agent={}", seg(&a)));
            }
            if let Some(a) = action {
                q.push_str(&format!("&action={}", seg(&a)));
            }
            if let Some(s) = s {
                q.push_str(&format!("&since={}", seg(&since(&s)?)));
            }
            let page = ctx.api.get(&q).await?;
            ctx.out.list(
                page["items"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                COLS,
            );
        }
        AuditCmd::Verify {
            checkpoint,
            public_key,
        } => verify(ctx, checkpoint.zip(public_key)).await?,
        AuditCmd::PublicKey => {
            let r = ctx.api.get("/api/v1/audit/public-key").await?;
            match ctx.out.format {
                Format::Json => ctx.out.json(&r),
                Format::Table => println!("{}", r["public_key"].as_str().unwrap_or("?")),
            }
        }
        AuditCmd::Checkpoint => {
            let r = ctx.api.post("/api/v1/audit/checkpoints", json!({})).await?;
            match ctx.out.format {
                Format::Json => ctx.out.json(&r),
                Format::Table => println!("Checkpoint written: event {}, {}.", r["seq"], r["time"]),
            }
        }
        AuditCmd::Export => {
            let mut all = ctx.api.all("/api/v1/audit").await?;
            all.reverse();
            for e in all {
                println!("{}", serde_json::to_string(&e)?);
            }
        }
    }
    Ok(())
}

/// The chain alone, or against a checkpoint file whose every line must verify with the
/// given key (checked here, by the verifier, before anything is sent).
async fn verify(ctx: &Ctx, checkpoints: Option<(std::path::PathBuf, String)>) -> Result<()> {
    let r = match checkpoints {
        None => ctx.api.get("/api/v1/audit/verify").await?,
        Some((file, key)) => {
            let key = match AuditPublicKey::parse(&key) {
                Ok(k) => k,
                Err(e) => return usage(format!("--public-key: {e}")),
            };
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let cps = match read_verified(&text, &key) {
                Ok(c) => c,
                Err(e @ CheckpointError::BadSignature { .. }) => {
                    println!("The checkpoint file {} is FORGED: {e}", file.display());
                    return Err(anyhow::anyhow!("audit checkpoint verification failed"));
                }
                Err(e) => return Err(anyhow::anyhow!("{}: {e}", file.display())),
            };
            let body = json!({ "checkpoints": thin(&cps, MAX_SENT) });
            ctx.api.post("/api/v1/audit/verify", body).await?
        }
    };
    let ok = r["ok"].as_bool() == Some(true);
    match ctx.out.format {
        Format::Json => ctx.out.json(&r),
        Format::Table if ok => {
            print!(
                "The audit chain is intact: {} events, head at {}.",
                r["checked"], r["head_seq"]
            );
            match r["signed_through"].as_i64() {
                Some(s) => println!(
                    " {} signed checkpoints match it, the last at event {s}.",
                    r["checkpoints_checked"]
                ),
                None => println!(),
            }
        }
        Format::Table => println!(
            "The audit chain is BROKEN at event {}: {}",
            r["first_broken_seq"],
            r["reason"].as_str().unwrap_or("?")
        ),
    }
    if !ok {
        return Err(anyhow::anyhow!("audit chain verification failed"));
    }
    Ok(())
}
