//! `toolbelt up` and `toolbelt serve`: the app of `toolbelt-app`, served until a signal.

use anyhow::Result;
use toolbelt_app::Options;

pub async fn serve(options: Options) -> Result<()> {
    init_logging();
    let mut shutdown = Box::pin(shutdown_signal()?);
    // A signal during start-up (a slow database, long migrations) stops it cleanly.
    let bound = tokio::select! {
        bound = toolbelt_app::bind(options) => bound?,
        () = &mut shutdown => return Ok(()),
    };
    // Printed before the first connection is answered: whoever sees /readyz answer can
    // read these lines.
    let base = bound.url();
    println!(
        "Toolbelt is up at {base}  ({} database, ready in {} ms)",
        bound.store().backend().as_str(),
        bound.ready_in().as_millis()
    );
    let report = bound.first_start();
    if let Some(login) = &report.login_token {
        println!(
            "First start: the admin is {}. One-time login (valid 24 h):\n  toolbelt login --url {base} --login-token {login}",
            report.admin_email.as_deref().unwrap_or("admin")
        );
    }
    bound.serve().await?.run_until(shutdown).await?;
    Ok(())
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: callers call it before they bind, so a signal that arrives
/// just after the first request was answered is a clean shutdown, not the default
/// action's death by signal.
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutting down");
    })
}

pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TOOLBELT_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
