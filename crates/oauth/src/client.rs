//! One provider as an `oauth2` client: authorization URLs with PKCE S256, code exchange,
//! refresh, revocation; HTTP through our reqwest client, errors sorted into refusals
//! (the provider said no), outages (retry) and malformed answers.

use crate::tokens::{Issued, TokenSet};
use crate::{OAuthError, Result};
use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, ErrorResponse, HttpRequest, HttpResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope,
    TokenResponse, TokenUrl,
};
use toolbelt_model::oauth::Provider;

type Client =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointSet>;

/// A transport failure or a provider-side error status (5xx): worth retrying.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

async fn send(http: reqwest::Client, req: HttpRequest) -> Result<HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let url = parts.uri.to_string();
    let resp = http
        .request(parts.method, &url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(format!("{url}: {}", toolbelt_net::http::describe(&e))))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(HttpError(format!("{url}: HTTP {}", status.as_u16())));
    }
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|e| HttpError(format!("{url}: {e}")))?;
    let mut out = http::Response::new(body.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

fn sorted<T>(e: RequestTokenError<HttpError, T>) -> OAuthError
where
    T: ErrorResponse + std::fmt::Display + 'static,
{
    match e {
        RequestTokenError::ServerResponse(r) => {
            // `BasicErrorResponse` displays as "error: description"; keep the two apart.
            let shown = r.to_string();
            let (error, description) = match shown.split_once(": ") {
                Some((a, b)) => (a.to_string(), Some(b.to_string())),
                None => (shown, None),
            };
            OAuthError::Provider { error, description }
        }
        RequestTokenError::Request(h) => OAuthError::Unreachable(h.0),
        // The body may hold token material: only the parser's complaint is kept.
        RequestTokenError::Parse(p, _) => OAuthError::Malformed(p.to_string()),
        RequestTokenError::Other(m) => OAuthError::Malformed(m),
    }
}

pub(crate) struct ProviderClient {
    inner: Client,
    http: reqwest::Client,
    client_id: String,
    client_secret: Option<String>,
    revocation: Option<String>,
}

fn url_err(field: &str) -> impl Fn(url::ParseError) -> OAuthError + '_ {
    move |e| OAuthError::invalid(field, format!("is not a URL: {e}"))
}

impl ProviderClient {
    pub fn new(
        p: &Provider,
        client_secret: Option<String>,
        redirect_uri: &str,
        http: reqwest::Client,
    ) -> Result<ProviderClient> {
        let revocation = p
            .revocation_endpoint
            .as_ref()
            .map(|u| RevocationUrl::new(u.clone()))
            .transpose()
            .map_err(url_err("revocation_endpoint"))?;
        let mut inner = BasicClient::new(ClientId::new(p.client_id.clone()))
            .set_auth_uri(
                AuthUrl::new(p.authorization_endpoint.clone())
                    .map_err(url_err("authorization_endpoint"))?,
            )
            .set_token_uri(
                TokenUrl::new(p.token_endpoint.clone()).map_err(url_err("token_endpoint"))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_string()).map_err(url_err("redirect_uri"))?,
            )
            .set_revocation_url_option(revocation);
        if let Some(s) = &client_secret {
            inner = inner.set_client_secret(ClientSecret::new(s.clone()));
        }
        Ok(ProviderClient {
            inner,
            http,
            client_id: p.client_id.clone(),
            client_secret,
            revocation: p.revocation_endpoint.clone(),
        })
    }

    /// The provider's authorization URL for one flow.
    pub fn authorize_url(
        &self,
        scopes: &[String],
        state: String,
        verifier: &PkceCodeVerifier,
        login_hint: Option<&str>,
        extra: &[(&str, &str)],
    ) -> String {
        let mut req = self
            .inner
            .authorize_url(|| CsrfToken::new(state))
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(verifier));
        if let Some(h) = login_hint {
            req = req.add_extra_param("login_hint", h.to_string());
        }
        for (k, v) in extra {
            req = req.add_extra_param(k.to_string(), v.to_string());
        }
        req.url().0.to_string()
    }

    pub async fn exchange(&self, code: String, verifier: String) -> Result<Issued> {
        let http = self.http.clone();
        let call = move |r| send(http.clone(), r);
        let resp = self
            .inner
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&call)
            .await
            .map_err(sorted::<BasicErrorResponse>)?;
        Ok(issued(&resp, None))
    }

    /// Refreshes; a provider that does not rotate keeps the old refresh token valid.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Issued> {
        let http = self.http.clone();
        let call = move |r| send(http.clone(), r);
        let rt = RefreshToken::new(refresh_token.to_string());
        let resp = self
            .inner
            .exchange_refresh_token(&rt)
            .request_async(&call)
            .await
            .map_err(sorted::<BasicErrorResponse>)?;
        Ok(issued(&resp, Some(refresh_token)))
    }

    /// Revokes a token at the provider (RFC 7009). Ok(false): the provider has no
    /// revocation endpoint. (By hand rather than through `oauth2`, which refuses a
    /// plain-HTTP endpoint even when the admin configured one, e.g. on a private network.)
    pub async fn revoke(&self, tokens: &TokenSet) -> Result<bool> {
        let Some(url) = &self.revocation else {
            return Ok(false);
        };
        // The refresh token revokes the whole grant at most providers; the access token
        // as well, for those that keep them apart.
        let mut list = vec![(tokens.access_token.as_str(), "access_token")];
        if let Some(rt) = &tokens.refresh_token {
            list.insert(0, (rt.as_str(), "refresh_token"));
        }
        for (token, hint) in list {
            let body = {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("token", token)
                    .append_pair("token_type_hint", hint);
                if self.client_secret.is_none() {
                    form.append_pair("client_id", &self.client_id);
                }
                form.finish()
            };
            let mut req = self
                .http
                .post(url)
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(http::header::ACCEPT, "application/json");
            if let Some(secret) = &self.client_secret {
                // RFC 6749 §2.3.1: both parts form-encoded before Basic.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                req = req.basic_auth(enc(&self.client_id), Some(enc(secret)));
            }
            let resp = req.body(body).send().await.map_err(|e| {
                OAuthError::Unreachable(format!("{url}: {}", toolbelt_net::http::describe(&e)))
            })?;
            let status = resp.status();
            if status.is_server_error() {
                return Err(OAuthError::Unreachable(format!(
                    "{url}: HTTP {}",
                    status.as_u16()
                )));
            }
            if !status.is_success() {
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                return Err(OAuthError::Provider {
                    error: body["error"]
                        .as_str()
                        .unwrap_or("revocation refused")
                        .to_string(),
                    description: body["error_description"].as_str().map(String::from),
                });
            }
        }
        Ok(true)
    }
}

fn issued(resp: &oauth2::basic::BasicTokenResponse, old_refresh: Option<&str>) -> Issued {
    Issued {
        tokens: TokenSet {
            access_token: resp.access_token().secret().clone(),
            refresh_token: resp
                .refresh_token()
                .map(|r| r.secret().clone())
                .or_else(|| old_refresh.map(str::to_string)),
            token_type: format!("{:?}", resp.token_type()).to_ascii_lowercase(),
        },
        expires_in: resp.expires_in(),
        scopes: resp
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect()),
    }
}
