//! A real browser for the dashboard's tests: headless Chromium driven over WebDriver
//! (fantoccini) through a chromedriver of the test's own, on a free port, with a fresh
//! profile. A scenario reads as what a person does:
//!
//! ```ignore
//! let b = Browser::open(&plane.url).await;
//! b.sign_in(plane.admin()).await.goto("/servers").await.until_text("#server-status-tools", "running").await;
//! b.close().await;                                    // the last page's console is checked
//! ```
//!
//! Chromium missing is a failure, never a skip (`scripts/test.sh` installs Debian's
//! `chromium` and `chromium-driver`). Every page the browser leaves or lands on has its
//! console checked: an error logged there (a script error, a failed request, a missing
//! favicon) fails the test with the page's URL. `TOOLBELT_TEST_CHROMIUM` and
//! `TOOLBELT_TEST_CHROMEDRIVER` name other binaries.

use crate::eventually::{WAIT, eventually};
use crate::world::Caller;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use toolbelt_testkit::proc::free_port;

// The console and accessibility checks (`impl Browser` continued).
#[path = "a11y.rs"]
mod a11y;

/// The window's size: usable from 1024 px wide, so a little over that.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;
/// What headless Chromium's window takes beyond the page's viewport.
const CHROME_HEIGHT: u32 = 143;

/// The password `sign_in` gives an account (set through the account's own API token).
pub const PASSWORD: &str = "browser-test-password-1";

/// How the browser is started: JavaScript on (the default) or off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub no_javascript: bool,
}

/// One headless Chromium session at one Toolbelt URL.
pub struct Browser {
    client: Client,
    base: String,
    /// Console lines read so far that the test said to expect (e.g. its own 404).
    allowed: Mutex<Vec<String>>,
    closed: bool,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn binary(var: &str, default: &str) -> PathBuf {
    let path = std::env::var(var).unwrap_or_else(|_| default.into());
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{} not found (set {var}): the browser tests need Debian's chromium and \
         chromium-driver, which ./scripts/test.sh installs",
        path.display()
    );
    path
}

/// Where screenshots go: the repository's `docs/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
}

impl Browser {
    /// A browser with JavaScript on, at `base` (the Toolbelt URL paths are relative to).
    pub async fn open(base: &str) -> Browser {
        Self::with(base, Options::default()).await
    }

    pub async fn with(base: &str, options: Options) -> Browser {
        let chromium = binary("TOOLBELT_TEST_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("TOOLBELT_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let driver_url = format!("http://127.0.0.1:{port}/");
        let status = format!("{driver_url}status");
        eventually("chromedriver to answer", WAIT, async || {
            let r = toolbelt_net::http::client().get(&status).send().await;
            match r {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        let mut prefs = json!({});
        if options.no_javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={WIDTH},{HEIGHT}"), "--no-first-run", "--no-default-browser-check",
                    "--disable-extensions", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": prefs,
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"));
        Browser {
            client,
            base: base.trim_end_matches('/').into(),
            allowed: Mutex::new(Vec::new()),
            closed: false,
            _driver: driver,
            _profile: profile,
        }
    }

    /// The WebDriver client, for what this handle does not name.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url_of(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.into()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// The page's URL now.
    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The page's path (and query) now.
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().into(),
        }
    }

    /// Opens `path` (relative to the Toolbelt URL, or absolute), after checking the console
    /// of the page it leaves; checks the new page's console once it has loaded.
    pub async fn goto(&self, path: &str) -> &Self {
        self.console_clean("before leaving it").await;
        let url = self.url_of(path);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.loaded().await;
        self.console_clean("after it loaded").await;
        self
    }

    /// Opens `path` and expects it to answer `status` (a 404 page, a 403 refusal): the
    /// console line Chromium logs for that status is expected, not an error.
    pub async fn goto_status(&self, path: &str, status: u16) -> &Self {
        self.console_clean("before leaving it").await;
        let url = self.url_of(path);
        self.client.goto(&url).await.unwrap();
        self.loaded().await;
        self.expect_status(status).await
    }

    /// The current document answered `status`; its console line for that is expected.
    pub async fn expect_status(&self, status: u16) -> &Self {
        let got = self.status().await;
        assert_eq!(got, status, "status of {}", self.page_text().await);
        self.allowed
            .lock()
            .unwrap()
            .push(format!("status of {status}"));
        self.console_clean("after it loaded").await;
        self
    }

    /// The HTTP status the current document was served with (Navigation Timing).
    pub async fn status(&self) -> u16 {
        let v = self
            .js("const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStatus : 0;")
            .await;
        v.as_u64().unwrap_or(0) as u16
    }

    /// Waits until the document has loaded.
    async fn loaded(&self) {
        eventually("the page to load", WAIT, async || {
            self.client
                .execute("return document.readyState", vec![])
                .await
                .is_ok_and(|v| v == "complete")
        })
        .await;
    }

    /// Runs `script` in the page (a function body: `return …` gives a value).
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` (a function body) returns `true`.
    pub async fn until_js(&self, what: &str, script: &str) -> &Self {
        eventually(what, WAIT, async || {
            match self.client.execute(script, vec![]).await {
                Ok(v) if v == true => Ok(()),
                Ok(v) => Err(v.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        self
    }

    /// The element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let what = format!("an element {css} on the page");
        eventually(&what, WAIT, async || {
            match self.client.find(Locator::Css(css)).await {
                Ok(e) => Ok(e),
                Err(_) => Err(self.page_text().await),
            }
        })
        .await
    }

    /// Whether an element matching `css` is on the page now (no wait).
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// The visible text of `css` (waiting for it to appear).
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// The page's visible text (what a timed-out wait shows).
    pub async fn page_text(&self) -> String {
        let url = self.url().await;
        let body = match self.client.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        format!("{url}\n{body}")
    }

    /// Waits until the text of `css` contains `needle` — the page changing by itself
    /// (live updates) or after a navigation; the text.
    pub async fn until_text(&self, css: &str, needle: &str) -> String {
        let what = format!("{css} to show {needle:?}");
        eventually(&what, WAIT, async || {
            let t = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => return Err(format!("(no {css})\n{}", self.page_text().await)),
            };
            if t.contains(needle) { Ok(t) } else { Err(t) }
        })
        .await
    }

    /// Waits until an element matching `css` is on the page.
    pub async fn until(&self, css: &str) -> &Self {
        self.find(css).await;
        self
    }

    /// Types `value` into the field `css` (cleared first).
    pub async fn fill(&self, css: &str, value: &str) -> &Self {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
        self
    }

    /// Chooses the option `value` of the select `css`.
    pub async fn select(&self, css: &str, value: &str) -> &Self {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
        self
    }

    /// The attribute `name` of `css` (waiting for the element).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await.attr(name).await.unwrap()
    }

    /// Opens `path` again and again until `css` is on it — how a person without
    /// JavaScript sees a change: by reloading.
    pub async fn reload_until(&self, path: &str, css: &str) -> &Self {
        let what = format!("{css} on {path} after a reload");
        eventually(&what, WAIT, async || {
            self.goto(path).await;
            if self.has(css).await {
                Ok(())
            } else {
                Err(self.page_text().await)
            }
        })
        .await;
        self
    }

    /// Clicks `css` on this page (a checkbox, a copy button…); for a link or a submit
    /// button use [`follow`](Self::follow), which waits for the next page.
    pub async fn click(&self, css: &str) -> &Self {
        self.console_clean("before the click").await;
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.loaded().await;
        self.console_clean("after the click").await;
        self
    }

    /// Clicks `css` — a link or a submit button — and waits for the page it leads to
    /// (a new document, not the old one still showing), checking the consoles of both.
    pub async fn follow(&self, css: &str) -> &Self {
        self.console_clean("before the click").await;
        self.leaving().await;
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.arrived(css).await;
        self.console_clean("after the click").await;
        self
    }

    /// Like [`follow`](Self::follow), expecting the page it leads to to answer `status`.
    pub async fn follow_status(&self, css: &str, status: u16) -> &Self {
        self.console_clean("before the click").await;
        self.leaving().await;
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.arrived(css).await;
        self.expect_status(status).await
    }

    /// Tags the current document, so [`arrived`](Self::arrived) can tell the next one.
    async fn leaving(&self) {
        self.js("window.__tbLeaving = 1; return null;").await;
    }

    /// Waits until a new document (without the tag) has loaded.
    async fn arrived(&self, after: &str) {
        let what = format!("the page after clicking {after}");
        eventually(&what, WAIT, async || {
            let v = self
                .client
                .execute(
                    "return window.__tbLeaving === undefined && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            match v {
                Ok(v) if v == true => Ok(()),
                _ => Err(self.page_text().await),
            }
        })
        .await;
    }

    /// Clicks `css`, a button that asks "are you sure?" first, and answers yes; the text
    /// of the question. The page it leads to is checked as after [`click`](Self::click)
    /// (`status`: the page is expected to answer that instead of succeeding).
    pub async fn confirm(&self, css: &str, status: Option<u16>) -> String {
        self.console_clean("before the click").await;
        self.leaving().await;
        // chromedriver may answer the click itself with "unexpected alert open".
        let _ = self.find(css).await.click().await;
        let question = eventually("a confirmation", WAIT, async || {
            self.client.get_alert_text().await.ok()
        })
        .await;
        self.client.accept_alert().await.unwrap();
        self.arrived(css).await;
        match status {
            Some(s) => {
                self.expect_status(s).await;
            }
            None => self.console_clean("after the click").await,
        }
        question
    }

    /// Sets a marker on `window`: a reload or navigation drops it.
    pub async fn mark(&self) -> &Self {
        self.js("window.__marker = 1; return null;").await;
        self
    }

    /// The marker set by [`mark`](Self::mark) is still there: the page was not reloaded.
    pub async fn still_marked(&self) -> &Self {
        let m = self.js("return window.__marker === 1;").await;
        assert_eq!(m, true, "the page was reloaded (window.__marker is gone)");
        self
    }

    /// Saves the whole page, from the top and with nothing focused, as
    /// `docs/screenshots/NAME.png` (the window grows to the page's height for it).
    pub async fn screenshot(&self, name: &str) -> &Self {
        let height = self
            .js(
                "if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); \
                 return document.documentElement.scrollHeight;",
            )
            .await
            .as_u64()
            .unwrap_or(900);
        let (w, h) = (WIDTH, (height as u32 + CHROME_HEIGHT).clamp(HEIGHT, 4000));
        self.client.set_window_size(w, h).await.unwrap();
        let png = self.client.screenshot().await.unwrap();
        self.client.set_window_size(WIDTH, HEIGHT).await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        self
    }

    /// Signs in through the sign-in form as `who` (their password set to [`PASSWORD`]
    /// through their own API token first).
    pub async fn sign_in(&self, who: &Caller) -> &Self {
        let email = who.email().await;
        who.rest
            .ok(
                "PUT",
                "/api/v1/me/password",
                json!({ "current_password": PASSWORD, "new_password": PASSWORD }),
            )
            .await;
        self.sign_in_with(&email, PASSWORD).await
    }

    /// Fills the sign-in form and submits it; waits for a signed-in page.
    pub async fn sign_in_with(&self, email: &str, password: &str) -> &Self {
        self.goto(SIGN_IN).await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.follow("#sign-in").await;
        self.until(SIGNED_IN).await
    }

    /// Signs in with a one-time login token (what `toolbelt up` prints).
    pub async fn sign_in_token(&self, token: &str) -> &Self {
        self.goto(SIGN_IN).await;
        self.fill("#login_token", token).await;
        self.follow("#sign-in-token").await;
        self.until(SIGNED_IN).await
    }

    /// Signs out with the sign-out button; waits for the sign-in form.
    pub async fn sign_out(&self) -> &Self {
        self.follow("#sign-out").await;
        self.until("#login-password").await
    }

    /// Ends the session after checking the last page's console.
    pub async fn close(mut self) {
        self.console_clean("at the end").await;
        self.closed = true;
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed && !std::thread::panicking() {
            panic!("a Browser must end with .close().await (it checks the last page's console)");
        }
    }
}

/// Where the sign-in form is, and what marks a signed-in page (who is signed in);
/// `crates/dashboard/README.md` names the ids.
pub const SIGN_IN: &str = "/login";
pub const SIGNED_IN: &str = "#signed-in-as";

/// Another site: a page served on `http://localhost:PORT/` (a different site from
/// Toolbelt's `127.0.0.1`, as an OAuth provider is) whose link `#go` leads, through a
/// 302 from that site, to `target`. Cookie rules (`SameSite`) apply to that hop as they
/// do to a provider's redirect back. Serves until the test ends.
pub async fn other_site(target: &str) -> String {
    use axum::response::{Html, Redirect};
    let target = target.to_string();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async {
                Html(concat!(
                    "<!doctype html><html lang=en><head><title>Elsewhere</title>",
                    "<link rel=icon href='data:,'></head>",
                    "<body><a id=go href='/go'>Back to Toolbelt</a></body></html>"
                ))
            }),
        )
        .route(
            "/go",
            axum::routing::get(move || async move { Redirect::to(&target) }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://localhost:{port}/")
}
