//! `toolbelt dtma`: the toolbox agent on a remote host.

use anyhow::{Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use toolbelt_model::toolbox::ToolboxKind;

#[derive(Debug, Args)]
pub struct DtmaArgs {
    /// The control plane's URL.
    #[arg(long, env = "TOOLBELT_SERVER")]
    server: String,
    /// One-time join token (`toolbelt toolbox join-token NAME`); not needed once joined.
    #[arg(long, env = "TOOLBELT_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// Keeps the toolbox credential (mode 0600) and the last desired set.
    #[arg(long, default_value = "./toolbelt-dtma", env = "TOOLBELT_DTMA_DIR")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8871", env = "TOOLBELT_DTMA_LISTEN")]
    listen: SocketAddr,
    /// How the control plane reaches this DTMA (default http://LISTEN).
    #[arg(long, env = "TOOLBELT_DTMA_ADVERTISE_URL")]
    advertise_url: Option<String>,
    #[arg(long, value_parser = ["docker", "process"])]
    runtime: Option<String>,
    #[command(flatten)]
    tls: super::TlsArgs,
    /// Send this DTMA's spans (one per bridged request) to an OTLP/HTTP collector.
    #[arg(long, env = "TOOLBELT_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

pub async fn run(a: DtmaArgs) -> Result<()> {
    crate::run::init_logging();
    let mut shutdown = Box::pin(crate::run::shutdown_signal()?);
    let mut opts = toolbelt_dtma::DtmaOptions::new(&a.server, a.data_dir);
    opts.join_token = a.join_token;
    opts.listen = a.listen;
    opts.advertise_url = a.advertise_url;
    opts.runtime = a.runtime.as_deref().and_then(ToolboxKind::parse);
    opts.outbound = super::client::outbound()?;
    if let Some(e) = a.otlp_endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
        toolbelt_net::otel::init(e, "toolbelt-dtma", &opts.outbound)?;
    }
    let scheme = if a.tls.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    opts.tls = a.tls.files();
    // A signal while it joins or starts (a control plane that does not answer) stops it.
    let dtma = tokio::select! {
        dtma = toolbelt_dtma::start(opts) => dtma.context("the DTMA did not start")?,
        () = &mut shutdown => return Ok(()),
    };
    println!(
        "DTMA of toolbox {} serving at {scheme}://{}",
        dtma.toolbox_id, dtma.addr
    );
    shutdown.await;
    dtma.shutdown().await;
    if toolbelt_net::otel::enabled() {
        let _ = tokio::task::spawn_blocking(toolbelt_net::otel::shutdown).await;
    }
    Ok(())
}
