//! `toolbelt up` and `toolbelt serve`: the app of `toolbelt-app`, served until a signal.

use anyhow::Result;
use toolbelt_app::Options;

pub async fn serve(options: Options) -> Result<()> {
    init_logging();
    let bound = toolbelt_app::bind(options).await?;
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
    bound.serve().await?.run_until(shutdown_signal()).await?;
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
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
