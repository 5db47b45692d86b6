//! `toolbelt catalog …`

use super::client::seg;
use super::output::Col;
use super::{Ctx, usage};
use anyhow::{Context, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

const COLS: &[Col] = &[
    ("SLUG", "/slug"),
    ("STATUS", "/status"),
    ("TRANSPORT", "/transport"),
    ("SOURCE", "/source/type"),
    ("DESCRIPTION", "/description"),
];

#[derive(Debug, Subcommand)]
pub enum CatalogCmd {
    /// List entries (`--all` includes deprecated ones).
    List {
        #[arg(long)]
        all: bool,
    },
    Get {
        slug: String,
    },
    /// Add an entry (admins): from flags, or the full entry from `--file` (YAML or JSON).
    Create {
        slug: String,
        #[arg(long, conflicts_with_all = ["command", "remote_url"])]
        image: Option<String>,
        /// A program and its arguments, split on spaces (no shell is involved).
        #[arg(long, conflicts_with = "remote_url")]
        command: Option<String>,
        /// A remote server's URL. (Not `--url`: that global option, also read from
        /// TOOLBELT_URL, names the control plane.)
        #[arg(long = "remote-url", id = "remote_url")]
        url: Option<String>,
        #[arg(long, value_parser = ["pypi", "npm", "binary"], default_value = "binary")]
        manager: String,
        #[arg(long, value_parser = ["stdio", "streamable_http", "sse"])]
        transport: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Replace an entry with the one in `--file` (admins).
    Update {
        slug: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// New servers can no longer use it; existing ones keep running (admins).
    Deprecate {
        slug: String,
    },
    /// Remove an entry no server uses (admins).
    Delete {
        slug: String,
    },
}

fn read_file(path: &PathBuf) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // YAML is a superset of JSON: one parser reads both.
    serde_norway::from_str(&text)
        .with_context(|| format!("{} is neither YAML nor JSON", path.display()))
}

/// Splits a command line on whitespace, honouring simple quotes; never runs a shell.
pub fn split_command(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub async fn run(cmd: CatalogCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        CatalogCmd::List { all } => {
            let path = if all {
                "/api/v1/catalog?include_deprecated=true"
            } else {
                "/api/v1/catalog"
            };
            ctx.out.list(&ctx.api.all(path).await?, COLS);
        }
        CatalogCmd::Get { slug } => ctx.out.one(
            &ctx.api
                .get(&format!("/api/v1/catalog/{}", seg(&slug)))
                .await?,
            COLS,
        ),
        CatalogCmd::Create {
            slug,
            image,
            command,
            url,
            manager,
            transport,
            port,
            description,
            file,
        } => {
            let mut spec = match &file {
                Some(f) => read_file(f)?,
                None => json!({}),
            };
            spec["slug"] = json!(slug);
            if let Some(img) = image {
                spec["source"] = json!({ "type": "image", "image": img });
            } else if let Some(cmdline) = command {
                let argv = split_command(&cmdline);
                let package = argv.first().cloned().unwrap_or_default();
                spec["source"] = json!({ "type": "package", "manager": manager, "package": package, "command": argv });
            } else if let Some(u) = url {
                spec["source"] = json!({ "type": "remote", "url": u });
            } else if file.is_none() {
                return usage(
                    "give --image, --command or --remote-url (or the whole entry with --file)",
                );
            }
            if let Some(t) = transport {
                spec["transport"] = json!(t);
            } else if spec.get("transport").is_none() {
                return usage("give --transport stdio|streamable_http|sse");
            }
            if let Some(p) = port {
                spec["port"] = json!(p);
            }
            if let Some(d) = description {
                spec["description"] = json!(d);
            }
            ctx.out
                .one(&ctx.api.post("/api/v1/catalog", spec).await?, COLS);
        }
        CatalogCmd::Update { slug, file } => {
            let mut spec = read_file(&file)?;
            spec["slug"] = json!(slug);
            let v = ctx
                .api
                .send(
                    Method::PUT,
                    &format!("/api/v1/catalog/{}", seg(&slug)),
                    Some(spec),
                )
                .await?;
            ctx.out.one(&v, COLS);
        }
        CatalogCmd::Deprecate { slug } => {
            let v = ctx
                .api
                .post(
                    &format!("/api/v1/catalog/{}/deprecate", seg(&slug)),
                    json!({}),
                )
                .await?;
            ctx.out.done(&v, &format!("Deprecated {slug}"));
        }
        CatalogCmd::Delete { slug } => {
            let v = ctx
                .api
                .delete(&format!("/api/v1/catalog/{}", seg(&slug)))
                .await?;
            ctx.out.done(&v, &format!("Deleted {slug}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_split_without_a_shell() {
        assert_eq!(
            super::split_command("python3 -m mcp_server_time"),
            ["python3", "-m", "mcp_server_time"]
        );
        assert_eq!(
            super::split_command("a 'b c' \"\" d;rm"),
            ["a", "b c", "", "d;rm"]
        );
    }
}
