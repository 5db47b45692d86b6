//! The command line: global options, dispatch, configuration and exit codes
//! (0 success, 1 an error reported by the server or the network, 2 a usage error).

mod agents;
mod audit;
mod catalog;
mod chat;
pub mod client;
mod config;
mod connect;
mod dtma;
mod grants;
mod llm;
mod login;
mod oauth;
mod output;
mod review;
mod secrets;
mod servers;
mod spinner;
mod stdio;
mod toolboxes;
mod toolsets;
mod users;

use clap::{Parser, Subcommand};
use output::{Format, Out};
use std::net::SocketAddr;
use std::path::PathBuf;
use toolbelt_model::toolbox::ToolboxKind;

#[derive(Debug, Parser)]
#[command(
    name = "toolbelt",
    version,
    about = "Run MCP servers for AI agents, and decide exactly which tools each agent may use."
)]
pub struct Cli {
    /// Control plane URL (default from `toolbelt login`, else http://127.0.0.1:8870).
    #[arg(long, global = true, env = "TOOLBELT_URL")]
    pub url: Option<String>,
    /// API token.
    #[arg(long, global = true, env = "TOOLBELT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value = "table"
    )]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

/// Serve HTTPS (`up`, `serve`, `dtma`): the files are re-read when they change.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain (the server's first).
    #[arg(long, env = "TOOLBELT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TOOLBELT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn files(self) -> Option<toolbelt_net::tls::TlsFiles> {
        Some(toolbelt_net::tls::TlsFiles {
            cert: self.tls_cert?,
            key: self.tls_key?,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process on the embedded default: SQLite, a `local` toolbox.
    Up {
        #[arg(long, default_value = "./toolbelt-data", env = "TOOLBELT_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8870", env = "TOOLBELT_LISTEN")]
        listen: SocketAddr,
        /// How the local toolbox runs servers (default: docker when an engine answers).
        #[arg(long, value_parser = ["docker", "process"], env = "TOOLBELT_RUNTIME")]
        runtime: Option<String>,
        /// fsync every commit (survives power loss, not only process crashes).
        #[arg(long, env = "TOOLBELT_FSYNC")]
        fsync: bool,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// The control plane without a local toolbox (production; Postgres for replicas).
    Serve {
        #[arg(long, default_value = "./toolbelt-data", env = "TOOLBELT_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8870", env = "TOOLBELT_LISTEN")]
        listen: SocketAddr,
        #[arg(long, env = "TOOLBELT_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        #[arg(long, env = "TOOLBELT_FSYNC")]
        fsync: bool,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// The toolbox agent on this host: joins with a one-time token, runs servers.
    Dtma(dtma::DtmaArgs),
    /// Log in and remember the URL and an API token for later commands.
    Login(login::LoginArgs),
    /// Users (admins).
    #[command(subcommand)]
    User(users::UserCmd),
    /// Toolboxes: hosts that run servers.
    #[command(subcommand)]
    Toolbox(toolboxes::ToolboxCmd),
    /// The catalog of MCP server templates.
    #[command(subcommand)]
    Catalog(catalog::CatalogCmd),
    /// Deployed MCP servers.
    #[command(subcommand)]
    Server(servers::ServerCmd),
    /// Agents and their tokens.
    #[command(subcommand)]
    Agent(agents::AgentCmd),
    /// Toolsets: named subsets of an agent's tools, each its own MCP endpoint.
    #[command(subcommand)]
    Toolset(toolsets::ToolsetCmd),
    /// What each agent may use.
    #[command(subcommand)]
    Grant(grants::GrantCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Pinned tool definitions that changed.
    #[command(subcommand)]
    Tool(review::ToolCmd),
    /// Tool calls held by an `ask` rule.
    #[command(subcommand)]
    Approval(review::ApprovalCmd),
    /// Secrets in the vault (values in, metadata out).
    #[command(subcommand)]
    Secret(secrets::SecretCmd),
    /// The vault's key-encryption keys and their rotation (admins).
    #[command(subcommand)]
    Vault(secrets::VaultCmd),
    /// OAuth providers (admins configure, everyone lists).
    #[command(subcommand)]
    Provider(oauth::ProviderCmd),
    /// Your OAuth connections to providers.
    #[command(subcommand)]
    Connection(oauth::ConnectionCmd),
    /// LLM endpoints for chat (OpenAI- or Anthropic-style).
    #[command(subcommand)]
    Llm(llm::LlmCmd),
    /// Chat with an agent: its LLM calling exactly its granted tools, through the gateway.
    Chat(chat::ChatArgs),
    /// A stdio MCP server forwarding to the gateway (token from TOOLBELT_AGENT_TOKEN).
    Stdio,
}

/// A mistake in how the command was called (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(msg.into()).into())
}

pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        2
    } else {
        1
    }
}

/// What every API command gets: a client and an output.
pub struct Ctx {
    pub api: client::Client,
    pub out: Out,
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let out = Out { format: cli.output };
    match cli.command {
        Command::Up {
            data_dir,
            listen,
            runtime,
            fsync,
            tls,
        } => {
            let mut o = toolbelt_app::Options::from_env()?;
            o.data_dir = data_dir;
            o.listen = listen;
            o.local_toolbox = true;
            o.runtime = runtime.as_deref().and_then(ToolboxKind::parse);
            o.fsync_every_commit = fsync;
            o.tls = tls.files();
            crate::run::serve(o).await
        }
        Command::Dtma(args) => dtma::run(args).await,
        Command::Serve {
            data_dir,
            listen,
            database_url,
            fsync,
            tls,
        } => {
            let mut o = toolbelt_app::Options::from_env()?;
            o.data_dir = data_dir;
            o.listen = listen;
            o.database_url = database_url.filter(|u| !u.is_empty());
            o.runtime = None;
            o.fsync_every_commit = fsync;
            o.tls = tls.files();
            crate::run::serve(o).await
        }
        Command::Login(args) => login::run(args, cli.url, out).await,
        Command::Stdio => stdio::run(cli.url).await,
        cmd => {
            let (url, token) = config::resolve(cli.url, cli.token)?;
            let ctx = Ctx {
                api: client::Client::new(&url, token)?,
                out,
            };
            match cmd {
                Command::User(c) => users::run(c, &ctx).await,
                Command::Toolbox(c) => toolboxes::run(c, &ctx).await,
                Command::Catalog(c) => catalog::run(c, &ctx).await,
                Command::Server(c) => servers::run(c, &ctx).await,
                Command::Agent(c) => agents::run(c, &ctx).await,
                Command::Grant(c) => grants::run(c, &ctx).await,
                Command::Toolset(c) => toolsets::run(c, &ctx).await,
                Command::Audit(c) => audit::run(c, &ctx).await,
                Command::Tool(c) => review::tools(c, &ctx).await,
                Command::Approval(c) => review::approvals(c, &ctx).await,
                Command::Secret(c) => secrets::secret(c, &ctx).await,
                Command::Vault(c) => secrets::vault(c, &ctx).await,
                Command::Provider(c) => oauth::provider(c, &ctx).await,
                Command::Connection(c) => oauth::connection(c, &ctx).await,
                Command::Llm(c) => llm::run(c, &ctx).await,
                Command::Chat(a) => chat::run(a, &ctx).await,
                Command::Up { .. }
                | Command::Serve { .. }
                | Command::Login(_)
                | Command::Dtma(_)
                | Command::Stdio => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
