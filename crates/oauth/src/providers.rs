//! Providers, configured by admins: a built-in kind with a client id and secret, or any
//! OAuth 2.1 / OIDC provider from its issuer's metadata or from explicit endpoints.

use crate::{OAuth, OAuthError, Result, builtin, discovery};
use serde::Deserialize;
use serde_json::json;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::name::LONG_NAME_MAX;
use toolbelt_model::oauth::{Provider, ProviderKind};
use toolbelt_model::{Name, Scope};
use toolbelt_store::oauth as rows;
use toolbelt_store::secrets::{SecretId, SecretKind};
use toolbelt_vault::{Actor, SecretValue};

/// An admin's provider definition. The client secret goes into the vault; the response
/// never carries it back.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    /// Slug used in catalog entries (`oauth.provider`) and callback URLs.
    pub name: String,
    pub kind: ProviderKind,
    /// Custom providers: discover endpoints from this issuer (RFC 8414, then OIDC).
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
    /// Absent for public clients (PKCE alone).
    pub client_secret: Option<String>,
    pub default_scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for NewProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewProvider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

fn http_url(field: &str, v: &str) -> Result<()> {
    let u =
        url::Url::parse(v).map_err(|e| OAuthError::invalid(field, format!("is not a URL: {e}")))?;
    if !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
        return Err(OAuthError::invalid(
            field,
            "must be an http(s) URL with a host",
        ));
    }
    Ok(())
}

/// The endpoints a new provider ends up with.
struct Endpoints {
    issuer: Option<String>,
    authorization: String,
    token: String,
    revocation: Option<String>,
    scopes: Vec<String>,
}

impl OAuth {
    async fn endpoints(&self, req: &NewProvider) -> Result<Endpoints> {
        if let Some(b) = builtin::of(req.kind) {
            // Explicit endpoints override a built-in's (a GitHub Enterprise host, a tenant).
            return Ok(Endpoints {
                issuer: req.issuer.clone().or(b.issuer.map(String::from)),
                authorization: req
                    .authorization_endpoint
                    .clone()
                    .unwrap_or_else(|| b.authorization_endpoint.into()),
                token: req
                    .token_endpoint
                    .clone()
                    .unwrap_or_else(|| b.token_endpoint.into()),
                revocation: req
                    .revocation_endpoint
                    .clone()
                    .or(b.revocation_endpoint.map(String::from)),
                scopes: b.default_scopes.iter().map(|s| s.to_string()).collect(),
            });
        }
        match (
            &req.issuer,
            &req.authorization_endpoint,
            &req.token_endpoint,
        ) {
            (_, Some(a), Some(t)) => Ok(Endpoints {
                issuer: req.issuer.clone(),
                authorization: a.clone(),
                token: t.clone(),
                revocation: req.revocation_endpoint.clone(),
                scopes: Vec::new(),
            }),
            (Some(issuer), _, _) => {
                let m = discovery::discover(&self.http, issuer).await?;
                Ok(Endpoints {
                    issuer: Some(m.issuer),
                    authorization: req
                        .authorization_endpoint
                        .clone()
                        .unwrap_or(m.authorization_endpoint),
                    token: req.token_endpoint.clone().unwrap_or(m.token_endpoint),
                    revocation: req.revocation_endpoint.clone().or(m.revocation_endpoint),
                    scopes: Vec::new(),
                })
            }
            _ => Err(OAuthError::invalid(
                "issuer",
                "a custom provider needs an issuer (for discovery) or both endpoints",
            )),
        }
    }

    pub async fn create_provider(&self, scope: &Scope, req: NewProvider) -> Result<Provider> {
        if !scope.is_admin() {
            return Err(OAuthError::Forbidden(
                "only admins configure providers".into(),
            ));
        }
        let name = Name::parse("name", &req.name, LONG_NAME_MAX)
            .map_err(|e| OAuthError::invalid("name", e.to_string()))?;
        if req.client_id.trim().is_empty() {
            return Err(OAuthError::invalid("client_id", "must not be empty"));
        }
        if matches!(&req.client_secret, Some(s) if s.is_empty()) {
            return Err(OAuthError::invalid(
                "client_secret",
                "must not be empty when given",
            ));
        }
        {
            let mut c = self.store.conn().await?;
            if rows::get_provider(&mut c, name.as_str()).await.is_ok() {
                return Err(OAuthError::Conflict(format!(
                    "a provider named {name} already exists"
                )));
            }
        }
        if let Some(issuer) = &req.issuer {
            http_url("issuer", issuer)?;
            // Refused before discovery connects anywhere.
            self.check_scheme("issuer", issuer)?;
        }
        let e = self.endpoints(&req).await?;
        http_url("authorization_endpoint", &e.authorization)?;
        http_url("token_endpoint", &e.token)?;
        self.check_scheme("authorization_endpoint", &e.authorization)?;
        self.check_scheme("token_endpoint", &e.token)?;
        if let Some(r) = &e.revocation {
            http_url("revocation_endpoint", r)?;
            self.check_scheme("revocation_endpoint", r)?;
        }
        let scopes = req.default_scopes.clone().unwrap_or(e.scopes);
        // The secret first (its own audited write); removed again if the row fails.
        let secret = match req.client_secret {
            Some(s) => Some(
                self.vault
                    .put_for(
                        None,
                        &Name::from_db(format!("oauth-client-{name}")),
                        SecretKind::OauthClientSecret,
                        SecretValue::from(s),
                        &Actor::user(scope),
                    )
                    .await?,
            ),
            None => None,
        };
        let mut tx = self.store.begin_audited().await?;
        let created = rows::create_provider(
            &mut tx,
            rows::NewProvider {
                name: &name,
                kind: req.kind,
                issuer: e.issuer.as_deref(),
                authorization_endpoint: &e.authorization,
                token_endpoint: &e.token,
                revocation_endpoint: e.revocation.as_deref(),
                client_id: req.client_id.trim(),
                client_secret_id: secret.as_ref().map(|m| m.id.as_str()),
                default_scopes: &scopes,
            },
        )
        .await;
        let p = match created {
            Ok(p) => p,
            Err(err) => {
                drop(tx);
                if let Some(m) = &secret {
                    let _ = self.vault.delete_by_id(&m.id, &Actor::user(scope)).await;
                }
                return Err(err.into());
            }
        };
        let mut ev = NewAuditEvent::new(
            AuditAction::ProviderCreate,
            TargetKind::Provider,
            Some(p.id.to_string()),
        );
        ev.actor_kind = toolbelt_model::audit::ActorKind::User;
        ev.actor_id = Some(scope.user_id.to_string());
        ev.detail = json!({
            "name": p.name, "kind": p.kind.as_str(), "issuer": p.issuer,
            "token_endpoint": p.token_endpoint, "client_secret": p.client_secret_id.is_some(),
        });
        tx.commit(ev).await?;
        Ok(p)
    }

    pub async fn list_providers(&self) -> Result<Vec<Provider>> {
        let mut c = self.store.conn().await?;
        Ok(rows::list_providers(&mut c).await?)
    }

    pub async fn get_provider(&self, key: &str) -> Result<Provider> {
        let mut c = self.store.conn().await?;
        rows::get_provider(&mut c, key)
            .await
            .map_err(|_| OAuthError::NotFound(format!("provider {key}")))
    }

    /// Deletes a provider with every connection to it (they cannot be refreshed without
    /// it) and its client secret.
    pub async fn delete_provider(&self, scope: &Scope, key: &str) -> Result<Provider> {
        if !scope.is_admin() {
            return Err(OAuthError::Forbidden(
                "only admins configure providers".into(),
            ));
        }
        let p = self.get_provider(key).await?;
        let mut tx = self.store.begin_audited().await?;
        let token_secrets = rows::token_secrets_of_provider(&mut tx, &p.id).await?;
        rows::delete_provider(&mut tx, &p.id).await?;
        let mut ev = NewAuditEvent::new(
            AuditAction::ProviderDelete,
            TargetKind::Provider,
            Some(p.id.to_string()),
        );
        ev.actor_kind = toolbelt_model::audit::ActorKind::User;
        ev.actor_id = Some(scope.user_id.to_string());
        ev.detail = json!({ "name": p.name });
        tx.commit(ev).await?;
        for id in p.client_secret_id.iter().chain(&token_secrets) {
            let _ = self
                .vault
                .delete_by_id(&SecretId::from_db(id.clone()), &Actor::user(scope))
                .await;
        }
        Ok(p)
    }
}
