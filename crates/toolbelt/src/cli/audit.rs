//! `toolbelt audit …`

use super::client::seg;
use super::output::{Col, Format};
use super::{Ctx, usage};
use anyhow::Result;
use clap::Subcommand;

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
    /// Walk the hash chain; exits non-zero when it is broken.
    Verify,
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
        AuditCmd::Verify => {
            let r = ctx.api.get("/api/v1/audit/verify").await?;
            let ok = r["ok"].as_bool() == Some(true);
            match ctx.out.format {
                Format::Json => ctx.out.json(&r),
                Format::Table if ok => println!(
                    "The audit chain is intact: {} events, head at {}.",
                    r["checked"], r["head_seq"]
                ),
                Format::Table => println!(
                    "The audit chain is BROKEN at event {}: {}",
                    r["first_broken_seq"],
                    r["reason"].as_str().unwrap_or("?")
                ),
            }
            if !ok {
                return Err(anyhow::anyhow!("audit chain verification failed"));
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
