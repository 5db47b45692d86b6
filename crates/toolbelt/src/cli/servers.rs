//! `toolbelt server …`

use super::client::seg;
use super::output::Col;
use super::{Ctx, usage};
use anyhow::Result;
use clap::Subcommand;
use serde_json::{Map, Value, json};

const COLS: &[Col] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("TOOLBOX", "/toolbox_name"),
    ("CATALOG", "/catalog_slug"),
    ("DESIRED", "/desired"),
    ("STATUS", "/status"),
    ("RESTARTS", "/restart_count"),
    ("LAST ERROR", "/last_error"),
];

/// One server: also the image digest it is pinned to.
const ONE_COLS: &[Col] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("TOOLBOX", "/toolbox_name"),
    ("CATALOG", "/catalog_slug"),
    ("DESIRED", "/desired"),
    ("STATUS", "/status"),
    ("RESTARTS", "/restart_count"),
    ("IMAGE", "/image_digest"),
    ("LAST ERROR", "/last_error"),
];

#[derive(Debug, Subcommand)]
pub enum ServerCmd {
    /// Request a deployment of a catalog entry on a toolbox.
    Create {
        name: String,
        #[arg(long)]
        catalog: String,
        #[arg(long, default_value = "local")]
        toolbox: String,
        /// KEY=VALUE; VALUE is read as JSON when it parses (numbers, true), else as text.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// REQUIREMENT=SECRET_NAME: which secret fills a requirement of the entry.
        #[arg(long = "secret", value_name = "KEY=SECRET")]
        secrets: Vec<String>,
    },
    List {
        #[arg(long)]
        toolbox: Option<String>,
    },
    Get {
        name: String,
        #[arg(long)]
        toolbox: Option<String>,
    },
    Start {
        name: String,
        #[arg(long)]
        toolbox: Option<String>,
    },
    Stop {
        name: String,
        #[arg(long)]
        toolbox: Option<String>,
    },
    Restart {
        name: String,
        #[arg(long)]
        toolbox: Option<String>,
    },
    Delete {
        name: String,
        #[arg(long)]
        toolbox: Option<String>,
    },
    /// Move a container server to another image (audited) and re-create it: its entry's
    /// tag resolved again by its toolbox, or `--digest` (an image of the entry's repository).
    UpdateImage {
        name: String,
        #[arg(long)]
        toolbox: Option<String>,
        /// sha256:… — an image ID or a registry manifest digest.
        #[arg(long)]
        digest: Option<String>,
    },
    /// The server's log (stderr of stdio servers); `--follow` streams new lines.
    Logs {
        name: String,
        #[arg(long)]
        toolbox: Option<String>,
        #[arg(long, default_value_t = 100)]
        tail: usize,
        #[arg(short, long)]
        follow: bool,
    },
    /// CPU, memory and process count of the running instance.
    Stats {
        name: String,
        #[arg(long)]
        toolbox: Option<String>,
    },
}

fn pairs(items: &[String], flag: &str, json_values: bool) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for it in items {
        let Some((k, v)) = it.split_once('=') else {
            return usage(format!("--{flag} takes KEY=VALUE, got {it:?}"));
        };
        let v = if json_values {
            serde_json::from_str(v).unwrap_or_else(|_| json!(v))
        } else {
            json!(v)
        };
        m.insert(k.to_string(), v);
    }
    Ok(m)
}

fn path(name: &str, toolbox: &Option<String>, verb: &str) -> String {
    let q = toolbox
        .as_ref()
        .map(|t| format!("?toolbox={}", seg(t)))
        .unwrap_or_default();
    format!("/api/v1/servers/{}{verb}{q}", seg(name))
}

pub async fn run(cmd: ServerCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        ServerCmd::Create {
            name,
            catalog,
            toolbox,
            config,
            secrets,
        } => {
            let body = json!({
                "name": name, "catalog": catalog, "toolbox": toolbox,
                "config": pairs(&config, "config", true)?,
                "secrets": pairs(&secrets, "secret", false)?,
            });
            ctx.out
                .one(&ctx.api.post("/api/v1/servers", body).await?, COLS);
        }
        ServerCmd::List { toolbox } => {
            let p = match toolbox {
                Some(t) => format!("/api/v1/servers?toolbox={}", seg(&t)),
                None => "/api/v1/servers".into(),
            };
            ctx.out.list(&ctx.api.all(&p).await?, COLS);
        }
        ServerCmd::Get { name, toolbox } => ctx
            .out
            .one(&ctx.api.get(&path(&name, &toolbox, "")).await?, ONE_COLS),
        ServerCmd::Start { name, toolbox } => ctx.out.one(
            &ctx.api
                .post(&path(&name, &toolbox, "/start"), json!({}))
                .await?,
            COLS,
        ),
        ServerCmd::Stop { name, toolbox } => ctx.out.one(
            &ctx.api
                .post(&path(&name, &toolbox, "/stop"), json!({}))
                .await?,
            COLS,
        ),
        ServerCmd::Restart { name, toolbox } => ctx.out.one(
            &ctx.api
                .post(&path(&name, &toolbox, "/restart"), json!({}))
                .await?,
            COLS,
        ),
        ServerCmd::UpdateImage {
            name,
            toolbox,
            digest,
        } => {
            let body = match digest {
                Some(d) => json!({ "digest": d }),
                None => json!({}),
            };
            ctx.out.one(
                &ctx.api
                    .post(&path(&name, &toolbox, "/update-image"), body)
                    .await?,
                ONE_COLS,
            )
        }
        ServerCmd::Delete { name, toolbox } => ctx
            .out
            .one(&ctx.api.delete(&path(&name, &toolbox, "")).await?, COLS),
        ServerCmd::Logs {
            name,
            toolbox,
            tail,
            follow,
        } => {
            let sep = if toolbox.is_some() { '&' } else { '?' };
            let p = format!(
                "{}{sep}tail={tail}&follow={}",
                path(&name, &toolbox, "/logs"),
                u8::from(follow)
            );
            ctx.api.stream_to_stdout(&p).await?;
        }
        ServerCmd::Stats { name, toolbox } => {
            let v = ctx.api.get(&path(&name, &toolbox, "/stats")).await?;
            let cols: &[Col] = &[
                ("CPU %", "/cpu_percent"),
                ("MEMORY", "/memory_bytes"),
                ("LIMIT", "/memory_limit_bytes"),
                ("PIDS", "/pids"),
            ];
            ctx.out.one(&v, cols);
        }
    }
    Ok(())
}
