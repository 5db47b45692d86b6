//! A provider's endpoints from its metadata: RFC 8414 (`/.well-known/oauth-authorization-server`)
//! first, then OpenID Connect discovery (`/.well-known/openid-configuration`).

use crate::{OAuthError, Result};
use serde::Deserialize;

/// What Toolbelt needs from a provider's metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// The metadata URLs for an issuer. RFC 8414 §3 puts the well-known segment between the
/// host and the issuer's path; OIDC appends it to the issuer.
pub fn candidates(issuer: &str) -> Result<Vec<String>> {
    let u = url::Url::parse(issuer)
        .map_err(|e| OAuthError::invalid("issuer", format!("is not a URL: {e}")))?;
    if !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
        return Err(OAuthError::invalid(
            "issuer",
            "must be an http(s) URL with a host",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(OAuthError::invalid(
            "issuer",
            "must have no query or fragment",
        ));
    }
    let origin = u.origin().ascii_serialization();
    let path = u.path().trim_end_matches('/');
    Ok(vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ])
}

/// Fetches and checks an issuer's metadata: the document must name the same issuer, give
/// both endpoints, and (when it lists methods) support PKCE S256.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata> {
    let mut last = String::new();
    for url in candidates(issuer)? {
        let resp = match http.get(&url).send().await {
            Ok(r) => r,
            Err(e) => {
                last = format!("{url}: {}", toolbelt_net::http::describe(&e));
                continue;
            }
        };
        if !resp.status().is_success() {
            last = format!("{url}: HTTP {}", resp.status().as_u16());
            continue;
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| OAuthError::Unreachable(format!("{url}: {e}")))?;
        let m: Metadata = serde_json::from_slice(&body)
            .map_err(|e| OAuthError::Malformed(format!("metadata at {url}: {e}")))?;
        return check(issuer, m);
    }
    Err(OAuthError::Unreachable(format!(
        "no metadata for issuer {issuer} ({last})"
    )))
}

fn check(issuer: &str, m: Metadata) -> Result<Metadata> {
    if m.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(OAuthError::Malformed(format!(
            "the metadata names issuer {} instead of {issuer}",
            m.issuer
        )));
    }
    for (field, v) in [
        ("authorization_endpoint", &m.authorization_endpoint),
        ("token_endpoint", &m.token_endpoint),
    ] {
        url::Url::parse(v)
            .map_err(|e| OAuthError::Malformed(format!("{field} {v:?} is not a URL: {e}")))?;
    }
    if let Some(methods) = &m.code_challenge_methods_supported
        && !methods.iter().any(|x| x == "S256")
    {
        return Err(OAuthError::Malformed(
            "the provider does not support PKCE S256, which OAuth 2.1 requires".into(),
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_follow_rfc8414_and_oidc() {
        assert_eq!(
            candidates("https://as.example.com").unwrap(),
            vec![
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            candidates("https://as.example.com/tenant1/").unwrap(),
            vec![
                "https://as.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://as.example.com/tenant1/.well-known/openid-configuration"
            ]
        );
        assert!(candidates("ftp://x").is_err());
        assert!(candidates("https://x/?a=b").is_err());
        assert!(candidates("not a url").is_err());
    }

    #[test]
    fn metadata_must_match_issuer_and_support_s256() {
        let m = |issuer: &str, methods: Option<Vec<&str>>| Metadata {
            issuer: issuer.into(),
            authorization_endpoint: "https://as/authorize".into(),
            token_endpoint: "https://as/token".into(),
            revocation_endpoint: None,
            scopes_supported: None,
            code_challenge_methods_supported: methods
                .map(|v| v.into_iter().map(String::from).collect()),
        };
        assert!(check("https://as", m("https://as/", Some(vec!["S256"]))).is_ok());
        assert!(check("https://as", m("https://as", None)).is_ok());
        assert!(check("https://as", m("https://evil", None)).is_err());
        assert!(check("https://as", m("https://as", Some(vec!["plain"]))).is_err());
    }
}
