//! The token endpoint (RFC 6749 §4.1.3, §6 with rotation per OAuth 2.1 §4.3.1) and
//! revocation (RFC 7009). A code is exchanged once, with the PKCE verifier whose SHA-256
//! is its challenge, at the redirect URI it was issued for; presented again, it revokes
//! the tokens its exchange issued (RFC 6749 §4.1.2). Each refresh rotates the
//! refresh token; presenting a used one again means it leaked, so the whole family (every
//! token of that consent) is revoked.

use super::error::{AuthzError, OAuthCode};
use super::{ACCESS_PREFIX, ACCESS_TTL, Issuer, REFRESH_PREFIX, REFRESH_TTL, secs};
use crate::state::AppState;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::token::{self, TokenDigest};
use toolbelt_model::{McpFamilyId, McpTokenId, now};
use toolbelt_store::AnyConnection;
use toolbelt_store::mcp_auth::{self, Code, FoundToken, Grant, TokenKind};

/// The token request's form fields (public clients: `client_id` in the body).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn required<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str, AuthzError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthzError::request(format!("{name} is required")))
}

/// RFC 7636 §4.1: 43-128 unreserved characters.
fn verifier_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn known_client(c: &mut AnyConnection, id: &str) -> Result<(), AuthzError> {
    match mcp_auth::get_client(c, id).await? {
        Some(_) => Ok(()),
        None => Err(AuthzError::client(format!("unknown client_id {id:?}"))),
    }
}

/// A `resource` parameter, if sent, must be the one the grant is for (RFC 8707 §2.2).
fn same_resource(issuer: &Issuer, asked: &Option<String>, grant: &Grant) -> Result<(), AuthzError> {
    match asked {
        Some(r) if !issuer.is_resource(r) || !issuer.is_resource(&grant.resource) => {
            Err(AuthzError::new(
                OAuthCode::InvalidTarget,
                format!(
                    "resource {r:?} is not the one this grant is for ({})",
                    grant.resource
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Mints an access and a refresh token in `family`.
async fn mint(
    c: &mut AnyConnection,
    family: &str,
    scope: Option<String>,
) -> Result<TokenResponse, AuthzError> {
    let access = token::issue_prefixed(ACCESS_PREFIX);
    let refresh = token::issue_prefixed(REFRESH_PREFIX);
    let at = now();
    mcp_auth::insert_token(
        c,
        &McpTokenId::generate().to_string(),
        family,
        TokenKind::Access,
        &access.digest,
        at + secs(ACCESS_TTL),
    )
    .await?;
    mcp_auth::insert_token(
        c,
        &McpTokenId::generate().to_string(),
        family,
        TokenKind::Refresh,
        &refresh.digest,
        at + secs(REFRESH_TTL),
    )
    .await?;
    Ok(TokenResponse {
        access_token: access.secret.clone(),
        token_type: "Bearer",
        expires_in: ACCESS_TTL.as_secs(),
        refresh_token: refresh.secret.clone(),
        scope,
    })
}

/// The token endpoint: `authorization_code` or `refresh_token`.
pub async fn token(
    st: &AppState,
    issuer: &Issuer,
    r: TokenRequest,
) -> Result<TokenResponse, AuthzError> {
    match r.grant_type.as_str() {
        "authorization_code" => exchange(st, issuer, r).await,
        "refresh_token" => refresh(st, issuer, r).await,
        "" => Err(AuthzError::request("grant_type is required")),
        g => Err(AuthzError::new(
            OAuthCode::UnsupportedGrantType,
            format!("grant_type {g:?}: this server supports authorization_code and refresh_token"),
        )),
    }
}

async fn exchange(
    st: &AppState,
    issuer: &Issuer,
    r: TokenRequest,
) -> Result<TokenResponse, AuthzError> {
    let client_id = required(&r.client_id, "client_id")?;
    let code = required(&r.code, "code")?;
    let verifier = required(&r.code_verifier, "code_verifier (PKCE)")?;
    let redirect_uri = required(&r.redirect_uri, "redirect_uri")?;
    let mut tx = st.store.begin().await?;
    known_client(&mut tx, client_id).await?;
    let found = mcp_auth::find_code(&mut tx, &TokenDigest::of(code))
        .await?
        .ok_or_else(|| AuthzError::grant("unknown authorization code"))?;
    if found.grant.client_id != client_id {
        return Err(AuthzError::grant("the code was issued to another client"));
    }
    if found.used_at.is_some() {
        drop(tx);
        return Err(code_replayed(st, &found).await);
    }
    if found.expires_at <= now() {
        return Err(AuthzError::grant("the code expired"));
    }
    if found.redirect_uri != redirect_uri {
        return Err(AuthzError::grant(
            "redirect_uri differs from the one of the authorization request",
        ));
    }
    if !verifier_ok(verifier) {
        return Err(AuthzError::request(
            "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]",
        ));
    }
    // Both sides are public (the challenge travelled in a URL): no timing to protect.
    if s256(verifier) != found.code_challenge {
        return Err(AuthzError::grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    same_resource(issuer, &r.resource, &found.grant)?;
    if !mcp_auth::use_code(&mut tx, &found.id).await? {
        drop(tx);
        return Err(code_replayed(st, &found).await);
    }
    let family = McpFamilyId::generate().to_string();
    mcp_auth::insert_family_of(&mut tx, &family, &found.grant, Some(&found.id)).await?;
    let res = mint(&mut tx, &family, found.grant.scope.clone()).await?;
    tx.commit()
        .await
        .map_err(toolbelt_store::StoreError::from)?;
    Ok(res)
}

/// A used code came back (RFC 6749 §4.1.2): whoever presents it may have stolen it, and the
/// tokens its first exchange issued may be in the wrong hands too, so they stop now.
async fn code_replayed(st: &AppState, code: &Code) -> AuthzError {
    let killed = async {
        let mut tx = st.store.begin_audited().await?;
        let n = mcp_auth::revoke_families_of_code(&mut tx, &code.id).await?;
        tx.commit(NewAuditEvent {
            actor_kind: ActorKind::Agent,
            actor_id: Some(code.grant.agent_id.to_string()),
            owner_id: Some(code.grant.user_id.clone()),
            action: AuditAction::McpClientReplay,
            target_kind: TargetKind::McpClient,
            target_id: Some(code.grant.client_id.clone()),
            outcome: Outcome::Denied,
            detail: json!({ "code": code.id, "revoked_families": n }),
        })
        .await?;
        Ok::<_, toolbelt_store::StoreError>(())
    };
    if let Err(e) = killed.await {
        tracing::error!(error = %e, code = %code.id, "revoking the tokens of a reused code failed");
    }
    AuthzError::grant("the code was already used; the tokens issued for it are revoked")
}

/// What the audit records when a family dies (a replay or a revocation).
fn family_event(action: AuditAction, f: &FoundToken, outcome: Outcome) -> NewAuditEvent {
    NewAuditEvent {
        actor_kind: ActorKind::Agent,
        actor_id: Some(f.grant.agent_id.to_string()),
        owner_id: Some(f.grant.user_id.clone()),
        action,
        target_kind: TargetKind::McpClient,
        target_id: Some(f.grant.client_id.clone()),
        outcome,
        detail: json!({
            "client_name": f.client_name,
            "family": f.family_id,
            "token_kind": f.kind.as_str(),
        }),
    }
}

async fn refresh(
    st: &AppState,
    issuer: &Issuer,
    r: TokenRequest,
) -> Result<TokenResponse, AuthzError> {
    let client_id = required(&r.client_id, "client_id")?;
    let presented = required(&r.refresh_token, "refresh_token")?;
    let mut c = st.store.conn().await?;
    known_client(&mut c, client_id).await?;
    let found = mcp_auth::find_token(&mut c, &TokenDigest::of(presented))
        .await?
        .filter(|t| t.kind == TokenKind::Refresh)
        .ok_or_else(|| AuthzError::grant("unknown refresh token"))?;
    drop(c);
    if found.grant.client_id != client_id {
        return Err(AuthzError::grant(
            "the refresh token was issued to another client",
        ));
    }
    if found.revoked {
        return Err(AuthzError::grant("the refresh token is revoked"));
    }
    if found.used_at.is_some() {
        return Err(replayed(st, &found).await);
    }
    if found.expires_at <= now() {
        return Err(AuthzError::grant("the refresh token expired"));
    }
    same_resource(issuer, &r.resource, &found.grant)?;
    let mut tx = st.store.begin().await?;
    if !mcp_auth::use_token(&mut tx, &found.id).await? {
        drop(tx);
        return Err(replayed(st, &found).await);
    }
    let res = mint(&mut tx, &found.family_id, found.grant.scope.clone()).await?;
    tx.commit()
        .await
        .map_err(toolbelt_store::StoreError::from)?;
    Ok(res)
}

/// A used refresh token came back: someone else holds a copy. Everything of that consent
/// stops now (the audited commit moves the epoch, so the gateway forgets cached tokens).
async fn replayed(st: &AppState, f: &FoundToken) -> AuthzError {
    let killed = async {
        let mut tx = st.store.begin_audited().await?;
        mcp_auth::revoke_family(&mut tx, &f.family_id).await?;
        tx.commit(family_event(
            AuditAction::McpClientReplay,
            f,
            Outcome::Denied,
        ))
        .await?;
        Ok::<_, toolbelt_store::StoreError>(())
    };
    if let Err(e) = killed.await {
        tracing::error!(error = %e, family = %f.family_id, "revoking a replayed token family failed");
    }
    AuthzError::grant("the refresh token was already used; every token of this grant is revoked")
}

/// RFC 7009: revokes the token's whole family (access and refresh alike: a client that
/// signs out wants both gone). Unknown tokens, and tokens of another client, are a
/// success that changes nothing (§2.2: the answer tells nothing about the token).
pub async fn revoke(
    st: &AppState,
    client_id: Option<&str>,
    presented: &str,
) -> Result<(), AuthzError> {
    if presented.is_empty() {
        return Err(AuthzError::request("token is required"));
    }
    let client_id = client_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AuthzError::request("client_id is required"))?;
    let mut c = st.store.conn().await?;
    known_client(&mut c, client_id).await?;
    let Some(found) = mcp_auth::find_token(&mut c, &TokenDigest::of(presented)).await? else {
        return Ok(());
    };
    drop(c);
    if found.grant.client_id != client_id || found.revoked {
        return Ok(());
    }
    let mut tx = st.store.begin_audited().await?;
    mcp_auth::revoke_family(&mut tx, &found.family_id).await?;
    tx.commit(family_event(
        AuditAction::McpClientRevoke,
        &found,
        Outcome::Success,
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_rfc7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verifier_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!verifier_ok("short"));
    }
}
