//! The dashboard in a real browser (headless Chromium, `toolbelt_e2e::browser`): signing
//! in and out, the session across another site's redirect, live status without reload,
//! tenancy and CSRF as a browser meets them, and every page's labels, Tab order and
//! console. Element ids are the ones `crates/dashboard/README.md` documents.

use serde_json::json;
use std::time::Duration;
use toolbelt_dtma::{Dtma, DtmaOptions};
use toolbelt_e2e::browser::{Browser, other_site};
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::world::Caller;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::fixture_bin;

/// `toolbelt up` without Docker: the `local` toolbox on the process runtime, the fixture
/// server in the catalog, two members.
struct Dash {
    plane: Plane,
    admin: Caller,
    ann: Caller,
    bob: Caller,
    /// In-process DTMAs of private toolboxes, kept running for the test.
    dtmas: Vec<(Dtma, tempfile::TempDir)>,
}

async fn dash() -> Dash {
    let plane = Plane::up(Duration::from_millis(300)).await;
    let admin = plane.admin().clone();
    let command = [fixture_bin().display().to_string()];
    admin
        .catalog(json!({ "slug": "fixture", "transport": "stdio",
            "source": { "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command } }))
        .await;
    let ann = admin.member("ann@example.com").await;
    let bob = admin.member("bob@example.com").await;
    Dash {
        plane,
        admin,
        ann,
        bob,
        dtmas: Vec::new(),
    }
}

impl Dash {
    /// A private toolbox of `who`'s with an in-process DTMA on the process runtime.
    async fn own_toolbox(&mut self, who: &Caller, name: &str) {
        let own = who.toolbox(name).await;
        let dir = tempfile::tempdir().unwrap();
        let mut o = DtmaOptions::new(&self.plane.url, dir.path().join("dtma"));
        o.join_token = Some(own.join_token().await);
        o.runtime = Some(ToolboxKind::Process);
        o.reconcile_interval = Duration::from_millis(200);
        self.dtmas
            .push((toolbelt_dtma::start(o).await.unwrap(), dir));
        own.until("active").await;
    }

    async fn browser(&self) -> Browser {
        Browser::open(&self.plane.url).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_signs_in_and_out_and_the_session_survives_another_sites_redirect() {
    let d = dash().await;
    let b = d.browser().await;
    // Signed out, the overview sends you to the sign-in form.
    b.goto("/").await.until("#login-password").await;
    assert!(b.path().await.starts_with("/login"), "{}", b.path().await);

    b.sign_in(&d.admin).await;
    assert_eq!(b.path().await, "/");
    let email = d.admin.email().await;
    b.until_text("#signed-in-as", &email).await;

    // A page on http://localhost (another site) links back through its own 302, as an
    // OAuth provider's callback redirect does: the session cookie still goes along.
    let elsewhere = other_site(&format!("{}/servers", b.base())).await;
    b.goto(&elsewhere).await.click("#go").await;
    b.until("#servers-region").await;
    assert_eq!(b.path().await, "/servers", "still signed in after the hop");
    b.until_text("#signed-in-as", &email).await;

    b.sign_out().await;
    assert!(b.path().await.starts_with("/login"));
    b.goto("/servers").await.until("#login-password").await;
    assert!(
        b.path().await.starts_with("/login"),
        "signed out means signed out"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_shows_a_server_reach_running_and_stop_without_reload() {
    let d = dash().await;
    let b = d.browser().await;
    b.sign_in(&d.admin).await.goto("/servers").await;
    b.until("#servers-empty").await.mark().await;

    // Deployed while the page is open: the row appears and reaches running by itself.
    let tools = d.admin.deploy("tools", "fixture").on("local").await;
    b.until_text("#server-status-tools", "running").await;
    b.still_marked().await;

    // Someone else stops it; the badge follows, on the list and on the detail page.
    tools.act("stop").await;
    b.until_text("#server-status-tools", "stopped").await;
    b.still_marked().await;
    b.click("#server-link-tools").await.mark().await;
    tools.act("start").await;
    b.until_text("#server-status-tools", "running").await;
    b.still_marked().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_every_page_has_labels_tab_order_and_a_clean_console() {
    let d = dash().await;
    let tools = d.admin.deploy("tools", "fixture").on("local").await;
    tools.running().await;
    let id = tools.id().await;
    let b = d.browser().await;
    b.goto("/login")
        .await
        .checked()
        .await
        .screenshot("sign-in")
        .await;
    b.sign_in(&d.admin).await;
    for (path, shot) in [
        ("/".to_string(), Some("overview")),
        ("/servers".into(), Some("servers")),
        (format!("/servers/{id}"), Some("server")),
        (format!("/servers/{id}/delete"), None),
        ("/approvals".into(), Some("approvals")),
    ] {
        b.goto(&path).await.checked().await;
        if let Some(name) = shot {
            b.screenshot(name).await;
        }
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_member_meets_404_for_anothers_server_and_a_post_without_csrf_is_refused() {
    let mut d = dash().await;
    let ann_caller = d.ann.clone();
    d.own_toolbox(&ann_caller, "own").await;
    let mine = d.ann.deploy("mine", "fixture").on("own").await;
    mine.running().await;
    let id = mine.id().await;

    let bob = d.browser().await;
    bob.sign_in(&d.bob).await.goto("/servers").await;
    bob.until("#servers-empty").await;
    assert!(
        !bob.has("#server-mine").await,
        "Bob's list shows Ann's server"
    );
    bob.goto_status(&format!("/servers/{id}"), 404).await;
    bob.until("#error-title").await;
    bob.close().await;

    // Ann's own stop button, with the form's CSRF field taken out: refused, nothing changes.
    let ann = d.browser().await;
    ann.sign_in(&d.ann)
        .await
        .goto(&format!("/servers/{id}"))
        .await;
    ann.js("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove()); return null;")
        .await;
    let asked = ann.confirm("#server-stop", Some(403)).await;
    assert!(asked.contains("Stop mine?"), "{asked}");
    assert_eq!(
        mine.get().await["desired"],
        "running",
        "{}",
        mine.get().await
    );
    // The same button with its token works.
    ann.goto(&format!("/servers/{id}")).await;
    ann.confirm("#server-stop", None).await;
    mine.until("stopped", |v| v["status"] == "stopped").await;
    ann.close().await;
}
