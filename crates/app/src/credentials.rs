//! The vault over the store, with its keys from where the options say, and OAuth on top.

use crate::error::AppError;
use crate::options::{Options, VaultKeys};
use std::sync::Arc;
use toolbelt_control::Credentials;
use toolbelt_oauth::{OAuth, OAuthConfig};
use toolbelt_store::Store;
use toolbelt_vault::{EnvKeyProvider, KeyFileProvider, KeyProvider, Vault};

/// The vault and OAuth; `public_url` is where browsers reach this app (OAuth callbacks).
pub async fn open(
    store: &Store,
    options: &Options,
    public_url: String,
) -> Result<Credentials, AppError> {
    let (keys, key_file): (Arc<dyn KeyProvider>, _) = match &options.vault_keys {
        VaultKeys::Given(v) => {
            let p = EnvKeyProvider::from_value(v).map_err(|source| AppError::VaultKeys {
                what: toolbelt_vault::ENV_VAR.into(),
                source,
            })?;
            (Arc::new(p), None)
        }
        VaultKeys::File(given) => {
            let path = options.in_data_dir(given, "vault.key");
            let f =
                KeyFileProvider::open_or_create(&path).map_err(|source| AppError::VaultKeys {
                    what: format!("the vault key file {}", path.display()),
                    source,
                })?;
            let f = Arc::new(f);
            (f.clone(), Some(f))
        }
    };
    let vault = Vault::open(store.clone(), keys)
        .await
        .map_err(AppError::Vault)?;
    let config = OAuthConfig {
        public_url,
        outbound: options.outbound.clone(),
        ..options.oauth.clone()
    };
    let oauth = OAuth::new(store.clone(), vault.clone(), config);
    Ok(Credentials {
        vault,
        key_file,
        oauth,
    })
}
