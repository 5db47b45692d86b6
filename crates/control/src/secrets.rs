//! The seam to the vault: a server's secret references resolved to values, for the DTMA
//! only, only when it must (re)create that server.

use std::collections::BTreeMap;
use toolbelt_model::UserId;
use toolbelt_model::server::Server;
use toolbelt_oauth::OAuthError;
use toolbelt_store::{StoreError, secrets};
use toolbelt_vault::{Actor, Vault, VaultError};

/// Why a server's references do not resolve; shown to the DTMA (and so in the server's
/// `last_error`) as its message.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("secret {name} (for {requirement}) is not in {namespace} namespace")]
    Missing {
        name: String,
        requirement: String,
        namespace: &'static str,
    },
    #[error("secret {name} (for {requirement}): {source}")]
    Unopenable {
        name: String,
        requirement: String,
        source: VaultError,
    },
    #[error("secret {name} (for {requirement}) is not text")]
    NotText { name: String, requirement: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

#[async_trait::async_trait]
pub trait SecretResolver: Send + Sync {
    /// Requirement name → value, for every secret the server references.
    async fn resolve(&self, server: &Server) -> Result<BTreeMap<String, String>, ResolveError>;
}

/// Resolves references in the server's own namespace: a member's server reads its owner's
/// secrets, a shared server the shared ones — never anyone else's.
pub struct VaultResolver {
    vault: Vault,
    oauth: Option<toolbelt_oauth::OAuth>,
}

impl VaultResolver {
    pub fn new(vault: Vault, oauth: Option<toolbelt_oauth::OAuth>) -> VaultResolver {
        VaultResolver { vault, oauth }
    }
}

/// Where a server's secret references point: its owner's namespace, or the shared one.
pub fn namespace_label(owner: Option<&UserId>) -> &'static str {
    if owner.is_some() {
        "the server owner's"
    } else {
        "the shared"
    }
}

#[async_trait::async_trait]
impl SecretResolver for VaultResolver {
    async fn resolve(&self, server: &Server) -> Result<BTreeMap<String, String>, ResolveError> {
        let mut out = BTreeMap::new();
        let actor = Actor::system(&format!("deploy {}", server.name));
        for (requirement, name) in &server.secrets {
            let row = {
                let mut c = self.vault.store().conn().await?;
                secrets::find_in_namespace(&mut c, server.owner_id.as_ref(), name).await?
            };
            let Some(row) = row else {
                return Err(ResolveError::Missing {
                    name: name.clone(),
                    requirement: requirement.clone(),
                    namespace: namespace_label(server.owner_id.as_ref()),
                });
            };
            let v = self
                .vault
                .open_by_id(&row.meta.id, &actor)
                .await
                .map_err(|source| ResolveError::Unopenable {
                    name: name.clone(),
                    requirement: requirement.clone(),
                    source,
                })?;
            let s = v.expose_str().ok_or_else(|| ResolveError::NotText {
                name: name.clone(),
                requirement: requirement.clone(),
            })?;
            out.insert(requirement.clone(), s.to_string());
        }
        // A server serving one user and acting with a provider gets that user's token.
        if let (Some(owner), Some(oauth)) = (&server.owner_id, &self.oauth) {
            let entry = {
                let mut c = self.vault.store().conn().await?;
                toolbelt_store::catalog::get(&mut c, server.catalog_id.as_str()).await?
            };
            if let Some(req) = &entry.spec.oauth {
                let (_, token) = oauth
                    .owner_token(owner, &req.provider, &format!("deploy {}", server.name))
                    .await?;
                out.insert(crate::toolbox_client::OAUTH_TOKEN_SECRET.into(), token);
            }
        }
        Ok(out)
    }
}
