//! `toolbelt tool …` (pinned definitions) and `toolbelt approval …` (held `ask` calls).

use super::client::seg;
use super::output::Col;
use super::{Ctx, usage};
use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum ToolCmd {
    /// Tool definitions that changed and wait for a decision, with what changed.
    Changes {
        #[arg(long)]
        all: bool,
    },
    /// Approve the pending change of SERVER's TOOL: it becomes the pin, the tool reappears.
    Approve {
        server: String,
        /// The tool's name (a prompt's name, a resource template's URI template: `--kind`).
        tool: String,
        #[arg(long)]
        toolbox: Option<String>,
        /// `tool`, `prompt` or `resource_template`.
        #[arg(long, default_value = "tool")]
        kind: String,
    },
    /// Reject it: the old pin stays, the changed tool stays hidden.
    Reject {
        server: String,
        tool: String,
        #[arg(long)]
        toolbox: Option<String>,
        #[arg(long, default_value = "tool")]
        kind: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalCmd {
    /// Calls waiting for you (`--all`: decided ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    Approve {
        id: String,
    },
    Deny {
        id: String,
    },
}

const CHANGE_COLS: &[Col] = &[
    ("ID", "/id"),
    ("SERVER", "/server_name"),
    ("KIND", "/kind"),
    ("TOOL", "/tool"),
    ("STATUS", "/status"),
    ("FLAGS", "/flags"),
    ("CREATED", "/created_at"),
];
const APPROVAL_COLS: &[Col] = &[
    ("ID", "/id"),
    ("AGENT", "/agent_id"),
    ("TOOL", "/tool"),
    ("STATUS", "/status"),
    ("EXPIRES", "/expires_at"),
    ("ARGUMENTS", "/arguments"),
];

async fn change_id(
    ctx: &Ctx,
    server: &str,
    (kind, tool): (&str, &str),
    toolbox: &Option<String>,
) -> Result<String> {
    let q = toolbox
        .as_ref()
        .map(|t| format!("?toolbox={}", seg(t)))
        .unwrap_or_default();
    let sid = ctx
        .api
        .get(&format!("/api/v1/servers/{}{q}", seg(server)))
        .await?["id"]
        .clone();
    let changes = ctx.api.get("/api/v1/tools/changes").await?;
    match changes
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["server_id"] == sid && c["tool"] == tool && c["kind"] == kind)
    {
        Some(c) => Ok(c["id"].as_str().unwrap_or_default().to_string()),
        None => usage(format!("no pending change of {server}'s {kind} {tool}")),
    }
}

fn print_change(ctx: &Ctx, v: &Value) {
    ctx.out.one(v, CHANGE_COLS);
    if ctx.out.format == super::output::Format::Table {
        for d in v["diff"].as_array().into_iter().flatten() {
            println!(
                "\n{}:\n  - {}\n  + {}",
                d["field"].as_str().unwrap_or("?"),
                d["old"],
                d["new"]
            );
        }
    }
}

pub async fn tools(cmd: ToolCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        ToolCmd::Changes { all } => {
            let v = ctx
                .api
                .get(if all {
                    "/api/v1/tools/changes?all=true"
                } else {
                    "/api/v1/tools/changes"
                })
                .await?;
            let items = v.as_array().cloned().unwrap_or_default();
            match ctx.out.format {
                super::output::Format::Json => ctx.out.json(&v),
                super::output::Format::Table => {
                    ctx.out.list(&items, CHANGE_COLS);
                    for c in &items {
                        for d in c["diff"].as_array().into_iter().flatten() {
                            println!(
                                "\n{} {} {}:\n  - {}\n  + {}",
                                c["server_name"].as_str().unwrap_or("?"),
                                c["tool"].as_str().unwrap_or("?"),
                                d["field"].as_str().unwrap_or("?"),
                                d["old"],
                                d["new"]
                            );
                        }
                    }
                }
            }
        }
        ToolCmd::Approve {
            server,
            tool,
            toolbox,
            kind,
        } => {
            let id = change_id(ctx, &server, (&kind, &tool), &toolbox).await?;
            print_change(
                ctx,
                &ctx.api
                    .post(
                        &format!("/api/v1/tools/changes/{}/approve", seg(&id)),
                        json!({}),
                    )
                    .await?,
            );
        }
        ToolCmd::Reject {
            server,
            tool,
            toolbox,
            kind,
        } => {
            let id = change_id(ctx, &server, (&kind, &tool), &toolbox).await?;
            print_change(
                ctx,
                &ctx.api
                    .post(
                        &format!("/api/v1/tools/changes/{}/reject", seg(&id)),
                        json!({}),
                    )
                    .await?,
            );
        }
    }
    Ok(())
}

pub async fn approvals(cmd: ApprovalCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        ApprovalCmd::List { all } => {
            let v = ctx
                .api
                .get(if all {
                    "/api/v1/approvals?all=true"
                } else {
                    "/api/v1/approvals"
                })
                .await?;
            ctx.out.list(
                v.as_array().map(Vec::as_slice).unwrap_or(&[]),
                APPROVAL_COLS,
            );
        }
        ApprovalCmd::Approve { id } => ctx.out.one(
            &ctx.api
                .post(
                    &format!("/api/v1/approvals/{}/approve", seg(&id)),
                    json!({}),
                )
                .await?,
            APPROVAL_COLS,
        ),
        ApprovalCmd::Deny { id } => ctx.out.one(
            &ctx.api
                .post(&format!("/api/v1/approvals/{}/deny", seg(&id)), json!({}))
                .await?,
            APPROVAL_COLS,
        ),
    }
    Ok(())
}
