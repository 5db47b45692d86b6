//! The authorization-code flow with PKCE S256, in three steps:
//!
//! 1. [`OAuth::create_flow`] (API or CLI, any credential): a flow row with its PKCE
//!    verifier, and a start URL on this control plane.
//! 2. [`OAuth::begin`] (the start URL, opened in the user's browser with their dashboard
//!    session): binds the flow to that session, mints the `state` (only its digest is
//!    stored) and answers the provider's authorization URL.
//! 3. [`OAuth::complete`] (the provider's redirect to the callback, same browser): the
//!    state is taken once, must belong to this provider and this session, and the code is
//!    exchanged with the verifier. The tokens go into the vault, the connection row is
//!    written, and the flow records the outcome for the CLI that polls it.

use crate::client::ProviderClient;
use crate::tokens::{self, Issued};
use crate::{OAuth, OAuthError, Result, builtin};
use chrono::Duration as ChronoDuration;
use oauth2::PkceCodeVerifier;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::oauth::{Connection, Provider};
use toolbelt_model::{ConnectionId, FlowId, UserId};
use toolbelt_store::oauth::{self as rows, Flow, NewConnection, NewFlow};
use toolbelt_store::secrets::{SecretId, SecretKind};
use toolbelt_vault::Actor;

/// A created flow: open `start_url` in a browser logged in to the dashboard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StartedFlow {
    pub flow_id: FlowId,
    pub provider: String,
    pub scopes: Vec<String>,
    pub start_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Where a flow stands, for the CLI that started it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FlowStatus {
    /// Waiting for the browser (start URL not opened yet, or the provider not answered).
    Pending {
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    Connected {
        connection: Box<Connection>,
    },
    Failed {
        error: String,
    },
    Expired,
}

/// What the provider's redirect carried.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub(crate) fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

impl OAuth {
    /// An `oauth2` client for a provider, with its client secret opened from the vault.
    pub(crate) async fn client_for(&self, p: &Provider, purpose: &str) -> Result<ProviderClient> {
        // Also for providers configured before the rule (or while plain HTTP was allowed).
        self.check_scheme("token_endpoint", &p.token_endpoint)?;
        if let Some(r) = &p.revocation_endpoint {
            self.check_scheme("revocation_endpoint", r)?;
        }
        let secret = match &p.client_secret_id {
            Some(id) => {
                let v = self
                    .vault
                    .open_by_id(&SecretId::from_db(id.clone()), &Actor::system(purpose))
                    .await?;
                Some(
                    v.expose_str()
                        .ok_or_else(|| OAuthError::Malformed("client secret is not text".into()))?
                        .to_string(),
                )
            }
            None => None,
        };
        ProviderClient::new(
            p,
            secret,
            &self.redirect_uri(p.name.as_str()),
            self.http.clone(),
        )
    }

    pub async fn create_flow(
        &self,
        owner: &UserId,
        provider: &str,
        scopes: Option<Vec<String>>,
        login_hint: Option<String>,
    ) -> Result<StartedFlow> {
        self.new_flow(owner, provider, scopes, login_hint, None)
            .await
    }

    /// A flow that re-authorizes `owner`'s connection `id` (one that needs re-authorization,
    /// or whose scopes should change): the callback puts the new tokens on that connection,
    /// so every grant of it holds. Scopes default to the connection's own. Someone else's
    /// connection is not found, admins included: only its owner can sign in as its owner.
    pub async fn create_reconnect_flow(
        &self,
        owner: &UserId,
        id: &ConnectionId,
        scopes: Option<Vec<String>>,
        login_hint: Option<String>,
    ) -> Result<StartedFlow> {
        let conn = {
            let mut c = self.store.conn().await?;
            rows::get_connection_internal(&mut c, id).await
        };
        let conn = match conn {
            Ok(conn) if &conn.owner_id == owner => conn,
            Ok(_) | Err(toolbelt_store::StoreError::NotFound) => {
                return Err(OAuthError::NotFound(format!("connection {id}")));
            }
            Err(e) => return Err(e.into()),
        };
        let scopes = scopes.or_else(|| Some(conn.scopes.clone()));
        self.new_flow(owner, conn.provider.as_str(), scopes, login_hint, Some(id))
            .await
    }

    async fn new_flow(
        &self,
        owner: &UserId,
        provider: &str,
        scopes: Option<Vec<String>>,
        login_hint: Option<String>,
        reconnects: Option<&ConnectionId>,
    ) -> Result<StartedFlow> {
        let mut c = self.store.conn().await?;
        let p = rows::get_provider(&mut c, provider)
            .await
            .map_err(|_| OAuthError::invalid("provider", format!("no provider {provider}")))?;
        let scopes = scopes.unwrap_or_else(|| p.default_scopes.clone());
        for s in &scopes {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(OAuthError::invalid(
                    "scopes",
                    format!("{s:?} is not a scope"),
                ));
            }
        }
        if let Some(h) = &login_hint
            && (h.len() > 256 || h.chars().any(char::is_control))
        {
            return Err(OAuthError::invalid(
                "login_hint",
                "is not a plausible login hint",
            ));
        }
        let verifier = PkceCodeVerifier::new(random_token());
        let expires_at = toolbelt_model::now()
            + ChronoDuration::from_std(self.config.flow_ttl).unwrap_or_default();
        // No state yet: it is minted when the browser opens the start URL.
        let pending = format!("pending:{}", random_token());
        let f = rows::insert_flow(
            &mut c,
            NewFlow {
                owner_id: owner,
                provider_id: &p.id,
                state_digest: &pending,
                session_digest: None,
                scopes: &scopes,
                verifier: verifier.secret(),
                redirect_uri: &self.redirect_uri(p.name.as_str()),
                login_hint: login_hint.as_deref(),
                reconnects,
                expires_at,
            },
        )
        .await?;
        let _ = rows::purge_expired_flows(&mut c).await;
        Ok(StartedFlow {
            start_url: format!(
                "{}/oauth/{}/start?flow={}",
                self.config.public_url.trim_end_matches('/'),
                p.name,
                f.id
            ),
            flow_id: f.id,
            provider: p.name.to_string(),
            scopes,
            expires_at,
        })
    }

    /// Binds a flow to the session opening its start URL and returns the provider's
    /// authorization URL. Only the flow's own user may open it.
    pub async fn begin(
        &self,
        provider: &str,
        flow: &FlowId,
        user: &UserId,
        session_digest: &str,
    ) -> Result<String> {
        let mut c = self.store.conn().await?;
        let f = rows::get_flow(&mut c, user, flow)
            .await
            .map_err(|_| OAuthError::State(format!("no flow {flow} of yours")))?;
        let p = rows::get_provider(&mut c, f.provider_id.as_str()).await?;
        if p.name.as_str() != provider {
            return Err(OAuthError::State(format!(
                "flow {flow} is for provider {}, not {provider}",
                p.name
            )));
        }
        if f.expires_at < toolbelt_model::now() {
            return Err(OAuthError::State(format!(
                "flow {flow} has expired; start again"
            )));
        }
        if f.connection_id.is_some() || f.error.is_some() || f.verifier.is_empty() {
            return Err(OAuthError::State(format!("flow {flow} has already ended")));
        }
        rows::bind_flow(&mut c, &f.id, session_digest)
            .await
            .map_err(|e| OAuthError::State(e.to_string()))?;
        let state = random_token();
        rows::set_flow_state(&mut c, &f.id, &digest(&state)).await?;
        drop(c);
        let client = self.client_for(&p, "oauth.authorize").await?;
        let extra = builtin::of(p.kind).map_or(&[][..], |b| b.extra_params);
        Ok(client.authorize_url(
            &f.scopes,
            state,
            &PkceCodeVerifier::new(f.verifier.clone()),
            f.login_hint.as_deref(),
            extra,
        ))
    }

    /// Handles the provider's redirect. Every failure ends the flow (its state is spent)
    /// and stores nothing but the flow's outcome.
    pub async fn complete(
        &self,
        provider: &str,
        cb: Callback,
        session_digest: Option<&str>,
    ) -> Result<Connection> {
        let Some(state) = cb.state.as_deref().filter(|s| !s.is_empty()) else {
            return Err(OAuthError::State("the callback carries no state".into()));
        };
        let f = {
            let mut c = self.store.conn().await?;
            rows::take_flow_by_state(&mut c, &digest(state))
                .await
                .map_err(|_| {
                    OAuthError::State(
                        "unknown or already used state: start the connection again".into(),
                    )
                })?
        };
        match self.finish(provider, &f, cb, session_digest).await {
            Ok(conn) => Ok(conn),
            Err(e) => {
                let mut tx = self.store.begin_audited().await?;
                rows::finish_flow(&mut tx, &f.id, None, Some(&e.to_string())).await?;
                let mut ev =
                    NewAuditEvent::new(AuditAction::ConnectionCreate, TargetKind::Connection, None);
                ev.actor_kind = ActorKind::User;
                ev.actor_id = Some(f.owner_id.to_string());
                ev.owner_id = Some(f.owner_id.clone());
                ev.outcome = Outcome::Failure;
                ev.detail = json!({ "flow": f.id, "provider": provider, "error": e.to_string() });
                tx.commit(ev).await?;
                Err(e)
            }
        }
    }

    async fn finish(
        &self,
        provider: &str,
        f: &Flow,
        cb: Callback,
        session_digest: Option<&str>,
    ) -> Result<Connection> {
        let p = {
            let mut c = self.store.conn().await?;
            rows::get_provider(&mut c, f.provider_id.as_str()).await?
        };
        if p.name.as_str() != provider {
            return Err(OAuthError::State(format!(
                "this state belongs to a flow for provider {}, not {provider}",
                p.name
            )));
        }
        if f.expires_at < toolbelt_model::now() {
            return Err(OAuthError::State(
                "the flow expired before the provider answered".into(),
            ));
        }
        match (f.session_digest.as_deref(), session_digest) {
            (Some(a), Some(b)) if a == b => {}
            _ => {
                return Err(OAuthError::State(
                    "the callback did not come from the browser session that started the flow"
                        .into(),
                ));
            }
        }
        if let Some(error) = cb.error {
            return Err(OAuthError::Provider {
                error,
                description: cb.error_description,
            });
        }
        let code = cb
            .code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::invalid("code", "the callback carries no code"))?;
        let client = self.client_for(&p, "oauth.exchange").await?;
        let issued = client.exchange(code, f.verifier.clone()).await?;
        self.store_connection(&p, f, issued).await
    }

    /// Seals the tokens and writes the connection: a new one, or for a reconnect flow the
    /// connection it names (same id and token secret, a new version of it). A connection
    /// revoked while its owner was at the provider is not brought back: a new one is made.
    async fn store_connection(&self, p: &Provider, f: &Flow, issued: Issued) -> Result<Connection> {
        let existing = match &f.reconnects {
            Some(id) => {
                let mut c = self.store.conn().await?;
                rows::get_connection_internal(&mut c, id)
                    .await
                    .ok()
                    .filter(|c| c.owner_id == f.owner_id && c.provider_id == p.id)
            }
            None => None,
        };
        let id = existing
            .as_ref()
            .map_or_else(ConnectionId::generate, |c| c.id.clone());
        let actor = Actor {
            kind: ActorKind::User,
            id: Some(f.owner_id.to_string()),
            purpose: "oauth.callback".into(),
        };
        let meta = self
            .vault
            .put_for(
                Some(&f.owner_id),
                &tokens::secret_name(&id),
                SecretKind::OauthToken,
                issued.tokens.to_secret(),
                &actor,
            )
            .await?;
        let now = toolbelt_model::now();
        let scopes = issued.scopes.unwrap_or_else(|| f.scopes.clone());
        let row = NewConnection {
            id: &id,
            owner_id: &f.owner_id,
            provider_id: &p.id,
            scopes: &scopes,
            token_secret_id: meta.id.as_str(),
            has_refresh: issued.tokens.refresh_token.is_some(),
            expires_at: tokens::expiry(now, issued.expires_in),
            next_refresh_at: issued
                .tokens
                .refresh_token
                .as_ref()
                .and_then(|_| tokens::next_refresh(&self.config, now, issued.expires_in)),
        };
        let mut tx = self.store.begin_audited().await?;
        let action = if existing.is_some() {
            if !rows::reauthorize(&mut tx, row).await? {
                // Revoked between the read above and now: its secret went with it.
                tx.rollback().await?;
                let _ = self.vault.delete_by_id(&meta.id, &actor).await;
                return Err(OAuthError::State(format!(
                    "connection {id} was revoked while it was being re-authorized; connect again"
                )));
            }
            AuditAction::ConnectionReconnect
        } else {
            rows::insert_connection(&mut tx, row).await?;
            AuditAction::ConnectionCreate
        };
        let conn = rows::get_connection_internal(&mut tx, &id).await?;
        rows::finish_flow(&mut tx, &f.id, Some(&id), None).await?;
        let mut ev = NewAuditEvent::new(action, TargetKind::Connection, Some(id.to_string()));
        ev.actor_kind = ActorKind::User;
        ev.actor_id = Some(f.owner_id.to_string());
        ev.owner_id = Some(f.owner_id.clone());
        ev.detail = json!({
            "provider": p.name, "scopes": scopes, "flow": f.id,
            "expires_at": conn.expires_at, "refresh_token": conn.has_refresh_token,
        });
        if let (Some(old), Some(new_of)) = (&existing, &f.reconnects) {
            ev.detail["reconnects"] = json!(new_of);
            ev.detail["previous_status"] = json!(old.status);
        }
        tx.commit(ev).await?;
        // Servers holding this owner's token at deploy roll to the new one (as on refresh).
        self.cache.forget(&id);
        let _ = self.refreshed.send(id.clone());
        Ok(conn)
    }

    pub async fn flow_status(&self, owner: &UserId, id: &FlowId) -> Result<FlowStatus> {
        let mut c = self.store.conn().await?;
        let f = rows::get_flow(&mut c, owner, id)
            .await
            .map_err(|_| OAuthError::NotFound(format!("flow {id}")))?;
        Ok(match (&f.connection_id, &f.error) {
            (Some(cid), _) => FlowStatus::Connected {
                connection: Box::new(rows::get_connection_internal(&mut c, cid).await?),
            },
            (None, Some(e)) => FlowStatus::Failed { error: e.clone() },
            _ if f.expires_at < toolbelt_model::now() => FlowStatus::Expired,
            _ => FlowStatus::Pending {
                expires_at: f.expires_at,
            },
        })
    }
}
