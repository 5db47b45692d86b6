//! `toolbelt user …`

use super::Ctx;
use super::client::seg;
use super::output::Col;
use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

const COLS: &[Col] = &[
    ("ID", "/id"),
    ("EMAIL", "/email"),
    ("ROLE", "/role"),
    ("CREATED", "/created_at"),
];

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user; prints their first API token once.
    Create {
        email: String,
        #[arg(long, value_parser = ["admin", "member"])]
        role: String,
        /// Also set a password (read from TOOLBELT_PASSWORD).
        #[arg(long)]
        with_password: bool,
    },
    List,
    Get {
        user: String,
    },
    /// Make a user an admin or a member (admins; never yourself).
    SetRole {
        /// Id or email.
        user: String,
        #[arg(value_parser = ["admin", "member"])]
        role: String,
    },
    Delete {
        user: String,
    },
}

pub async fn run(cmd: UserCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        UserCmd::Create {
            email,
            role,
            with_password,
        } => {
            let mut body = json!({ "email": email, "role": role });
            if with_password {
                body["password"] = json!(std::env::var("TOOLBELT_PASSWORD").unwrap_or_default());
            }
            let v = ctx.api.post("/api/v1/users", body).await?;
            let cols: &[Col] = &[
                ("ID", "/user/id"),
                ("EMAIL", "/user/email"),
                ("ROLE", "/user/role"),
            ];
            ctx.out.with_secret(&v, cols, "/token/token", "API token");
        }
        UserCmd::List => ctx.out.list(&ctx.api.all("/api/v1/users").await?, COLS),
        UserCmd::Get { user } => ctx.out.one(
            &ctx.api
                .get(&format!("/api/v1/users/{}", seg(&user)))
                .await?,
            COLS,
        ),
        UserCmd::SetRole { user, role } => {
            let v = ctx
                .api
                .send(
                    Method::PATCH,
                    &format!("/api/v1/users/{}", seg(&user)),
                    Some(json!({ "role": role })),
                )
                .await?;
            ctx.out.done(
                &v,
                &format!(
                    "{} is now {}",
                    v["email"].as_str().unwrap_or(&user),
                    v["role"].as_str().unwrap_or(&role)
                ),
            );
        }
        UserCmd::Delete { user } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/users/{}", seg(&user)))
                .await?;
            ctx.out.done(
                &v,
                &format!("Deleted user {}", v["email"].as_str().unwrap_or(&user)),
            );
        }
    }
    Ok(())
}
