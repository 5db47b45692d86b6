//! `toolbelt grant …`

use super::client::seg;
use super::output::Col;
use super::{Ctx, usage};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

const COLS: &[Col] = &[
    ("ID", "/id"),
    ("AGENT", "/agent_id"),
    ("KIND", "/kind"),
    ("TOOLBOX", "/toolbox_id"),
    ("SERVER", "/server_id"),
    ("TOOL", "/tool"),
    ("CONNECTION", "/connection_id"),
    ("RULE", "/rule"),
    ("ACTIVE", "/active"),
];

#[derive(Debug, Args)]
pub struct Selector {
    #[arg(long)]
    agent: String,
    /// A toolbox grant (or, with --server, the toolbox the server is on).
    #[arg(long)]
    toolbox: Option<String>,
    #[arg(long)]
    server: Option<String>,
    /// The server's own tool name (a tool rule).
    #[arg(long, requires = "server")]
    tool: Option<String>,
    /// An OAuth connection of the agent's owner (with --server: through that server only).
    #[arg(long, conflicts_with_all = ["tool", "toolbox"])]
    connection: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GrantCmd {
    Create {
        #[command(flatten)]
        sel: Selector,
        #[arg(long, value_parser = ["allow", "deny", "ask"])]
        rule: Option<String>,
    },
    List {
        #[arg(long)]
        agent: Option<String>,
    },
    /// Delete the grant the selectors name (or `--id`).
    Delete {
        #[arg(long, conflicts_with_all = ["agent", "toolbox", "server", "tool"])]
        id: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        toolbox: Option<String>,
        #[arg(long)]
        server: Option<String>,
        #[arg(long, requires = "server")]
        tool: Option<String>,
    },
}

pub async fn run(cmd: GrantCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        GrantCmd::Create { sel, rule } => {
            if sel.toolbox.is_none() && sel.server.is_none() && sel.connection.is_none() {
                return usage("give --toolbox, --server, --server with --tool, or --connection");
            }
            let body = json!({ "agent": sel.agent, "toolbox": sel.toolbox, "server": sel.server, "tool": sel.tool, "rule": rule, "connection": sel.connection });
            ctx.out
                .one(&ctx.api.post("/api/v1/grants", body).await?, COLS);
        }
        GrantCmd::List { agent } => {
            let p = match agent {
                Some(a) => format!("/api/v1/grants?agent={}", seg(&a)),
                None => "/api/v1/grants".into(),
            };
            ctx.out.list(&ctx.api.all(&p).await?, COLS);
        }
        GrantCmd::Delete {
            id,
            agent,
            toolbox,
            server,
            tool,
        } => {
            let id = match (id, agent) {
                (Some(id), _) => id,
                (None, Some(agent)) => find(ctx, &agent, toolbox, server, tool).await?,
                (None, None) => {
                    return usage(
                        "give --id, or --agent with the grant's --toolbox/--server/--tool",
                    );
                }
            };
            let v = ctx
                .api
                .delete(&format!("/api/v1/grants/{}", seg(&id)))
                .await?;
            ctx.out.done(&v, &format!("Deleted grant {id}"));
        }
    }
    Ok(())
}

/// Resolves selectors to one grant id through the API (names as the server resolves them).
async fn find(
    ctx: &Ctx,
    agent: &str,
    toolbox: Option<String>,
    server: Option<String>,
    tool: Option<String>,
) -> Result<String> {
    let grants = ctx
        .api
        .all(&format!("/api/v1/grants?agent={}", seg(agent)))
        .await?;
    let server_id = match &server {
        Some(s) => {
            let q = toolbox
                .as_ref()
                .map(|t| format!("?toolbox={}", seg(t)))
                .unwrap_or_default();
            Some(
                ctx.api
                    .get(&format!("/api/v1/servers/{}{q}", seg(s)))
                    .await?["id"]
                    .clone(),
            )
        }
        None => None,
    };
    let toolbox_id = match (&toolbox, &server) {
        (Some(t), None) => Some(
            ctx.api
                .get(&format!("/api/v1/toolboxes/{}", seg(t)))
                .await?["id"]
                .clone(),
        ),
        _ => None,
    };
    let kind = match (&server, &tool) {
        (Some(_), Some(_)) => "tool",
        (Some(_), None) => "server",
        (None, _) => "toolbox",
    };
    let hit = grants.iter().find(|g| {
        g["kind"] == kind
            && server_id.as_ref().is_none_or(|s| &g["server_id"] == s)
            && toolbox_id.as_ref().is_none_or(|t| &g["toolbox_id"] == t)
            && tool
                .as_ref()
                .is_none_or(|t| g["tool"] == Value::String(t.clone()))
    });
    match hit.and_then(|g| g["id"].as_str()) {
        Some(id) => Ok(id.to_string()),
        None => Err(super::client::ApiError {
            status: 404,
            kind: "not-found".into(),
            detail: "no grant matches those selectors".into(),
            fields: vec![],
        }
        .into()),
    }
}
