//! `toolbelt llm …`: LLM endpoints for chat.

use super::Ctx;
use super::client::seg;
use super::output::Col;
use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

const COLS: &[Col] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("KIND", "/kind"),
    ("BASE URL", "/base_url"),
    ("MODEL", "/model"),
    ("MAX TOOLS", "/max_tools"),
    ("KEY SECRET", "/api_key_secret"),
    ("OWNER", "/owner_id"),
];

#[derive(Debug, Subcommand)]
pub enum LlmCmd {
    /// Add an endpoint. OpenAI-style base URLs end in /v1 (https://api.openai.com/v1,
    /// http://127.0.0.1:11434/v1); Anthropic: https://api.anthropic.com (/v1 is added);
    /// Azure OpenAI (`--kind azure`, key sent as `api-key`): the deployment's URL with its
    /// API version, https://RESOURCE.openai.azure.com/openai/deployments/NAME?api-version=2024-10-21.
    /// Loopback and private addresses need TOOLBELT_SSRF_ALLOW on the server.
    Add {
        name: String,
        #[arg(long, value_parser = ["openai", "azure", "anthropic"])]
        kind: String,
        #[arg(long)]
        base_url: String,
        /// The vault secret holding the API key (`toolbelt secret create NAME --from-stdin`).
        #[arg(long)]
        api_key_secret: Option<String>,
        /// The default model.
        #[arg(long)]
        model: Option<String>,
        /// The most tools one request may carry (default 128); past it, tool search is used.
        #[arg(long)]
        max_tools: Option<u32>,
        /// A shared endpoint (admins).
        #[arg(long)]
        shared: bool,
    },
    List,
    Get {
        llm: String,
    },
    Delete {
        llm: String,
    },
}

pub async fn run(cmd: LlmCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        LlmCmd::Add {
            name,
            kind,
            base_url,
            api_key_secret,
            model,
            max_tools,
            shared,
        } => {
            let v = ctx
                .api
                .post(
                    "/api/v1/llms",
                    json!({ "name": name, "kind": kind, "base_url": base_url,
                            "api_key_secret": api_key_secret, "model": model,
                            "max_tools": max_tools, "shared": shared }),
                )
                .await?;
            ctx.out.one(&v, COLS);
        }
        LlmCmd::List => {
            let v = ctx.api.get("/api/v1/llms").await?;
            ctx.out
                .list(v.as_array().map(Vec::as_slice).unwrap_or(&[]), COLS);
        }
        LlmCmd::Get { llm } => ctx.out.one(
            &ctx.api.get(&format!("/api/v1/llms/{}", seg(&llm))).await?,
            COLS,
        ),
        LlmCmd::Delete { llm } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/llms/{}", seg(&llm)))
                .await?;
            ctx.out.done(&v, &format!("Deleted LLM endpoint {llm}"));
        }
    }
    Ok(())
}
