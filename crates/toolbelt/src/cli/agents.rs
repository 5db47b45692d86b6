//! `toolbelt agent …`

use super::Ctx;
use super::client::seg;
use super::output::Col;
use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

const COLS: &[Col] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("OWNER", "/owner_id"),
    ("DESCRIPTION", "/description"),
    ("DISCOVERY", "/discovery"),
    ("CREATED", "/created_at"),
];
const TOKEN_COLS: &[Col] = &[
    ("ID", "/id"),
    ("LABEL", "/label"),
    ("CREATED", "/created_at"),
    ("EXPIRES", "/expires_at"),
    ("REVOKED", "/revoked_at"),
    ("LAST USED", "/last_used_at"),
];

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Create an agent; prints its first token once.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
    Get {
        agent: String,
    },
    Delete {
        agent: String,
    },
    /// The agent's tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// How tools are listed to the agent: `all`, or `search` (find_tools, call_tool and
    /// its always-visible tools).
    Update {
        agent: String,
        #[arg(long, value_parser = ["all", "search"])]
        discovery: Option<String>,
        /// A tool listed directly in search mode (server__tool); repeat for more.
        #[arg(long = "always-visible")]
        always_visible: Vec<String>,
    },
    /// Search the agent's tools as find_tools would.
    FindTools {
        agent: String,
        query: String,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// A fresh token and ready-to-paste configuration for a desktop client.
    Connect {
        agent: String,
        #[arg(long, value_parser = ["claude", "vscode", "cursor"])]
        client: String,
        /// Only the OAuth form: the URL, no token (the client signs in through the browser
        /// and the consent page, where you pick this agent).
        #[arg(long)]
        oauth: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue another token; printed once.
    Issue {
        agent: String,
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// This token's discovery mode instead of the agent's.
        #[arg(long, value_parser = ["all", "search"])]
        discovery: Option<String>,
    },
    /// Revoke one token (`--id`) or all of them.
    Revoke {
        agent: String,
        #[arg(long)]
        id: Option<String>,
    },
    List {
        agent: String,
    },
}

pub async fn run(cmd: AgentCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        AgentCmd::Create { name, description } => {
            let v = ctx
                .api
                .post(
                    "/api/v1/agents",
                    json!({ "name": name, "description": description }),
                )
                .await?;
            let cols: &[Col] = &[("ID", "/agent/id"), ("NAME", "/agent/name")];
            ctx.out.with_secret(&v, cols, "/token/token", "Agent token");
        }
        AgentCmd::List => ctx.out.list(&ctx.api.all("/api/v1/agents").await?, COLS),
        AgentCmd::Get { agent } => ctx.out.one(
            &ctx.api
                .get(&format!("/api/v1/agents/{}", seg(&agent)))
                .await?,
            COLS,
        ),
        AgentCmd::Delete { agent } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/agents/{}", seg(&agent)))
                .await?;
            ctx.out.done(
                &v,
                &format!("Deleted agent {agent} with its tokens and grants"),
            );
        }
        AgentCmd::Update {
            agent,
            discovery,
            always_visible,
        } => super::toolsets::update(ctx, &agent, discovery, always_visible).await?,
        AgentCmd::FindTools {
            agent,
            query,
            limit,
        } => super::toolsets::find(ctx, &agent, &query, limit).await?,
        AgentCmd::Token(TokenCmd::Issue {
            agent,
            label,
            expires_in_days,
            discovery,
        }) => {
            let v = ctx
                .api
                .post(
                    &format!("/api/v1/agents/{}/tokens", seg(&agent)),
                    json!({ "label": label, "expires_in_days": expires_in_days, "discovery": discovery }),
                )
                .await?;
            let cols: &[Col] = &[
                ("ID", "/info/id"),
                ("LABEL", "/info/label"),
                ("EXPIRES", "/info/expires_at"),
            ];
            ctx.out.with_secret(&v, cols, "/token", "Agent token");
        }
        AgentCmd::Token(TokenCmd::Revoke { agent, id }) => match id {
            Some(id) => {
                let v = ctx
                    .api
                    .delete(&format!(
                        "/api/v1/agents/{}/tokens/{}",
                        seg(&agent),
                        seg(&id)
                    ))
                    .await?;
                ctx.out.done(&v, &format!("Revoked token {id}"));
            }
            None => {
                let v = ctx
                    .api
                    .delete(&format!("/api/v1/agents/{}/tokens", seg(&agent)))
                    .await?;
                ctx.out
                    .done(&v, &format!("Revoked {} token(s) of {agent}", v["revoked"]));
            }
        },
        AgentCmd::Connect {
            agent,
            client,
            oauth,
        } => super::connect::run(ctx, &agent, &client, oauth).await?,
        AgentCmd::Token(TokenCmd::List { agent }) => {
            let v = ctx
                .api
                .get(&format!("/api/v1/agents/{}/tokens", seg(&agent)))
                .await?;
            ctx.out
                .list(v.as_array().map(Vec::as_slice).unwrap_or(&[]), TOKEN_COLS);
        }
    }
    Ok(())
}
