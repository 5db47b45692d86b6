//! The dashboard in a real browser (headless Chromium, `toolbelt_e2e::browser`): signing
//! in and out, the session across another site's redirect, live status without reload,
//! tenancy and CSRF as a browser meets them, and every page's labels, Tab order and
//! console. Element ids are the ones `crates/dashboard/README.md` documents.

use serde_json::json;
use std::time::Duration;
use toolbelt_dtma::{Dtma, DtmaOptions};
use toolbelt_e2e::browser::{Browser, Options, other_site};
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::sdk::Sdk;
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

/// An agent's id by name, as its owner lists it.
async fn agent_id(who: &Caller, name: &str) -> String {
    let a = who.rest.get(&format!("/api/v1/agents/{name}")).await;
    a["id"].as_str().unwrap().into()
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
    b.goto(&elsewhere).await.follow("#go").await;
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
    b.follow("#server-link-tools").await.mark().await;
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
    d.admin.agent("helper").await;
    d.admin.grant("helper").server("tools", "local").await;
    let agent = agent_id(&d.admin, "helper").await;
    let local = d.admin.rest.get("/api/v1/toolboxes/local").await;
    let local = local["id"].as_str().unwrap();
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
        ("/agents".into(), Some("agents")),
        (format!("/agents/{agent}"), Some("agent")),
        (format!("/agents/{agent}/delete"), None),
        ("/toolboxes".into(), Some("toolboxes")),
        (format!("/toolboxes/{local}"), Some("toolbox")),
        (format!("/toolboxes/{local}/delete"), None),
        ("/marketplace".into(), Some("marketplace")),
        ("/marketplace/fixture".into(), None),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_member_builds_an_agent_and_approves_its_ask_call_live() {
    let mut d = dash().await;
    let ann_caller = d.ann.clone();
    d.own_toolbox(&ann_caller, "own").await;
    d.ann
        .deploy("mine", "fixture")
        .on("own")
        .await
        .running()
        .await;

    let b = d.browser().await;
    b.sign_in(&d.ann).await.goto("/agents").await;
    b.fill("#agent-name", "ann-bot")
        .await
        .follow("#agent-create-submit")
        .await;
    let token = b.text("#agent-token").await;
    let config = b.text("#config-http").await;
    assert!(
        config.contains(&token),
        "the client config carries the token: {config}"
    );
    b.click("#copy-config-http").await;
    b.until_js(
        "the config copied (or, without clipboard access, selected for copying)",
        "return document.getElementById('copy-config-http').textContent === 'Copied' \
             || window.getSelection().toString() === document.getElementById('config-http').textContent;",
    )
    .await;

    // The toolbelt: Ann's server, `echo` denied, `add` held for approval.
    b.follow("#to-agent").await;
    let own = d.ann.rest.get("/api/v1/toolboxes/own").await;
    let own = own["id"].as_str().unwrap();
    b.click(&format!("#grant-server-{own}-mine")).await;
    b.select(&format!("#rule-{own}-mine--echo"), "deny").await;
    b.select(&format!("#rule-{own}-mine--add"), "ask").await;
    b.follow("#save-toolbelt")
        .await
        .until("#sees-mine__add")
        .await;
    assert!(
        !b.has("#sees-mine__echo").await,
        "a denied tool is not seen"
    );
    let shown = b
        .js("return [...document.querySelectorAll('#agent-sees [id^=sees-]')].map(e => e.id.slice(5)).sort();")
        .await;

    // The official SDK with that token sees exactly what the page says.
    let mut sdk = Sdk::connect(&d.plane.mcp_url(), &token, "legacy").await;
    assert_eq!(json!(sdk.tool_names().await), shown);

    // An `ask` call waits; it shows up on Approvals without reload; approving returns it.
    b.goto("/approvals")
        .await
        .until("#approvals-empty")
        .await
        .mark()
        .await;
    let call = tokio::spawn(async move {
        let r = sdk.call("mine__add", json!({ "a": 40, "b": 2 })).await;
        sdk.quit().await;
        r
    });
    let card = b.attr("#approvals [id^=approval-]", "id").await.unwrap();
    assert_eq!(
        b.attr(&format!("#{card}"), "data-tool").await.as_deref(),
        Some("add")
    );
    assert!(b.text(&format!("#{card}")).await.contains("40"));
    b.still_marked().await.screenshot("approvals-pending").await;
    let id = card.strip_prefix("approval-").unwrap();
    b.follow(&format!("#approve-{id}")).await;
    let r = call.await.unwrap();
    assert_eq!(r["structured"]["sum"], 42.0, "{r}");
    b.until("#approvals-empty").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_without_javascript_reads_servers_and_approves_by_form_post() {
    let mut d = dash().await;
    let ann_caller = d.ann.clone();
    d.own_toolbox(&ann_caller, "own").await;
    d.ann
        .deploy("mine", "fixture")
        .on("own")
        .await
        .running()
        .await;
    let bot = d.ann.agent("ann-bot").await;
    d.ann.grant("ann-bot").server("mine", "own").await;
    d.ann
        .rest
        .post(
            "/api/v1/grants",
            json!({ "agent": "ann-bot", "server": "mine", "toolbox": "own", "tool": "add", "rule": "ask" }),
        )
        .await;

    let b = Browser::with(
        &d.plane.url,
        Options {
            no_javascript: true,
        },
    )
    .await;
    b.sign_in(&d.ann).await.goto("/servers").await;
    b.until_text("#server-status-mine", "running").await;
    assert!(
        !b.find("#live-state").await.is_displayed().await.unwrap(),
        "no script ran: the live indicator stays hidden"
    );

    let mut sdk = bot.mcp("legacy").await;
    let call = tokio::spawn(async move {
        let r = sdk.call("mine__add", json!({ "a": 40, "b": 2 })).await;
        sdk.quit().await;
        r
    });
    b.reload_until("/approvals", "#approvals [id^=approval-]")
        .await;
    let card = b.attr("#approvals [id^=approval-]", "id").await.unwrap();
    let id = card.strip_prefix("approval-").unwrap();
    b.checked().await;
    b.follow(&format!("#approve-{id}")).await;
    let r = call.await.unwrap();
    assert_eq!(r["structured"]["sum"], 42.0, "{r}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_admin_deploys_from_the_marketplace_form_and_watches_it_reach_running() {
    let d = dash().await;
    // A server slow to answer its handshake: `starting` for a few seconds, then running.
    let command = [
        fixture_bin().display().to_string(),
        "--start-delay-ms".into(),
        "3000".into(),
    ];
    d.admin
        .catalog(json!({ "slug": "slow-fixture", "display_name": "Slow fixture", "transport": "stdio",
            "description": "The fixture server, slow to start",
            "source": { "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command },
            "config_schema": { "type": "object", "required": ["greeting"], "properties": {
                "greeting": { "type": "string", "description": "What it says first", "default": "hello" },
                "mode": { "type": "string", "enum": ["fast", "careful"], "default": "fast" },
                "retries": { "type": "integer", "minimum": 0, "maximum": 5, "description": "How often to retry" } } } }))
        .await;
    let local = d.admin.rest.get("/api/v1/toolboxes/local").await;
    let local = local["id"].as_str().unwrap();

    let b = d.browser().await;
    b.sign_in(&d.admin).await.goto("/marketplace").await;
    b.checked().await;
    b.follow("#entry-link-slow-fixture").await.checked().await;

    // Bad values: the error stands next to its field and nothing is created.
    b.fill("#deploy-name", "Not a name!").await;
    b.follow_status("#deploy-submit", 422).await;
    b.until_text("#deploy-name-error", "lowercase").await;
    b.fill("#deploy-name", "slow").await;
    b.fill("#config-retries", "9").await;
    b.follow_status("#deploy-submit", 422).await;
    b.until("#config-retries-error").await;
    let servers = d.admin.rest.get("/api/v1/servers").await;
    assert_eq!(
        servers["items"],
        json!([]),
        "a refused deploy creates nothing: {servers}"
    );

    b.fill("#deploy-name", "slow").await;
    b.select("#deploy-toolbox", local).await;
    b.fill("#config-greeting", "hi").await;
    b.select("#config-mode", "careful").await;
    b.fill("#config-retries", "2").await;
    b.screenshot("deploy").await;
    b.follow("#deploy-submit").await.mark().await;
    assert!(
        b.path().await.starts_with("/servers/"),
        "{}",
        b.path().await
    );
    let first = b.text("#server-status-slow").await;
    assert_ne!(first, "running", "the page showed it before it ran");
    b.until_text("#server-status-slow", "running").await;
    b.still_marked().await;
    let slow = d.admin.server("slow", "local").get().await;
    assert_eq!(slow["config"]["mode"], "careful", "{slow}");
    b.close().await;
}
