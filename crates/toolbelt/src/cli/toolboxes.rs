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
    ("REGISTRIES", "/allowed_registries"),
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
        /// Registries its servers' images may come from (r1,r2; Docker Hub is docker.io).
        #[arg(long, value_delimiter = ',')]
        allowed_registries: Vec<String>,
    },
    /// Change a toolbox's settings.
    Update {
        toolbox: String,
        /// Replaces the registry allow-list (r1,r2); "" allows any registry again.
        #[arg(long, value_delimiter = ',')]
        allowed_registries: Option<Vec<String>>,
    },
    Delete {
        toolbox: String,
    },
    /// Issue a one-time join token for `toolbelt dtma --join-token`.
    JoinToken {
        toolbox: String,
    },
}

/// `--allowed-registries ""` is the empty list (any registry).
fn registries(given: Vec<String>) -> Vec<String> {
    given.into_iter().filter(|r| !r.trim().is_empty()).collect()
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
        ToolboxCmd::Create {
            name,
            shared,
            kind,
            allowed_registries,
        } => {
            let v = ctx
                .api
                .post(
                    "/api/v1/toolboxes",
                    json!({ "name": name, "shared": shared, "kind": kind,
                        "allowed_registries": registries(allowed_registries) }),
                )
                .await?;
            ctx.out.one(&v, COLS);
        }
        ToolboxCmd::Update {
            toolbox,
            allowed_registries,
        } => {
            let mut body = json!({});
            if let Some(r) = allowed_registries {
                body["allowed_registries"] = json!(registries(r));
            }
            let v = ctx
                .api
                .send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/toolboxes/{}", seg(&toolbox)),
                    Some(body),
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
