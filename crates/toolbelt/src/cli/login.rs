//! `toolbelt login`: exchange a one-time login token or email + password for an API token.

use super::client::Client;
use super::output::Out;
use super::{config, usage};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::io::BufRead;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The one-time login printed by `toolbelt up` on first start.
    #[arg(long)]
    login_token: Option<String>,
    /// Log in with a password (read from TOOLBELT_PASSWORD or the first line of stdin).
    #[arg(long)]
    email: Option<String>,
}

pub async fn run(args: LoginArgs, url: Option<String>, out: Out) -> Result<()> {
    let (url, _) = config::resolve(url, None)?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "cli".into());
    let body = match (&args.login_token, &args.email) {
        (Some(t), None) => json!({ "login_token": t, "api_token_label": format!("cli@{host}") }),
        (None, Some(e)) => {
            let password = match std::env::var("TOOLBELT_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("cannot read the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            json!({ "email": e, "password": password, "api_token_label": format!("cli@{host}") })
        }
        _ => return usage("give exactly one of --login-token or --email"),
    };
    let res = Client::new(&url, None)?.post("/api/v1/login", body).await?;
    let token = res["token"]
        .as_str()
        .context("the server returned no token")?
        .to_string();
    let path = config::save(&config::Saved {
        url: Some(url.clone()),
        token: Some(token),
    })?;
    out.done(
        &res["user"],
        &format!(
            "Logged in to {url} as {} ({}). The token is kept in {}.",
            res["user"]["email"].as_str().unwrap_or("?"),
            res["user"]["role"].as_str().unwrap_or("?"),
            path.display()
        ),
    );
    Ok(())
}
