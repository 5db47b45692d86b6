//! Client ID Metadata Documents (the MCP authorization spec of 2025-11-25, after
//! draft-ietf-oauth-client-id-metadata-document): a client that never registered names
//! itself by an `https` URL, and the JSON document there is its metadata — `client_id`
//! (the URL itself), `client_name`, `redirect_uris`. The authorization server fetches it
//! when the client asks, through the SSRF guard (a client must not make Toolbelt read a
//! private or metadata address: only what `TOOLBELT_SSRF_ALLOW` lists), with no
//! redirects, a small size and a short timeout, and keeps it in a bounded cache for as long
//! as the document's `Cache-Control` says (the draft asks authorization servers to respect
//! HTTP caching): `no-store`/`no-cache` not at all, `max-age` up to a day, five minutes
//! when it says nothing. The client is stored like a registered one (its id the URL) so
//! codes and tokens refer to it; each fetch refreshes the stored copy.

use super::error::AuthzError;
use super::register::check_redirect_uri;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use toolbelt_net::http::Outbound;
use toolbelt_net::ssrf::{AllowList, Guard};
use toolbelt_store::Store;
use toolbelt_store::mcp_auth::{self, Client};

/// The draft's recommended bound: a metadata document is a few hundred bytes.
const MAX_BYTES: usize = 5 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document stands for its client when its response says nothing.
const TTL: Duration = Duration::from_secs(300);
/// The longest a `max-age` keeps a document: a changed or withdrawn one is seen within it.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Documents kept at most; a full cache drops its oldest entry.
const MAX_CACHED: usize = 1000;
const MAX_URL_LEN: usize = 2000;

/// Whether a `client_id` names a metadata document (rather than a registration).
pub fn is_document_id(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// The fetcher and its cache, one per control plane.
pub struct Documents {
    http: reqwest::Client,
    guard: Arc<Guard>,
    /// Each client with the instant its document goes stale.
    cache: Mutex<HashMap<String, (Client, Instant)>>,
}

/// The fields of a document this server reads (others are allowed and ignored).
#[derive(Deserialize)]
struct Document {
    client_id: Option<String>,
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    client_secret: Option<serde_json::Value>,
    client_uri: Option<String>,
}

impl Documents {
    pub fn new(outbound: &Outbound, allow: AllowList) -> Documents {
        let guard = Arc::new(Guard { allow });
        let http = outbound
            .guarded(guard.clone())
            // The document is at its URL; a redirect could lead anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .expect("an HTTP client builds");
        Documents {
            http,
            guard,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The client `url` names: from the cache, or fetched, checked and stored.
    pub async fn client(&self, store: &Store, url: &str) -> Result<Client, AuthzError> {
        let hit = {
            let cache = self.cache.lock().expect("cache lock");
            cache
                .get(url)
                .filter(|(_, stale)| Instant::now() < *stale)
                .map(|(c, _)| c.clone())
        };
        if let Some(c) = hit {
            return Ok(c);
        }
        let (client, ttl) = self.fetch(url).await?;
        let mut c = store.conn().await?;
        mcp_auth::upsert_client(&mut c, &client).await?;
        let mut cache = self.cache.lock().expect("cache lock");
        if ttl.is_zero() {
            cache.remove(url);
            return Ok(client);
        }
        if cache.len() >= MAX_CACHED
            && !cache.contains_key(url)
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(url.to_string(), (client.clone(), Instant::now() + ttl));
        Ok(client)
    }

    /// The document's client and how long it may be kept.
    async fn fetch(&self, url: &str) -> Result<(Client, Duration), AuthzError> {
        let bad =
            |why: String| AuthzError::client(format!("client metadata document {url}: {why}"));
        let u = check_url(url).map_err(|w| bad(w.into()))?;
        // The resolver checks names; an IP literal it never sees.
        self.guard.check_url(&u).map_err(|e| bad(e.to_string()))?;
        let mut res = self
            .http
            .get(u)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                bad(format!(
                    "fetch failed: {}",
                    toolbelt_net::http::describe(&e)
                ))
            })?;
        if !res.status().is_success() {
            return Err(bad(format!("answered {}", res.status())));
        }
        let ttl = keep_for(res.headers());
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| bad(format!("read failed: {}", toolbelt_net::http::describe(&e))))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(bad(format!("larger than {MAX_BYTES} bytes")));
            }
        }
        let doc: Document = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("not a JSON client metadata document ({e})")))?;
        if doc.client_id.as_deref() != Some(url) {
            return Err(bad(format!(
                "its client_id is {:?}, not the document's own URL",
                doc.client_id.unwrap_or_default()
            )));
        }
        // A document is public: a secret in it, or a method needing one, is a mistake.
        if doc.client_secret.is_some()
            || doc
                .token_endpoint_auth_method
                .as_deref()
                .is_some_and(|m| m != "none")
        {
            return Err(bad(
                "a metadata document names a public client: token_endpoint_auth_method \"none\", no client_secret".into(),
            ));
        }
        if doc.redirect_uris.is_empty() || doc.redirect_uris.len() > 10 {
            return Err(bad("redirect_uris: between one and ten are required".into()));
        }
        for r in &doc.redirect_uris {
            check_redirect_uri(r).map_err(|e| bad(e.description))?;
        }
        let name = doc
            .client_name
            .as_deref()
            .map(str::trim)
            .filter(|n| {
                !n.is_empty() && n.chars().count() <= 200 && !n.chars().any(char::is_control)
            })
            .map(str::to_string)
            // No usable name: the host says who it is.
            .unwrap_or_else(|| {
                url::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default()
            });
        let client = Client {
            id: url.to_string(),
            name,
            redirect_uris: doc.redirect_uris,
            metadata: json!({ "client_uri": doc.client_uri, "metadata_document": true }),
            created_at: toolbelt_model::now(),
        };
        Ok((client, ttl))
    }
}

/// How long a response's `Cache-Control` lets a document be kept: zero for `no-store` or
/// `no-cache` (this cache does not revalidate), `max-age` (at most [`MAX_TTL`]), else
/// [`TTL`]. A header that does not parse counts as absent.
fn keep_for(headers: &reqwest::header::HeaderMap) -> Duration {
    let mut max_age = None;
    for value in headers.get_all(reqwest::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "no-store" | "no-cache" => return Duration::ZERO,
                "max-age" => {
                    if let Ok(secs) = arg.trim().trim_matches('"').parse::<u64>() {
                        max_age = Some(Duration::from_secs(secs).min(MAX_TTL));
                    }
                }
                _ => {}
            }
        }
    }
    max_age.unwrap_or(TTL)
}

/// The draft's rules for a client_id URL: https, a path, no fragment, no credentials, no
/// dot segments.
fn check_url(url: &str) -> Result<url::Url, &'static str> {
    if url.len() > MAX_URL_LEN {
        return Err("the URL is longer than 2000 characters");
    }
    let u = url::Url::parse(url).map_err(|_| "not a URL")?;
    if u.scheme() != "https" {
        return Err("a client_id URL must be https");
    }
    if u.path() == "/" || u.path().is_empty() {
        return Err("a client_id URL must have a path");
    }
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return Err("a client_id URL has no fragment and no credentials");
    }
    // `Url` resolves `.`/`..`: a URL that changed in parsing was not in its plain form.
    if u.as_str() != url {
        return Err(
            "a client_id URL must be in its plain form (no dot segments, no default port, lowercase host)",
        );
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::{MAX_TTL, TTL, check_url, keep_for};
    use reqwest::header::{CACHE_CONTROL, HeaderMap, HeaderValue};
    use std::time::Duration;

    fn cc(values: &[&'static str]) -> Duration {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, HeaderValue::from_static(v));
        }
        keep_for(&h)
    }

    #[test]
    fn cache_control_sets_how_long_a_document_is_kept() {
        assert_eq!(cc(&[]), TTL);
        assert_eq!(cc(&["public, max-age=60"]), Duration::from_secs(60));
        assert_eq!(cc(&["Max-Age=\"7\""]), Duration::from_secs(7));
        assert_eq!(cc(&["max-age=0"]), Duration::ZERO);
        assert_eq!(cc(&["max-age=99999999"]), MAX_TTL);
        assert_eq!(cc(&["max-age=60", "no-store"]), Duration::ZERO);
        assert_eq!(cc(&["private, no-cache"]), Duration::ZERO);
        assert_eq!(cc(&["max-age=soon"]), TTL);
    }

    #[test]
    fn client_id_urls() {
        assert!(check_url("https://app.example/oauth/client.json").is_ok());
        for bad in [
            "http://app.example/client.json",
            "https://app.example/",
            "https://app.example",
            "https://app.example/a#frag",
            "https://user@app.example/a",
            "https://app.example/a/../b",
            "https://APP.example/a",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
