//! The control plane → DTMA direction: short-lived tokens signed for one toolbox, and
//! pushes of desired state so a change takes effect before the next heartbeat.

use crate::secrets::ResolveError;
use crate::state::AppState;
use std::time::Duration;
use toolbelt_model::Invalid;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::catalog::CatalogEntry;
use toolbelt_model::dtma::{DeployRequest, DesiredServer};
use toolbelt_model::server::{DesiredState, Server};
use toolbelt_model::toolbox::Toolbox;
use toolbelt_store::{StoreError, catalog, servers, toolboxes};

/// Lifetime of a signed call token.
pub const TOKEN_TTL_S: i64 = 60;

pub struct ToolboxClient {
    clients: toolbelt_net::dtma_pin::DtmaClients,
}

impl ToolboxClient {
    pub fn new(outbound: &toolbelt_net::http::Outbound) -> ToolboxClient {
        // Behind the DTMA guard: a DTMA's name must not resolve to metadata or private
        // addresses its operator may not reach through us.
        let clients = toolbelt_net::dtma_pin::DtmaClients::new(outbound, |b| {
            b.timeout(Duration::from_secs(30))
        });
        ToolboxClient { clients }
    }

    /// The client for this toolbox's DTMA: it accepts only the TLS key pinned at join.
    pub fn http(&self, toolbox: &Toolbox) -> reqwest::Client {
        self.clients.get(toolbox.dtma_tls_pin.as_deref())
    }
}

/// The toolbox's DTMA address if it may be called now (the address guard, and the TLS
/// rules: `TOOLBELT_DTMA_REQUIRE_TLS`, no plain HTTP to a pinned key).
pub fn callable_url(
    st: &AppState,
    toolbox: &Toolbox,
    url: &str,
) -> Result<(), toolbelt_net::dtma_address::BadAdvertiseUrl> {
    st.config
        .outbound
        .dtma
        .check_channel(url, toolbox.dtma_tls_pin.is_some())
        .map(|_| ())
}

/// A bearer token for calls to this toolbox's DTMA.
pub fn token_for(st: &AppState, toolbox: &Toolbox) -> String {
    st.key.sign(
        toolbox.id.as_str(),
        chrono::Utc::now().timestamp(),
        TOKEN_TTL_S,
    )
}

/// The spec a DTMA runs, from the server row and its catalog entry.
/// The secret a server acting with its owner's OAuth connection receives its access token
/// as (a file in its secrets directory).
pub const OAUTH_TOKEN_SECRET: &str = "OAUTH_ACCESS_TOKEN";

/// Whether a server gets its owner's OAuth token at deploy: its entry acts with a provider
/// and it serves one user. A shared server gets user credentials per call only.
/// Only a server this control plane deploys (not a remote URL, which gets the token per
/// call in its `Authorization` header) and that serves one user.
pub fn takes_owner_token(server: &Server, entry: &CatalogEntry) -> bool {
    entry.spec.oauth.is_some()
        && server.owner_id.is_some()
        && !matches!(
            entry.spec.source,
            toolbelt_model::catalog::CatalogSource::Remote { .. }
        )
}

/// Refused (`Invalid`) when an id or name would not be a plain path component on the
/// toolbox: rows written before a rule existed, or by hand, never reach a DTMA as paths.
/// `allowed_registries`: the server's toolbox's allow-list, which its DTMA enforces too.
pub fn desired(
    server: &Server,
    entry: &CatalogEntry,
    allowed_registries: &[String],
) -> Result<DesiredServer, Invalid> {
    let mut secrets = entry.spec.secrets.clone();
    if takes_owner_token(server, entry) {
        secrets.push(toolbelt_model::catalog::SecretRequirement {
            name: OAUTH_TOKEN_SECRET.into(),
            description: "the owner's OAuth access token".into(),
            delivery: toolbelt_model::catalog::SecretDelivery::File,
            required: true,
        });
    }
    let d = DesiredServer {
        id: server.id.clone(),
        name: server.name.to_string(),
        generation: server.generation,
        desired: server.desired,
        source: entry.spec.source.clone(),
        transport: entry.spec.transport,
        port: entry.spec.port,
        env: entry.spec.env.clone(),
        secrets,
        limits: entry.spec.limits,
        config: server.config.clone(),
        egress: entry.spec.egress.clone(),
        // Only an image has one (a row pinned before its entry changed source keeps it).
        image_digest: matches!(
            entry.spec.source,
            toolbelt_model::catalog::CatalogSource::Image { .. }
        )
        .then(|| server.image_digest.clone())
        .flatten(),
        allowed_registries: allowed_registries.to_vec(),
    };
    d.validate()?;
    Ok(d)
}

/// Pushes a server's new desired state to its toolbox now (best effort: the next
/// heartbeat reply carries it anyway).
pub fn push(st: &AppState, server: &Server) {
    let st = st.clone();
    let server = server.clone();
    tokio::spawn(async move {
        if let Err(e) = push_now(&st, &server).await {
            tracing::info!(server = %server.name, error = %e, "push to toolbox failed; the next heartbeat carries it");
        }
    });
}

/// Why a push did not reach its toolbox (logged; the next heartbeat carries the change).
#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] ResolveError),
    #[error("{}", toolbelt_net::http::describe(.0))]
    Http(#[from] reqwest::Error),
    #[error("not sent: {0}")]
    Invalid(#[from] Invalid),
    #[error("the DTMA answered {0}")]
    Refused(reqwest::StatusCode),
    #[error("the toolbox's DTMA address {0}")]
    Address(#[from] toolbelt_net::dtma_address::BadAdvertiseUrl),
}

async fn push_now(st: &AppState, server: &Server) -> Result<(), PushError> {
    let mut c = st.store.conn().await?;
    let tb = toolboxes::get_internal(&mut c, &server.toolbox_id).await?;
    let Some(url) = tb.dtma_url.clone() else {
        return Ok(());
    };
    callable_url(st, &tb, &url)?;
    let http = st.toolboxes.http(&tb);
    let token = token_for(st, &tb);
    let base = url.trim_end_matches('/');
    let res = if server.desired == DesiredState::Deleted {
        http.delete(format!("{base}/v1/servers/{}", server.name))
            .bearer_auth(token)
            .send()
            .await
    } else {
        let entry = catalog::get(&mut c, server.catalog_id.as_str()).await?;
        let server = servers::get_internal(&mut c, &server.id).await?;
        drop(c);
        // Unresolvable references: push nothing; the DTMA's own fetch reports the reason.
        let secrets = st.secrets.resolve(&server).await?;
        if !secrets.is_empty() {
            let mut ev = NewAuditEvent::new(
                AuditAction::SecretDeliver,
                TargetKind::Server,
                Some(server.id.to_string()),
            );
            ev.owner_id = server.owner_id.clone();
            ev.detail = serde_json::json!({ "names": secrets.keys().collect::<Vec<_>>(), "toolbox": tb.id, "via": "push" });
            st.store.begin_audited().await?.commit(ev).await?;
        }
        let req = DeployRequest {
            server: desired(&server, &entry, &tb.allowed_registries)?,
            secrets,
        };
        tracing::debug!(request = ?req, toolbox = %tb.name, "push to toolbox");
        http.post(format!("{base}/v1/servers"))
            .bearer_auth(token)
            .json(&req)
            .send()
            .await
    };
    let r = res?;
    if r.status().is_success() || r.status().as_u16() == 404 {
        Ok(())
    } else {
        Err(PushError::Refused(r.status()))
    }
}
