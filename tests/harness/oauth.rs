//! The OAuth fixtures (`python/oauth/`): a strict Authlib authorization server and an MCP
//! server (the official SDK) that accepts only its tokens; and a browser without a
//! browser — a cookie jar of one dashboard session that follows the flow's redirects.

use crate::sdk::python;
use crate::tls::TestCa;
use serde_json::Value;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A fixture process that printed `READY <url>`; stops when dropped (stdin closes).
pub struct Fixture {
    pub url: String,
    /// Trusts the fixture's certificate when it serves HTTPS.
    http: reqwest::Client,
    _child: Child,
}

async fn spawn(script: &str, args: &[String], tls: Option<&TestCa>) -> Fixture {
    let mut args = args.to_vec();
    if let Some(ca) = tls {
        args.extend(ca.server_args());
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python/oauth")
        .join(script);
    let mut child = Command::new(python())
        .arg(path)
        .args(args)
        .args(["--port", "0", "--exit-on-stdin-eof", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{script} never printed READY"))
        .unwrap()
        .unwrap_or_else(|| panic!("{script} exited before READY"));
    let url = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("{script}: {line}"))
        .to_string();
    // Keep draining stdout so the fixture never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = match tls {
        Some(ca) => ca.outbound().builder().build().unwrap(),
        None => toolbelt_net::http::client(),
    };
    Fixture {
        url,
        http,
        _child: child,
    }
}

pub const CLIENT_ID: &str = "toolbelt-test";
pub const CLIENT_SECRET: &str = "toolbelt-test-secret";

/// The authorization server, with Toolbelt's callback registered and access tokens
/// living `access_ttl` seconds.
pub async fn authorization_server(redirect_uri: &str, access_ttl: u32) -> Fixture {
    authorization_server_with(redirect_uri, access_ttl, None).await
}

/// [`authorization_server`], over HTTPS with a certificate of `tls` when given.
pub async fn authorization_server_with(
    redirect_uri: &str,
    access_ttl: u32,
    tls: Option<&TestCa>,
) -> Fixture {
    spawn(
        "server.py",
        &[
            "--client-id".into(),
            CLIENT_ID.into(),
            "--client-secret".into(),
            CLIENT_SECRET.into(),
            "--redirect-uri".into(),
            redirect_uri.into(),
            "--access-ttl".into(),
            access_ttl.to_string(),
        ],
        tls,
    )
    .await
}

/// The protected MCP server: every request's bearer token is introspected at `auth`.
pub async fn protected_mcp(auth: &Fixture) -> Fixture {
    protected_mcp_with(auth, None).await
}

/// [`protected_mcp`] that also lists `only_<user>` to each user's token (whose listing
/// an agent was shown is then plain to see); `GET /_test/lists` names every lister.
pub async fn protected_mcp_per_user(auth: &Fixture) -> Fixture {
    protected_mcp_args(auth, None, &["--per-user-tool"]).await
}

/// [`protected_mcp`] over HTTPS (a certificate of `tls`, which it also trusts for
/// introspection at an HTTPS `auth`).
pub async fn protected_mcp_with(auth: &Fixture, tls: Option<&TestCa>) -> Fixture {
    protected_mcp_args(auth, tls, &[]).await
}

async fn protected_mcp_args(auth: &Fixture, tls: Option<&TestCa>, extra: &[&str]) -> Fixture {
    let mut args = vec![
        "--introspect".into(),
        format!("{}/introspect", auth.url),
        "--client-id".into(),
        CLIENT_ID.into(),
        "--client-secret".into(),
        CLIENT_SECRET.into(),
    ];
    if let Some(ca) = tls {
        args.extend(["--ca-file".into(), ca.ca.display().to_string()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    spawn("mcp_resource.py", &args, tls).await
}

impl Fixture {
    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.origin()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str) -> Value {
        self.http
            .post(format!("{}{path}", self.origin()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// The authorization server's events of one type.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        self.get(&format!("/_test/events?type={kind}"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Scheme, host and port (the MCP fixture's URL ends in `/mcp`).
    pub fn origin(&self) -> String {
        self.url.trim_end_matches("/mcp").to_string()
    }
}

/// One dashboard session in a "browser" that follows redirects by hand.
pub struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

/// What the end of a flow looked like.
#[derive(Debug)]
pub struct Landing {
    pub status: u16,
    pub url: String,
    pub body: String,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: toolbelt_net::http::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    /// A browser that also trusts `ca` (a provider served over HTTPS by the test).
    pub fn trusting(ca: &TestCa) -> Browser {
        Browser {
            http: ca
                .outbound()
                .builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    /// Logs in to the dashboard (a session cookie).
    pub async fn login(toolbelt: &str, email: &str, password: &str) -> Browser {
        Browser::login_with(Browser::new(), toolbelt, email, password).await
    }

    /// [`Browser::login`] in a given browser.
    pub async fn login_with(
        mut b: Browser,
        toolbelt: &str,
        email: &str,
        password: &str,
    ) -> Browser {
        let r = b
            .http
            .post(format!("{toolbelt}/api/v1/login"))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "login: {}", r.status());
        let c = r
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("toolbelt_session="))
            .expect("a session cookie");
        b.cookie = Some(c.split(';').next().unwrap().to_string());
        b
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        let mut req = self.http.get(url);
        // The session cookie goes only to Toolbelt (whose URLs are on another port than
        // the provider's); the provider has no cookies in this test.
        if let Some(c) = &self.cookie
            && !url.contains("/authorize")
        {
            req = req.header(reqwest::header::COOKIE, c);
        }
        req.send().await.unwrap()
    }

    /// Follows redirects from `url` until a page that does not redirect.
    pub async fn follow(&self, url: &str) -> Landing {
        let mut url = url.to_string();
        for _ in 0..10 {
            let r = self.get(&url).await;
            let status = r.status().as_u16();
            if (300..400).contains(&status) {
                url = next_url(&url, &r);
                continue;
            }
            return Landing {
                status,
                url,
                body: r.text().await.unwrap_or_default(),
            };
        }
        panic!("too many redirects from {url}");
    }

    /// Follows redirects but stops before the callback (the test tampers with it).
    pub async fn until_callback(&self, url: &str) -> String {
        let mut url = url.to_string();
        for _ in 0..10 {
            if url.contains("/callback") {
                return url;
            }
            let r = self.get(&url).await;
            assert!(r.status().is_redirection(), "{url}: {}", r.status());
            url = next_url(&url, &r);
        }
        panic!("no callback reached");
    }
}

/// Where a redirect from `from` leads (a relative `Location`, like the callback's
/// `/connections?done=…`, is taken against `from`).
fn next_url(from: &str, r: &reqwest::Response) -> String {
    let to = r.headers()[reqwest::header::LOCATION].to_str().unwrap();
    url::Url::parse(from)
        .and_then(|base| base.join(to))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| to.to_string())
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}
