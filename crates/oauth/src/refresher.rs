//! The refresher: renews access tokens before they expire, whether or not anyone is using
//! them. Each replica polls for due connections and takes a lease row before refreshing
//! one, so a rotating refresh token is presented exactly once.

use crate::tokens::{self, TokenSet};
use crate::{OAuth, OAuthError, Result};
use chrono::Duration as ChronoDuration;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use toolbelt_model::ConnectionId;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_store::oauth::{self as rows, RefreshOutcome};
use toolbelt_store::secrets::{SecretId, SecretKind};
use toolbelt_vault::Actor;

/// What one refresh attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshResult {
    Refreshed,
    /// Another replica (or task) holds the lease, or the connection is not active.
    Skipped,
    /// A transient failure; retried later.
    Retrying(String),
    /// The provider refused: the connection needs re-authorization.
    NeedsReauth(String),
}

/// Longest wait between retries of a failing refresh.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl OAuth {
    /// Runs until the task is dropped: every tick, refreshes what is due (up to
    /// `concurrency` at once).
    pub async fn run_refresher(self) {
        let limit = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
        loop {
            match self.refresh_due(&limit).await {
                Ok(0) => tokio::time::sleep(self.config.tick).await,
                // A full batch: there may be more due right away.
                Ok(_) => tokio::task::yield_now().await,
                Err(e) => {
                    tracing::warn!(error = %e, "refresher: cannot list due connections");
                    tokio::time::sleep(self.config.tick).await;
                }
            }
        }
    }

    /// Refreshes every connection due now; returns how many were picked.
    pub async fn refresh_due(&self, limit: &Arc<tokio::sync::Semaphore>) -> Result<usize> {
        let due = {
            let mut c = self.store.conn().await?;
            rows::due(&mut c, toolbelt_model::now(), 512).await?
        };
        let n = due.len();
        let mut tasks = tokio::task::JoinSet::new();
        for id in due {
            let permit = limit.clone().acquire_owned().await.expect("never closed");
            let me = self.clone();
            tasks.spawn(async move {
                let r = me.refresh(&id, true).await;
                drop(permit);
                if let Err(e) = r {
                    tracing::warn!(connection = %id, error = %e, "refresh failed");
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        Ok(n)
    }

    /// Refreshes one connection now (due or not) if this replica wins its lease.
    pub async fn refresh_one(&self, id: &ConnectionId) -> Result<RefreshResult> {
        self.refresh(id, false).await
    }

    async fn refresh(&self, id: &ConnectionId, only_if_due: bool) -> Result<RefreshResult> {
        let until =
            toolbelt_model::now() + ChronoDuration::from_std(self.config.lease).unwrap_or_default();
        let won = {
            let mut c = self.store.conn().await?;
            rows::acquire_lease(&mut c, id, &self.replica, until, only_if_due).await?
        };
        if !won {
            return Ok(RefreshResult::Skipped);
        }
        let attempt = self.attempt(id).await;
        let (conn, outcome) = match attempt {
            Ok(x) => x,
            Err(e) => {
                // Could not even try (store or vault trouble): give the lease back.
                let retry_at = toolbelt_model::now()
                    + ChronoDuration::from_std(self.config.retry_base).unwrap_or_default();
                let msg = e.to_string();
                let mut c = self.store.conn().await?;
                rows::record_refresh(
                    &mut c,
                    id,
                    &self.replica,
                    RefreshOutcome::Retry {
                        error: &msg,
                        retry_at,
                    },
                )
                .await?;
                return Err(e);
            }
        };
        let mut tx = self.store.begin_audited().await?;
        let mut ev = NewAuditEvent::new(
            AuditAction::ConnectionRefresh,
            TargetKind::Connection,
            Some(id.to_string()),
        );
        ev.owner_id = Some(conn.owner_id.clone());
        ev.detail = json!({ "provider": conn.provider });
        let result = match outcome {
            Attempt::Ok {
                secret_id,
                issued_expiry,
                has_refresh,
                scopes,
                next,
            } => {
                rows::record_refresh(
                    &mut tx,
                    id,
                    &self.replica,
                    RefreshOutcome::Refreshed {
                        token_secret_id: &secret_id,
                        has_refresh,
                        expires_at: issued_expiry,
                        scopes: scopes.as_deref(),
                        next_refresh_at: next,
                    },
                )
                .await?;
                ev.detail["expires_at"] = json!(issued_expiry);
                RefreshResult::Refreshed
            }
            Attempt::Refused(e) => {
                rows::record_refresh(
                    &mut tx,
                    id,
                    &self.replica,
                    RefreshOutcome::NeedsReauth { error: &e },
                )
                .await?;
                ev.outcome = Outcome::Failure;
                ev.detail["error"] = json!(e);
                ev.detail["status"] = json!("needs_reauth");
                RefreshResult::NeedsReauth(e)
            }
            Attempt::Transient(e) => {
                let failures = conn.refresh_failures + 1;
                ev.outcome = Outcome::Failure;
                ev.detail["error"] = json!(e);
                if failures >= self.config.max_failures {
                    let why = format!("{failures} refresh attempts failed; last: {e}");
                    rows::record_refresh(
                        &mut tx,
                        id,
                        &self.replica,
                        RefreshOutcome::NeedsReauth { error: &why },
                    )
                    .await?;
                    ev.detail["status"] = json!("needs_reauth");
                    RefreshResult::NeedsReauth(why)
                } else {
                    let wait = self
                        .config
                        .retry_base
                        .saturating_mul(1 << (conn.refresh_failures.clamp(0, 16) as u32))
                        .min(MAX_BACKOFF);
                    let retry_at =
                        toolbelt_model::now() + ChronoDuration::from_std(wait).unwrap_or_default();
                    rows::record_refresh(
                        &mut tx,
                        id,
                        &self.replica,
                        RefreshOutcome::Retry {
                            error: &e,
                            retry_at,
                        },
                    )
                    .await?;
                    ev.detail["retry_at"] = json!(retry_at);
                    RefreshResult::Retrying(e)
                }
            }
        };
        tx.commit(ev).await?;
        self.cache.forget(id);
        if result == RefreshResult::Refreshed {
            let _ = self.refreshed.send(id.clone());
        }
        Ok(result)
    }

    /// Asks the provider for new tokens and seals them; the row is updated by the caller.
    async fn attempt(
        &self,
        id: &ConnectionId,
    ) -> Result<(toolbelt_model::oauth::Connection, Attempt)> {
        let (conn, p) = {
            let mut c = self.store.conn().await?;
            let conn = rows::get_connection_internal(&mut c, id).await?;
            let p = rows::get_provider(&mut c, conn.provider_id.as_str()).await?;
            (conn, p)
        };
        let sid = conn
            .token_secret_id
            .clone()
            .ok_or_else(|| OAuthError::Malformed("the connection holds no tokens".into()))?;
        let old = TokenSet::from_secret(
            &self
                .vault
                .open_by_id(&SecretId::from_db(sid), &Actor::system("oauth.refresh"))
                .await?,
        )?;
        let Some(rt) = old.refresh_token.as_deref() else {
            return Ok((conn, Attempt::Refused("no refresh token".into())));
        };
        let client = self.client_for(&p, "oauth.refresh").await?;
        let issued = match client.refresh(rt).await {
            Ok(i) => i,
            Err(e @ OAuthError::Provider { .. }) => {
                return Ok((conn, Attempt::Refused(e.to_string())));
            }
            // An unreadable answer may be a proxy's error page: retried, then given up.
            Err(e @ (OAuthError::Unreachable(_) | OAuthError::Malformed(_))) => {
                return Ok((conn, Attempt::Transient(e.to_string())));
            }
            Err(e) => return Err(e),
        };
        let now = toolbelt_model::now();
        let meta = self
            .vault
            .put_for(
                Some(&conn.owner_id),
                &tokens::secret_name(&conn.id),
                SecretKind::OauthToken,
                issued.tokens.to_secret(),
                &Actor::system("oauth.refresh"),
            )
            .await?;
        let has_refresh = issued.tokens.refresh_token.is_some();
        Ok((
            conn,
            Attempt::Ok {
                secret_id: meta.id.to_string(),
                issued_expiry: tokens::expiry(now, issued.expires_in),
                has_refresh,
                scopes: issued.scopes,
                next: has_refresh
                    .then(|| tokens::next_refresh(&self.config, now, issued.expires_in))
                    .flatten(),
            },
        ))
    }
}

enum Attempt {
    Ok {
        secret_id: String,
        issued_expiry: Option<toolbelt_model::Timestamp>,
        has_refresh: bool,
        scopes: Option<Vec<String>>,
        next: Option<toolbelt_model::Timestamp>,
    },
    /// The provider said no: retrying will not help.
    Refused(String),
    Transient(String),
}
