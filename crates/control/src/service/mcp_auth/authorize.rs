//! The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636, and a resource
//! indicator, RFC 8707), checked the same way by the `/oauth2/authorize` endpoint and by
//! the consent page, and the consent itself: the signed-in user picks one of their own
//! agents, and the client gets a one-time code for it.

use super::error::{AuthzError, OAuthCode};
use super::register::is_loopback_http;
use super::{CODE_PREFIX, CODE_TTL, Issuer, check_scope, secs};
use crate::service::Caller;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::token;
use toolbelt_store::mcp_auth::{self, Client, Grant};

/// The authorization request's parameters, as the client sent them (query or form).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct AuthorizeRequest {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

/// A request that checked out: who asks, and where the answer goes.
#[derive(Debug, Clone)]
pub struct Checked {
    pub client: Client,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scope: Option<String>,
    pub state: Option<String>,
    /// Who answers (RFC 9207 `iss`: the client checks the answer came from the server it
    /// asked, against a mix-up attack).
    pub issuer: String,
}

impl Checked {
    /// The redirect carrying `params` (and the client's `state`, and `iss`) back to the
    /// client.
    pub fn answer(&self, params: &[(&str, &str)]) -> String {
        let mut u = match url::Url::parse(&self.redirect_uri) {
            Ok(u) => u,
            Err(_) => return self.redirect_uri.clone(), // checked at registration
        };
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", &self.issuer);
        }
        u.to_string()
    }

    /// The redirect carrying `e` back to the client (RFC 6749 §4.1.2.1).
    pub fn refuse(&self, e: &AuthzError) -> String {
        self.answer(&[
            ("error", e.code.as_str()),
            ("error_description", &e.description),
        ])
    }
}

/// Whether `given` is one of the client's redirect URIs; a loopback one matches on any
/// port (RFC 8252 §7.3: native apps take an ephemeral port).
fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    match (url::Url::parse(registered), url::Url::parse(given)) {
        (Ok(mut r), Ok(mut g)) if is_loopback_http(&r) && is_loopback_http(&g) => {
            let _ = r.set_port(None);
            let _ = g.set_port(None);
            r == g
        }
        _ => false,
    }
}

/// A refusal carries the checked part when the answer may go to the redirect URI.
type Checking = Result<Checked, (AuthzError, Option<Box<Checked>>)>;

fn refuse(e: AuthzError, c: &Checked) -> Checking {
    Err((e, Some(Box::new(c.clone()))))
}

/// Checks an authorization request. An error about the client or its redirect URI must be
/// shown to the user ([`AuthzError::redirectable`] is false); any other goes back to the
/// client through `Checked::refuse` of the second value.
pub async fn check(st: &AppState, issuer: &Issuer, r: &AuthorizeRequest) -> Checking {
    let client = if super::is_document_id(&r.client_id) {
        st.mcp_documents
            .client(&st.store, &r.client_id)
            .await
            .map_err(|e| (e, None))?
    } else {
        let mut c = st.store.conn().await.map_err(|e| (e.into(), None))?;
        mcp_auth::get_client(&mut c, &r.client_id)
            .await
            .map_err(|e| (e.into(), None))?
            .ok_or_else(|| {
                (
                    AuthzError::client(format!(
                        "unknown client_id {:?}; register first",
                        r.client_id
                    )),
                    None,
                )
            })?
    };
    let redirect_uri = match &r.redirect_uri {
        Some(u)
            if client
                .redirect_uris
                .iter()
                .any(|reg| redirect_matches(reg, u)) =>
        {
            u.clone()
        }
        Some(u) => {
            return Err((
                AuthzError::new(
                    OAuthCode::InvalidRedirectUri,
                    format!("redirect_uri {u:?} is not one this client registered"),
                ),
                None,
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err((
                AuthzError::new(
                    OAuthCode::InvalidRedirectUri,
                    "redirect_uri is required: the client registered several",
                ),
                None,
            ));
        }
    };
    let mut checked = Checked {
        client,
        redirect_uri,
        code_challenge: String::new(),
        resource: issuer.resource.clone(),
        scope: None,
        state: r.state.clone(),
        issuer: issuer.issuer.clone(),
    };
    if r.response_type != "code" {
        return refuse(
            AuthzError::new(
                OAuthCode::UnsupportedResponseType,
                "response_type must be \"code\"",
            ),
            &checked,
        );
    }
    match r.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some("plain") => {
            return refuse(
                AuthzError::request("code_challenge_method plain is refused: use S256"),
                &checked,
            );
        }
        Some(m) => {
            return refuse(
                AuthzError::request(format!("code_challenge_method {m:?}: only S256")),
                &checked,
            );
        }
        None => {
            return refuse(
                AuthzError::request("PKCE is required: code_challenge_method=S256"),
                &checked,
            );
        }
    }
    match r.code_challenge.as_deref() {
        // base64url of a SHA-256 digest, unpadded.
        Some(ch)
            if ch.len() == 43
                && ch
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            checked.code_challenge = ch.to_string();
        }
        _ => {
            return refuse(
                AuthzError::request("code_challenge must be the base64url SHA-256 of the verifier"),
                &checked,
            );
        }
    }
    if let Some(res) = &r.resource
        && !issuer.is_resource(res)
    {
        return refuse(
            AuthzError::new(
                OAuthCode::InvalidTarget,
                format!(
                    "resource {res:?} is not served here; this server issues tokens for {}",
                    issuer.resource
                ),
            ),
            &checked,
        );
    }
    match check_scope(r.scope.as_deref()) {
        Ok(s) => checked.scope = s,
        Err(e) => return refuse(e, &checked),
    }
    Ok(checked)
}

/// The user's answer on the consent page: approve for `agent` (one of their own), or
/// refuse. Either way the result is where to send the browser: the client's redirect URI
/// with a code, or with `access_denied`. Audited both ways.
pub async fn consent(
    st: &AppState,
    caller: &Caller,
    checked: &Checked,
    agent: Option<&str>,
    approve: bool,
) -> Result<String, AuthzError> {
    if !approve {
        let tx = st.store.begin_audited().await?;
        tx.commit(caller.event(
            AuditAction::McpClientConsent,
            TargetKind::McpClient,
            &checked.client.id,
            None,
            json!({ "client_name": checked.client.name, "approved": false }),
        ))
        .await?;
        return Ok(checked.refuse(&AuthzError::new(
            OAuthCode::AccessDenied,
            "the user refused",
        )));
    }
    let agent = agent
        .filter(|a| !a.is_empty())
        .ok_or_else(|| AuthzError::request("pick the agent this client acts as"))?;
    let agent = crate::service::agents::get(st, caller, agent).await?;
    // Admins see everyone's agents; a client acts only as one of the user's own.
    if &agent.owner_id != caller.id() {
        return Err(AuthzError::new(
            OAuthCode::AccessDenied,
            format!("agent {} is not yours", agent.name),
        ));
    }
    let code = token::issue_prefixed(CODE_PREFIX);
    let grant = Grant {
        client_id: checked.client.id.clone(),
        user_id: caller.id().clone(),
        agent_id: agent.id.clone(),
        resource: checked.resource.clone(),
        scope: checked.scope.clone(),
    };
    let mut tx = st.store.begin_audited().await?;
    mcp_auth::insert_code(
        &mut tx,
        &toolbelt_model::McpCodeId::generate().to_string(),
        &code.digest,
        &grant,
        &checked.redirect_uri,
        &checked.code_challenge,
        toolbelt_model::now() + secs(CODE_TTL),
    )
    .await?;
    tx.commit(caller.event(
        AuditAction::McpClientConsent,
        TargetKind::McpClient,
        &checked.client.id,
        None,
        json!({
            "client_name": checked.client.name,
            "approved": true,
            "agent": agent.id,
            "agent_name": agent.name.to_string(),
            "redirect_uri": checked.redirect_uri,
        }),
    ))
    .await?;
    Ok(checked.answer(&[("code", &code.secret)]))
}

#[cfg(test)]
mod tests {
    use super::redirect_matches;

    #[test]
    fn loopback_redirects_match_on_any_port_others_exactly() {
        assert!(redirect_matches(
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:41234/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:3000/other"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(!redirect_matches(
            "https://app.example:443/cb",
            "https://app.example:8443/cb"
        ));
    }
}
