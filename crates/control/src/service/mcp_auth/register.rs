//! Dynamic client registration (RFC 7591) and the redirect URI rules: `https`, a
//! loopback `http` address (RFC 8252 §7.3: any port at request time), or a private-use
//! scheme of a native app (RFC 8252 §7.1, e.g. `cursor://…`). Never a fragment, never a
//! scheme a browser runs (`javascript:`, `data:`, …).

use super::error::{AuthzError, OAuthCode};
use crate::service::login_limits::address_key;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;
use toolbelt_model::throttle::Backoff;
use toolbelt_store::mcp_auth::{self, Client};
use toolbelt_store::throttle::{self, Key, Verdict};

const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_LEN: usize = 200;

/// Schemes that are never a client's redirect: the browser would run or show them itself.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "http",
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "ftp",
    "ws",
    "wss",
];

/// What a client sends to register (the fields this server reads; others are ignored,
/// as RFC 7591 §2 allows).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
    pub client_uri: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub client_id: String,
    pub client_id_issued_at: i64,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Whether `uri` is an http URL on a loopback address (RFC 8252 §7.3).
pub(super) fn is_loopback_http(u: &url::Url) -> bool {
    u.scheme() == "http"
        && match u.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        }
}

/// The redirect URI rules, with the reason for a refusal.
pub fn check_redirect_uri(uri: &str) -> Result<(), AuthzError> {
    let bad = |why: &str| {
        AuthzError::new(
            OAuthCode::InvalidRedirectUri,
            format!("redirect_uri {uri:?}: {why}"),
        )
    };
    if uri.len() > MAX_URI_LEN {
        return Err(bad("longer than 2000 characters"));
    }
    let u = url::Url::parse(uri).map_err(|e| bad(&format!("not an absolute URL ({e})")))?;
    if u.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_http(&u) => Ok(()),
        "http" => Err(bad(
            "plain http is allowed only on a loopback address (127.0.0.1, [::1], localhost); use https",
        )),
        s if FORBIDDEN_SCHEMES.contains(&s) => Err(bad("this scheme is not a redirect target")),
        _ => Ok(()), // a native app's private-use scheme
    }
}

/// Registrations one client address may make before it waits, by default: registration is
/// anonymous (RFC 7591 open registration), so without a bound one script could fill the
/// client table. Generous for people behind one NAT; a wait that doubles after that. The
/// limit in force is `LoginLimits::registrations` (`TOOLBELT_REGISTER_LIMIT_ADDRESS`).
pub const REGISTER_LIMIT: Backoff = Backoff {
    free: 20,
    base: Duration::from_secs(30),
    max: Duration::from_secs(15 * 60),
    // As long as the login throttle's, which sweeps the shared table.
    forget: Duration::from_secs(15 * 60),
};

/// Counts one registration from `from`, or refuses it (429) while its address waits.
async fn admit(st: &AppState, from: Option<IpAddr>) -> Result<(), AuthzError> {
    let key = format!("mcp-register:{}", address_key(from));
    let now = toolbelt_model::now().timestamp_millis();
    let keys = [Key {
        key: &key,
        policy: &st.config.login.registrations,
    }];
    match throttle::attempt(&st.store, &keys, now).await? {
        Verdict::Allowed => Ok(()),
        Verdict::Refused { until_ms } => {
            let wait = Duration::from_millis(u64::try_from(until_ms - now).unwrap_or(0).max(1));
            Err(AuthzError {
                retry_after: Some(wait),
                ..AuthzError::new(
                    OAuthCode::RateLimited,
                    format!(
                        "too many client registrations from this address; try again in {} s",
                        wait.as_millis().div_ceil(1000).max(1)
                    ),
                )
            })
        }
    }
}

/// Registers a public client for a caller at `from` (throttled per address). Nothing is
/// stored unless every field checks out.
pub async fn register(
    st: &AppState,
    from: Option<IpAddr>,
    r: Registration,
) -> Result<Registered, AuthzError> {
    admit(st, from).await?;
    let meta = |d: String| AuthzError::new(OAuthCode::InvalidClientMetadata, d);
    if r.redirect_uris.is_empty() {
        return Err(AuthzError::new(
            OAuthCode::InvalidRedirectUri,
            "redirect_uris: at least one is required",
        ));
    }
    if r.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(AuthzError::new(
            OAuthCode::InvalidRedirectUri,
            format!("redirect_uris: at most {MAX_REDIRECT_URIS}"),
        ));
    }
    for u in &r.redirect_uris {
        check_redirect_uri(u)?;
    }
    let name = r
        .client_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("unnamed MCP client")
        .to_string();
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(meta(format!(
            "client_name: at most {MAX_NAME_LEN} characters, no control characters"
        )));
    }
    // Public clients only; a client asking for a secret is told what it got instead
    // (RFC 7591 §3.2.1 lets the server replace requested values).
    match r.token_endpoint_auth_method.as_deref() {
        None | Some("none" | "client_secret_post" | "client_secret_basic") => {}
        Some(m) => {
            return Err(meta(format!(
                "token_endpoint_auth_method {m:?}: this server registers public clients (\"none\") with PKCE"
            )));
        }
    }
    let grant_types = r
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if let Some(g) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(meta(format!(
            "grant_types: {g:?} is not supported (authorization_code, refresh_token)"
        )));
    }
    let response_types = r
        .response_types
        .clone()
        .unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|t| t != "code") {
        return Err(meta("response_types: only \"code\"".into()));
    }
    let scope = super::check_scope(r.scope.as_deref())
        .map_err(|e| meta(format!("scope: {}", e.description)))?;
    let client = Client {
        id: toolbelt_model::McpClientId::generate().to_string(),
        name: name.clone(),
        redirect_uris: r.redirect_uris.clone(),
        metadata: json!({ "client_uri": r.client_uri, "scope": scope }),
        created_at: toolbelt_model::now(),
    };
    let mut c = st.store.conn().await?;
    mcp_auth::insert_client(&mut c, &client).await?;
    Ok(Registered {
        client_id: client.id,
        client_id_issued_at: client.created_at.timestamp(),
        client_name: name,
        redirect_uris: client.redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method: "none",
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/cb",
            "http://10.0.0.1/cb",
            "https://example.com/cb#frag",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/relative",
            "https://user:pw@example.com/cb",
        ] {
            let e = check_redirect_uri(bad).unwrap_err();
            assert_eq!(e.code, OAuthCode::InvalidRedirectUri, "{bad}");
        }
    }
}
