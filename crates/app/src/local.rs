//! The `local` toolbox of `toolbelt up`: its DTMA runs in this process and joins over
//! loopback like any other, with a join token minted on its first start.

use crate::error::AppError;
use crate::options::Options;
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::{Role, Scope};
use toolbelt_store::tokens::{self, Subject};
use toolbelt_store::{Store, toolboxes};

/// Starts the local toolbox's DTMA against the control plane at `base_url`.
pub async fn start(
    options: &Options,
    store: &Store,
    base_url: &str,
) -> Result<toolbelt_dtma::Dtma, AppError> {
    let dir = options.local_dtma_dir();
    let mut d = toolbelt_dtma::DtmaOptions::new(base_url, dir.clone());
    d.runtime = options.runtime;
    d.outbound = options.outbound.clone();
    // With TLS on, the local DTMA serves it too (its key pinned like any DTMA's), so
    // `TOOLBELT_DTMA_REQUIRE_TLS` holds for the local toolbox as well.
    d.tls = options.tls.clone();
    // The control plane's files: no server of the local toolbox may see them.
    d.protect = std::iter::once(options.data_dir.clone())
        .chain(std::iter::once(options.control_key_path()))
        .chain(std::iter::once(options.audit_key_path()))
        .chain(std::iter::once(options.audit_checkpoint_path()))
        .chain(options.vault_key_path())
        .collect();
    if !dir.join("credential.json").exists() {
        d.join_token = Some(join_token(store).await?);
    }
    let dtma = toolbelt_dtma::start(d)
        .await
        .map_err(AppError::LocalToolbox)?;
    tracing::info!(addr = %dtma.addr, "local toolbox ready");
    Ok(dtma)
}

/// A one-time join token for the `local` toolbox, valid ten minutes.
async fn join_token(store: &Store) -> Result<String, AppError> {
    let system = Scope {
        user_id: toolbelt_model::UserId::from_db(String::new()),
        role: Role::Member,
    };
    let mut c = store.conn().await?;
    let local = toolboxes::find_by_name(&mut c, &system, "local").await?;
    let t = token::issue(TokenKind::Join);
    let exp = toolbelt_model::now() + chrono::TimeDelta::minutes(10);
    tokens::insert(
        &mut c,
        TokenKind::Join,
        &t.digest,
        &Subject::Toolbox(local.id),
        "local dtma",
        Some(exp),
    )
    .await?;
    Ok(t.secret.clone())
}
