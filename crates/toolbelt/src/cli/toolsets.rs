//! Tool search from the CLI: `toolbelt toolset …`, and the agent commands that set its
//! discovery (`agent update`) and search its tools (`agent find-tools`).

use super::Ctx;
use super::client::seg;
use super::output::Col;
use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

const COLS: &[Col] = &[
    ("NAME", "/name"),
    ("ENDPOINT", "/path"),
    ("TOOLS", "/tools"),
];
const FOUND: &[Col] = &[
    ("NAME", "/name"),
    ("SCORE", "/score"),
    ("DESCRIPTION", "/description"),
];

#[derive(Debug, Subcommand)]
pub enum ToolsetCmd {
    /// A named subset of an agent's granted tools, served at /mcp/toolsets/NAME.
    Create {
        name: String,
        #[arg(long)]
        agent: String,
        /// A tool as the agent sees it (server__tool); repeat for more.
        #[arg(long = "tool", required = true)]
        tools: Vec<String>,
    },
    List {
        #[arg(long)]
        agent: String,
    },
    Delete {
        name: String,
        #[arg(long)]
        agent: String,
    },
}

pub async fn run(cmd: ToolsetCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        ToolsetCmd::Create { name, agent, tools } => {
            let v = ctx
                .api
                .post(
                    &format!("/api/v1/agents/{}/toolsets", seg(&agent)),
                    json!({ "name": name, "tools": tools }),
                )
                .await?;
            ctx.out.one(&v, COLS);
        }
        ToolsetCmd::List { agent } => {
            let v = ctx
                .api
                .get(&format!("/api/v1/agents/{}/toolsets", seg(&agent)))
                .await?;
            ctx.out
                .list(v.as_array().map(Vec::as_slice).unwrap_or(&[]), COLS);
        }
        ToolsetCmd::Delete { name, agent } => {
            let v = ctx
                .api
                .delete(&format!(
                    "/api/v1/agents/{}/toolsets/{}",
                    seg(&agent),
                    seg(&name)
                ))
                .await?;
            ctx.out
                .done(&v, &format!("Deleted toolset {name} of {agent}"));
        }
    }
    Ok(())
}

/// `agent update NAME [--discovery all|search] [--always-visible TOOL]…`
pub async fn update(
    ctx: &Ctx,
    agent: &str,
    discovery: Option<String>,
    always: Vec<String>,
) -> Result<()> {
    let mut body = json!({});
    if let Some(d) = discovery {
        body["discovery"] = json!(d);
    }
    if !always.is_empty() {
        body["always_visible"] = json!(always);
    }
    let v = ctx
        .api
        .send(
            Method::PATCH,
            &format!("/api/v1/agents/{}", seg(agent)),
            Some(body),
        )
        .await?;
    let cols: &[Col] = &[
        ("NAME", "/agent/name"),
        ("DISCOVERY", "/agent/discovery"),
        ("ALWAYS VISIBLE", "/always_visible"),
    ];
    ctx.out.one(&v, cols);
    Ok(())
}

/// `agent find-tools AGENT "query"`; `-o json` prints `[{name, description, score}]`.
pub async fn find(ctx: &Ctx, agent: &str, query: &str, limit: Option<u32>) -> Result<()> {
    let mut path = format!("/api/v1/agents/{}/find-tools?q={}", seg(agent), seg(query));
    if let Some(l) = limit {
        path.push_str(&format!("&limit={l}"));
    }
    let v: Value = ctx.api.get(&path).await?;
    ctx.out
        .list(v.as_array().map(Vec::as_slice).unwrap_or(&[]), FOUND);
    Ok(())
}
