//! Connections after they exist: listing, revocation, and the gateway's credential look-up.

use crate::tokens::TokenSet;
use crate::{OAuth, OAuthError, Result};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use toolbelt_model::audit::{AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::oauth::{Connection, ConnectionStatus};
use toolbelt_model::{AgentId, ConnectionId, Page, Scope, ServerId, Timestamp};
use toolbelt_store::oauth as rows;
use toolbelt_store::secrets::SecretId;
use toolbelt_vault::Actor;

/// The credential an upstream request carries for one agent through one server.
#[derive(Clone)]
pub struct Credential {
    pub connection_id: ConnectionId,
    pub provider: String,
    /// `Bearer <access token>`.
    pub authorization: Arc<str>,
    /// Changes whenever the tokens do (a refresh), so pooled sessions can tell.
    pub stamp: Timestamp,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("connection_id", &self.connection_id)
            .field("provider", &self.provider)
            .field("authorization", &"[redacted]")
            .finish()
    }
}

/// Opened access tokens by connection, valid while the connection row is unchanged;
/// and when each connection's `last_used_at` was last written.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<ConnectionId, (Timestamp, Arc<str>)>>,
    used: Mutex<HashMap<ConnectionId, Instant>>,
}

/// How often a busy connection's `last_used_at` is written (not on every call).
const USED_EVERY: Duration = Duration::from_secs(30);

/// What a revocation did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    pub connection: Connection,
    /// The provider's revocation endpoint accepted the tokens.
    pub provider_revoked: bool,
    /// Why the provider was not told (no endpoint, or it failed); deleted here anyway.
    pub provider_note: Option<String>,
}

impl OAuth {
    pub async fn list_connections(
        &self,
        scope: &Scope,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Connection>> {
        let mut c = self.store.conn().await?;
        Ok(rows::list_connections(&mut c, scope, limit, after).await?)
    }

    pub async fn get_connection(&self, scope: &Scope, id: &str) -> Result<Connection> {
        let nf = || OAuthError::NotFound(format!("connection {id}"));
        let id = ConnectionId::parse(id).ok_or_else(nf)?;
        let mut c = self.store.conn().await?;
        rows::get_connection(&mut c, scope, &id)
            .await
            .map_err(|_| nf())
    }

    /// Revokes at the provider (when it has an RFC 7009 endpoint) and deletes here, with
    /// the connection's grants: the next call that would have used it fails.
    pub async fn revoke(&self, scope: &Scope, id: &str) -> Result<Revoked> {
        let conn = self.get_connection(scope, id).await?;
        let p = {
            let mut c = self.store.conn().await?;
            rows::get_provider(&mut c, conn.provider_id.as_str()).await?
        };
        let actor = Actor::user(scope);
        let told = match &conn.token_secret_id {
            Some(sid) => {
                let sid = SecretId::from_db(sid.clone());
                let opened = self
                    .vault
                    .open_by_id(
                        &sid,
                        &Actor {
                            purpose: "oauth.revoke".into(),
                            ..actor.clone()
                        },
                    )
                    .await;
                match opened
                    .map_err(OAuthError::from)
                    .and_then(|v| TokenSet::from_secret(&v))
                {
                    Ok(t) => match self.client_for(&p, "oauth.revoke").await {
                        Ok(client) => client.revoke(&t).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
            None => Ok(false),
        };
        let (provider_revoked, provider_note) = match told {
            Ok(true) => (true, None),
            Ok(false) => (
                false,
                Some(format!(
                    "provider {} has no revocation endpoint: remove the app's access there too",
                    p.name
                )),
            ),
            Err(e) => (
                false,
                Some(format!("the provider's revocation failed: {e}")),
            ),
        };
        let mut tx = self.store.begin_audited().await?;
        rows::delete_connection(&mut tx, &conn.id).await?;
        let mut ev = NewAuditEvent::new(
            AuditAction::ConnectionRevoke,
            TargetKind::Connection,
            Some(conn.id.to_string()),
        );
        ev.actor_kind = actor.kind;
        ev.actor_id = actor.id.clone();
        ev.owner_id = Some(conn.owner_id.clone());
        ev.detail = json!({
            "provider": p.name, "provider_revoked": provider_revoked, "note": provider_note,
        });
        tx.commit(ev).await?;
        if let Some(sid) = &conn.token_secret_id {
            let _ = self
                .vault
                .delete_by_id(&SecretId::from_db(sid.clone()), &actor)
                .await;
        }
        self.cache.forget(&conn.id);
        Ok(Revoked {
            connection: conn,
            provider_revoked,
            provider_note,
        })
    }

    /// The access token of `owner`'s active connection to `provider`, for a server that
    /// serves only that user (delivered at deploy; a refresh rolls the server).
    pub async fn owner_token(
        &self,
        owner: &toolbelt_model::UserId,
        provider: &str,
        purpose: &str,
    ) -> Result<(ConnectionId, String)> {
        let conn = {
            let mut c = self.store.conn().await?;
            rows::active_for_owner(&mut c, owner, provider).await?
        }
        .ok_or_else(|| {
            OAuthError::Forbidden(format!(
                "the server acts with a {provider} connection, and its owner has no active one"
            ))
        })?;
        let sid = conn.token_secret_id.clone().ok_or_else(|| {
            OAuthError::Forbidden(format!("connection {} holds no tokens", conn.id))
        })?;
        let v = self
            .vault
            .open_by_id(&SecretId::from_db(sid), &Actor::system(purpose))
            .await?;
        let t = TokenSet::from_secret(&v)?;
        Ok((conn.id, t.access_token.clone()))
    }

    /// The credential to list a server's tools with on behalf of one connection: only
    /// when that connection is active and its owner granted it for this server (None
    /// otherwise: the token goes to no server its owner did not grant it to).
    pub async fn credential_for_discovery(
        &self,
        server: &ServerId,
        connection: &ConnectionId,
        provider: &str,
    ) -> Result<Option<Credential>> {
        let conn = {
            let mut c = self.store.conn().await?;
            rows::for_discovery(&mut c, server, connection, provider).await?
        };
        match conn {
            Some(conn) => self
                .token_of(conn, &Actor::system("oauth.discovery"))
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// The credential `agent`'s call through `server` carries: from a connection grant of
    /// that agent, only ever one of the agent owner's connections (the query joins on it).
    /// `required`: the provider the server's catalog entry asks for; without a grant the
    /// call is refused rather than sent without credentials.
    pub async fn credential_for(
        &self,
        agent: &AgentId,
        server: &ServerId,
        required: Option<&str>,
    ) -> Result<Option<Credential>> {
        let conn = {
            let mut c = self.store.conn().await?;
            rows::for_agent_server(&mut c, agent, server, required).await?
        };
        let Some(conn) = conn else {
            return match required {
                Some(p) => Err(OAuthError::Forbidden(format!(
                    "this server acts with a {p} connection, and the agent has no connection grant for it"
                ))),
                None => Ok(None),
            };
        };
        let conn = match conn.status {
            ConnectionStatus::NeedsReauth => {
                return Err(OAuthError::Forbidden(format!(
                    "connection {} to {} needs re-authorization: its owner reconnects it (toolbelt connection reconnect {})",
                    conn.id, conn.provider, conn.id
                )));
            }
            // An expired token is refreshed now rather than sent to fail upstream.
            ConnectionStatus::Active
                if conn.has_refresh_token
                    && conn.expires_at.is_some_and(|e| e <= toolbelt_model::now()) =>
            {
                self.refresh_one(&conn.id).await?;
                let mut c = self.store.conn().await?;
                rows::get_connection_internal(&mut c, &conn.id).await?
            }
            ConnectionStatus::Active => conn,
        };
        if conn.status != ConnectionStatus::Active {
            return Err(OAuthError::Forbidden(format!(
                "connection {} to {} needs re-authorization: {}",
                conn.id,
                conn.provider,
                conn.last_error.as_deref().unwrap_or("connect again")
            )));
        }
        self.token_of(conn, &Actor::agent(agent, "oauth.inject"))
            .await
            .map(Some)
    }

    /// The connection's access token as a credential (opened once per token version).
    async fn token_of(&self, conn: Connection, actor: &Actor) -> Result<Credential> {
        let token = match self.cache.get(&conn.id, conn.updated_at) {
            Some(t) => t,
            None => {
                let sid = conn.token_secret_id.clone().ok_or_else(|| {
                    OAuthError::Forbidden(format!("connection {} holds no tokens", conn.id))
                })?;
                let v = self
                    .vault
                    .open_by_id(&SecretId::from_db(sid), actor)
                    .await?;
                let t = TokenSet::from_secret(&v)?;
                let auth: Arc<str> = Arc::from(format!("Bearer {}", t.access_token));
                self.cache.put(&conn.id, conn.updated_at, auth.clone());
                auth
            }
        };
        if self.cache.used_due(&conn.id) {
            let mut c = self.store.conn().await?;
            let _ = rows::touch_used(&mut c, &conn.id).await;
        }
        Ok(Credential {
            connection_id: conn.id,
            provider: conn.provider.to_string(),
            authorization: token,
            stamp: conn.updated_at,
        })
    }
}

impl TokenCache {
    fn get(&self, id: &ConnectionId, stamp: Timestamp) -> Option<Arc<str>> {
        let m = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, t)| t.clone())
    }

    fn put(&self, id: &ConnectionId, stamp: Timestamp, token: Arc<str>) {
        let mut m = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(id.clone(), (stamp, token));
    }

    pub(crate) fn forget(&self, id: &ConnectionId) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    fn used_due(&self, id: &ConnectionId) -> bool {
        let mut m = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match m.get(id) {
            Some(t) if now.duration_since(*t) < USED_EVERY => false,
            _ => {
                m.insert(id.clone(), now);
                true
            }
        }
    }
}
