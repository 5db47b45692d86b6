//! Posting the Deploy form. A new secret value typed in the form is sealed through the
//! secrets service (the call `POST /api/v1/secrets` and `toolbelt secret create` make)
//! under [`deploy::sealed_name`], in the server's namespace, and bound to the server; an
//! existing secret is bound by name as the API binds it. The whole deploy is checked
//! first ([`service::servers::check`]), so a refused form seals nothing; a deploy refused
//! after sealing (a race) takes its new secrets out again. A typed value is never
//! rendered, logged or put in an error. An entry needing OAuth connects the caller's
//! account after deploying, with the scopes picked, through the connection start the
//! Connections page uses.

use super::deploy::{self, CONNECT_FIELD, SCOPE_FIELD};
use crate::error::Page;
use crate::form::Form;
use crate::session::Dash;
use crate::view::Errors;
use axum::http::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use toolbelt_control::AppState;
use toolbelt_control::service::secrets::CreateSecret;
use toolbelt_control::service::servers::CreateServer;
use toolbelt_control::service::{self, ServiceError};
use toolbelt_model::FieldError;
use toolbelt_model::catalog::CatalogSpec;
use toolbelt_model::server::Server;

/// A refused form: its errors at their fields, and the status the API would answer.
pub struct Refused {
    pub errors: Errors,
    pub status: StatusCode,
}

impl From<ServiceError> for Refused {
    fn from(e: ServiceError) -> Refused {
        Refused {
            errors: Errors::from_service(&e),
            status: Page::from(e).status,
        }
    }
}

fn at(field: &str, message: impl Into<String>) -> Refused {
    Refused {
        errors: Errors {
            fields: vec![FieldError {
                field: field.into(),
                message: message.into(),
            }],
            general: None,
        },
        status: StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The secrets service's refusal of a new value, shown at its requirement: its fields
/// (`name`, `value`) are the new secret's, not the form's.
fn at_requirement(e: ServiceError, key: &str) -> Refused {
    let message = match e.fields().first() {
        Some(fe) => format!("the new secret's {} {}", fe.field, fe.message),
        None => e.to_string(),
    };
    let mut r = at(&format!("secrets.{key}"), message);
    r.status = Page::from(e).status;
    r
}

/// What a deploy did: the server, and where to connect the caller's account (the
/// provider's authorization page), when the form asked to.
pub struct Deployed {
    pub server: Server,
    pub connect: Option<Result<String, ServiceError>>,
}

/// The provider and scopes to connect with, when the form asks to connect.
async fn oauth_request(
    st: &AppState,
    d: &Dash,
    spec: &CatalogSpec,
    f: &Form,
) -> Result<Option<(String, Option<Vec<String>>)>, Refused> {
    let Some(o) = &spec.oauth else {
        return Ok(None);
    };
    if !f.checked(CONNECT_FIELD) {
        return Ok(None);
    }
    let provider = service::oauth::get_provider(st, &d.caller, &o.provider)
        .await
        .map_err(|e| {
            at(
                CONNECT_FIELD,
                format!("cannot connect to {}: {e}", o.provider),
            )
        })?;
    let offered = deploy::offered_scopes(spec, &provider.default_scopes);
    let picked: Vec<String> = f.all(SCOPE_FIELD).into_iter().map(String::from).collect();
    if let Some(s) = picked.iter().find(|s| !offered.contains(s)) {
        return Err(at(
            "oauth.scopes",
            format!("{s} is not a scope this entry or its provider offers"),
        ));
    }
    if picked.is_empty() && !offered.is_empty() {
        return Err(at(
            "oauth.scopes",
            "pick at least one scope to connect with",
        ));
    }
    Ok(Some((
        provider.name.to_string(),
        (!picked.is_empty()).then_some(picked),
    )))
}

/// Takes out the secrets this post sealed (its deploy was refused after all).
async fn unseal(st: &AppState, d: &Dash, ids: &[String]) {
    for id in ids {
        if let Err(e) = service::secrets::delete(st, &d.caller, id).await {
            tracing::warn!(secret = %id, error = %e, "cannot remove a secret of a refused deploy");
        }
    }
}

/// Checks, seals the new values, deploys, and starts the connection asked for.
pub async fn submit(
    st: &AppState,
    d: &Dash,
    spec: &CatalogSpec,
    f: &Form,
) -> Result<Deployed, Refused> {
    let name = f.text("name");
    let mut secrets = deploy::secrets_of(f);
    let new = deploy::new_values(f);
    // Requirement → the vault name its new value goes under.
    let mut to_seal: BTreeMap<String, String> = BTreeMap::new();
    for key in new.keys() {
        if secrets.contains_key(key) {
            return Err(at(
                &format!("secrets.{key}"),
                "pick an existing secret or type a new value, not both",
            ));
        }
        let sealed = deploy::sealed_name(&name, key);
        secrets.insert(key.clone(), sealed.clone());
        to_seal.insert(key.clone(), sealed);
    }
    let connect = oauth_request(st, d, spec, f).await?;
    let req = CreateServer {
        name,
        catalog: spec.slug.clone(),
        toolbox: f.text("toolbox"),
        config: deploy::config_of(spec, f),
        secrets,
    };
    let keys: BTreeSet<String> = to_seal.keys().cloned().collect();
    let tb = service::servers::check(st, &d.caller, &req, &keys).await?;
    // New values go where the server looks its secrets up: its owner's namespace, or the
    // shared one for a shared toolbox. The secrets service writes the caller's own or
    // (admins) the shared one, so another user's toolbox takes only their secrets.
    let shared = match &tb.owner_id {
        None => true,
        Some(owner) if owner == d.caller.id() => false,
        Some(_) => {
            if let Some(key) = to_seal.keys().next() {
                return Err(at(
                    &format!("secrets.{key}"),
                    "a new value is sealed in your own namespace, and this toolbox is \
                     another user's: pick one of their secrets",
                ));
            }
            false
        }
    };
    let mut sealed = Vec::new();
    for (key, vault_name) in &to_seal {
        let req = CreateSecret {
            name: vault_name.clone(),
            value: new[key].clone().into(),
            kind: None,
            shared,
        };
        match service::secrets::create(st, &d.caller, req).await {
            Ok(s) => sealed.push(s.id.to_string()),
            Err(e) => {
                unseal(st, d, &sealed).await;
                return Err(at_requirement(e, key));
            }
        }
    }
    let server = match service::servers::create(st, &d.caller, req).await {
        Ok(s) => s,
        Err(e) => {
            unseal(st, d, &sealed).await;
            return Err(e.into());
        }
    };
    let connect = match connect {
        Some((provider, scopes)) => {
            Some(super::connections::connect_to(st, d, provider, scopes, None).await)
        }
        None => None,
    };
    Ok(Deployed { server, connect })
}
