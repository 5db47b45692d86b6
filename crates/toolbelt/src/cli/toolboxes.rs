//! `toolbelt toolbox …`

use super::Ctx;
use super::client::seg;
use super::output::Col;
use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

const COLS: &[Col] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("SHARED", "/shared"),
    ("KIND", "/kind"),
    ("STATUS", "/status"),
    ("ISOLATION", "/isolation"),
    ("LAST HEARTBEAT", "/last_heartbeat_at"),
];

#[derive(Debug, Subcommand)]
pub enum ToolboxCmd {
    List,
    Get {
        toolbox: String,
    },
    /// Create a toolbox: private to you, or shared (admins).
    Create {
        name: String,
        #[arg(long)]
        shared: bool,
        /// `remote`: holds remote (URL) servers, runs no DTMA.
        #[arg(long, value_parser = ["remote"])]
        kind: Option<String>,
    },
    Delete {
        toolbox: String,
    },
    /// Issue a one-time join token for `toolbelt dtma --join-token`.
    JoinToken {
        toolbox: String,
    },
}

pub async fn run(cmd: ToolboxCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        ToolboxCmd::List => ctx.out.list(&ctx.api.all("/api/v1/toolboxes").await?, COLS),
        ToolboxCmd::Get { toolbox } => ctx.out.one(
            &ctx.api
                .get(&format!("/api/v1/toolboxes/{}", seg(&toolbox)))
                .await?,
            COLS,
        ),
        ToolboxCmd::Create { name, shared, kind } => {
            let v = ctx
                .api
                .post(
                    "/api/v1/toolboxes",
                    json!({ "name": name, "shared": shared, "kind": kind }),
                )
                .await?;
            ctx.out.one(&v, COLS);
        }
        ToolboxCmd::Delete { toolbox } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/toolboxes/{}", seg(&toolbox)))
                .await?;
            ctx.out.done(
                &v,
                &format!("Deleted toolbox {}", v["name"].as_str().unwrap_or(&toolbox)),
            );
        }
        ToolboxCmd::JoinToken { toolbox } => {
            let v = ctx
                .api
                .post(
                    &format!("/api/v1/toolboxes/{}/join-token", seg(&toolbox)),
                    json!({}),
                )
                .await?;
            let cols: &[Col] = &[("TOOLBOX", "/toolbox_id"), ("EXPIRES", "/expires_at")];
            ctx.out
                .with_secret(&v, cols, "/token", "Join token (works once)");
        }
    }
    Ok(())
}
