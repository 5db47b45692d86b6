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
    /// its always-visible tools); and how it chats (--llm and the rest).
    Update {
        agent: String,
        #[arg(long, value_parser = ["all", "search"])]
        discovery: Option<String>,
        /// A tool listed directly in search mode (server__tool); repeat for more.
        #[arg(long = "always-visible")]
        always_visible: Vec<String>,
        #[command(flatten)]
        chat: ChatSettingsArgs,
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

/// `agent update --llm …`: the agent's chat settings (the rest keep their values).
#[derive(Debug, clap::Args)]
pub struct ChatSettingsArgs {
    /// The LLM endpoint the agent chats with (`toolbelt llm add`).
    #[arg(long)]
    pub llm: Option<String>,
    /// The model (default: the endpoint's).
    #[arg(long)]
    pub model: Option<String>,
    /// The system prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// 0 to 2.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Tool rounds per turn at most (1-100, default 10).
    #[arg(long)]
    pub max_steps: Option<u32>,
}

impl ChatSettingsArgs {
    fn any(&self) -> bool {
        self.llm.is_some()
            || self.model.is_some()
            || self.system.is_some()
            || self.temperature.is_some()
            || self.max_steps.is_some()
    }
}

const CHAT_COLS: &[Col] = &[
    ("LLM", "/llm"),
    ("MODEL", "/model"),
    ("TEMPERATURE", "/temperature"),
    ("MAX STEPS", "/max_steps"),
    ("SYSTEM", "/system"),
];

/// Merges the flags given over the current settings and sets them.
async fn update_chat(ctx: &Ctx, agent: &str, a: ChatSettingsArgs) -> Result<()> {
    let path = format!("/api/v1/agents/{}/chat", seg(agent));
    let current = match ctx.api.get(&path).await {
        Ok(v) => v,
        Err(e)
            if e.downcast_ref::<super::client::ApiError>()
                .is_some_and(|p| p.status == 404 && a.llm.is_some()) =>
        {
            serde_json::Value::Null
        }
        Err(e) => return Err(e),
    };
    let pick =
        |given: Option<serde_json::Value>, key: &str| given.unwrap_or_else(|| current[key].clone());
    let body = json!({
        "llm": pick(a.llm.map(|v| json!(v)), "llm_id"),
        "model": pick(a.model.map(|v| json!(v)), "model"),
        "system": pick(a.system.map(|v| json!(v)), "system"),
        "temperature": pick(a.temperature.map(|v| json!(v)), "temperature"),
        "max_steps": pick(a.max_steps.map(|v| json!(v)), "max_steps"),
    });
    let v = ctx
        .api
        .send(reqwest::Method::PUT, &path, Some(body))
        .await?;
    ctx.out.one(&v, CHAT_COLS);
    Ok(())
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
            chat,
        } => {
            let chat_given = chat.any();
            if !chat_given || discovery.is_some() || !always_visible.is_empty() {
                super::toolsets::update(ctx, &agent, discovery, always_visible).await?;
            }
            if chat_given {
                update_chat(ctx, &agent, chat).await?;
            }
        }
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
