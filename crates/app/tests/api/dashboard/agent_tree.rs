//! The agent builder with a large tree (issue 9: 1,000 servers made a 445 KB page): the
//! tree is collapsed to toolboxes with their counts, `?toolbox=` lists one toolbox's
//! servers a page at a time, `?server=` one server's tools; saving judges only what the
//! form carried, so a grant out of view is never switched off by a save. (What it sees
//! now comes from the gateway's discovery of running servers; its paging is unit-tested
//! in `pages::agents`.)

use super::browser::{Browser, PASSWORD, catalog_fx, member};
use crate::support::App;
use http::StatusCode;
use serde_json::{Value, json};
use toolbelt_model::ServerId;
use toolbelt_model::gateway::Pin;
use toolbelt_testkit::db::TestDb;

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

async fn grants(app: &App, token: &str, agent: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/grants?agent={agent}"), token)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// A tool as discovery would have pinned it.
async fn pin(c: &mut toolbelt_store::AnyConnection, server: &str, tool: &str, definition: Value) {
    let pin = Pin {
        server_id: ServerId::from_db(server.to_string()),
        kind: Default::default(),
        tool: tool.into(),
        hash: "ab".repeat(32),
        definition,
        flags: vec![],
    };
    toolbelt_store::pins::set(c, &pin, None).await.unwrap();
}

async fn toolbox(app: &App, token: &str, name: &str) -> String {
    app.ok("/api/v1/toolboxes", token, json!({ "name": name }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_tree_opens_one_toolbox_and_server_at_a_time_and_saves_only_what_it_shows() {
    let app = App::new(TestDb::sqlite().await).await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (big, small) = (
        toolbox(&app, &ann, "big").await,
        toolbox(&app, &ann, "small").await,
    );
    let mut big_servers = Vec::new();
    for i in 0..105 {
        let s = app
            .ok(
                "/api/v1/servers",
                &ann,
                json!({ "name": format!("s{i:03}"), "catalog": "fx", "toolbox": big }),
            )
            .await;
        big_servers.push(s["id"].as_str().unwrap().to_string());
    }
    let lone = app
        .ok(
            "/api/v1/servers",
            &ann,
            json!({ "name": "lone", "catalog": "fx", "toolbox": small }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Tools as discovery would have pinned them: one per big server, two on `lone`.
    let mut c = app.store.conn().await.unwrap();
    let pins = big_servers
        .iter()
        .map(|s| (s.clone(), "echo"))
        .chain([(lone.clone(), "echo"), (lone.clone(), "wipe")]);
    for (server, tool) in pins {
        let definition = json!({ "name": tool, "description": format!("{tool}s") });
        pin(&mut c, &server, tool, definition).await;
    }
    drop(c);
    let agent = app
        .ok("/api/v1/agents", &ann, json!({ "name": "bot" }))
        .await["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Granted out of view: the first big server, and a rule on `lone`.
    let first = &big_servers[0];
    app.ok(
        "/api/v1/grants",
        &ann,
        json!({ "agent": agent, "server": first }),
    )
    .await;
    app.ok(
        "/api/v1/grants",
        &ann,
        json!({ "agent": agent, "server": lone, "tool": "wipe", "rule": "ask" }),
    )
    .await;

    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let page = format!("/agents/{agent}");

    // Collapsed: the toolboxes with their counts, no server or tool rows.
    let top = b.get(&page).await;
    assert_eq!(top.status, StatusCode::OK, "{}", top.html);
    assert!(
        top.has(&format!(r#"id="grant-toolbox-{big}""#))
            && top.has(&format!(r#"id="grant-toolbox-{small}""#))
    );
    assert_eq!(count(&top.html, r#"id="grant-server-"#), 0, "{}", top.html);
    assert!(
        top.has("105 server(s), 1 granted one by one"),
        "{}",
        top.html
    );
    assert!(top.has(&format!(r#"href="/agents/{agent}?toolbox={big}#tb-{big}""#)));
    assert!(top.html.len() < 20_000, "{} bytes", top.html.len());

    // One toolbox: its first 100 servers, each with its counts, no tools; then the rest.
    let opened = b.get(&format!("{page}?toolbox={big}")).await;
    assert_eq!(
        count(&opened.html, &format!(r#"id="grant-server-{big}-"#)),
        100
    );
    assert_eq!(
        count(&opened.html, &format!(r#"id="grant-server-{small}-"#)),
        0
    );
    assert_eq!(count(&opened.html, r#"id="rule-"#), 0);
    assert!(opened.has("Servers 1–100 of 105"), "{}", opened.html);
    assert!(opened.has(&format!(r#"id="grant-server-{big}-s000" checked"#)));
    let rest = b.get(&format!("{page}?toolbox={big}&from=100")).await;
    assert_eq!(count(&rest.html, &format!(r#"id="grant-server-{big}-"#)), 5);
    assert!(rest.has("Servers 101–105 of 105"), "{}", rest.html);
    // An offset past the end shows the last page, nonsense the first.
    let past = b.get(&format!("{page}?toolbox={big}&from=900")).await;
    assert!(past.has("Servers 101–105 of 105"));
    let junk = b
        .get(&format!("{page}?toolbox={big}&from=x&server=%3Cscript%3E"))
        .await;
    assert_eq!(junk.status, StatusCode::OK);
    assert!(junk.has("Servers 1–100 of 105") && !junk.has("<script>"));

    // One server: its toolbox open, its tools with their rules.
    let small_open = b.get(&format!("{page}?toolbox={small}")).await;
    assert!(small_open.has("2 tool(s) · 1 ask"), "{}", small_open.html);
    assert_eq!(count(&small_open.html, r#"id="rule-"#), 0);
    let tools = b.get(&format!("{page}?server={lone}")).await;
    assert!(
        tools.has(&format!(r#"id="rule-{small}-lone--wipe""#))
            && tools.has(&format!(r#"id="rule-{small}-lone--echo""#))
    );
    assert!(tools.has(r#"<option value="ask" selected>"#));
    assert!(tools.has(&format!(r#"name="open-server" value="{lone}""#)));
    assert_eq!(
        count(&tools.html, &format!(r#"id="grant-server-{big}-"#)),
        0
    );

    // Saving that view, as its form posts it: the big server out of view keeps its grant.
    let (tb_big, tb_small) = (format!("toolbox:{big}"), format!("toolbox:{small}"));
    let (srv_lone, wipe, echo) = (
        format!("server:{lone}"),
        format!("tool:{lone}:wipe"),
        format!("tool:{lone}:echo"),
    );
    let saved = b
        .post(
            &format!("{page}/toolbelt"),
            &[
                ("open-server", &lone),
                (&tb_big, "off"),
                (&tb_small, "off"),
                (&srv_lone, "off"),
                (&srv_lone, "on"),
                (&echo, ""),
                (&wipe, "deny"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let back = saved.location.unwrap();
    assert!(
        back.starts_with(&format!("{page}?server={lone}&done=")),
        "{back}"
    );
    let now = grants(&app, &ann, &agent).await;
    let active = |server: &str| {
        now.iter()
            .any(|g| g["kind"] == "server" && g["server_id"] == server && g["active"] == true)
    };
    assert!(active(first), "the grant out of view stays: {now:?}");
    assert!(active(&lone), "{now:?}");
    assert!(
        now.iter()
            .any(|g| g["tool"] == "wipe" && g["rule"] == "deny"),
        "{now:?}"
    );
    assert_eq!(now.iter().filter(|g| g["kind"] == "toolbox").count(), 0);

    // Unchecked in view (the hidden `off` alone), it is switched off.
    let first_field = format!("server:{first}");
    b.get(&format!("{page}?toolbox={big}")).await;
    b.post(
        &format!("{page}/toolbelt"),
        &[("open-toolbox", &big), (&first_field, "off")],
    )
    .await;
    let now = grants(&app, &ann, &agent).await;
    assert!(
        now.iter()
            .any(|g| g["server_id"] == first.as_str() && g["active"] == false),
        "{now:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_many_tools_lists_them_a_page_at_a_time_and_saves_only_that_page() {
    let app = App::new(TestDb::sqlite().await).await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let tb = toolbox(&app, &ann, "wide").await;
    let srv = app
        .ok(
            "/api/v1/servers",
            &ann,
            json!({ "name": "many", "catalog": "fx", "toolbox": tb }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = app.store.conn().await.unwrap();
    for i in 0..450 {
        let tool = format!("t{i:03}");
        pin(&mut c, &srv, &tool, json!({ "name": tool })).await;
    }
    drop(c);
    let agent = app
        .ok("/api/v1/agents", &ann, json!({ "name": "bot" }))
        .await["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.ok(
        "/api/v1/grants",
        &ann,
        json!({ "agent": agent, "server": srv, "tool": "t000", "rule": "ask" }),
    )
    .await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let page = format!("/agents/{agent}");

    let first = b.get(&format!("{page}?server={srv}")).await;
    assert_eq!(
        count(&first.html, r#"id="rule-"#),
        200,
        "a page of tools, not 450"
    );
    assert!(
        first.has("Tools 1–200 of 450") && first.has("450 tool(s) · 1 ask"),
        "{}",
        first.html
    );
    assert!(
        first.has(&format!(
            r#"href="{page}?toolbox={tb}&#38;server={srv}&#38;tools=200#srv-{tb}-many""#
        )),
        "{}",
        first.html
    );
    let last = b.get(&format!("{page}?server={srv}&tools=400")).await;
    assert_eq!(count(&last.html, r#"id="rule-"#), 50);
    assert!(last.has("Tools 401–450 of 450") && last.has(&format!(r#"id="rule-{tb}-many--t449""#)));
    assert!(
        last.has(r#"name="open-tools" value="400""#),
        "saving returns to this page"
    );
    let past = b.get(&format!("{page}?server={srv}&tools=9999")).await;
    assert!(
        past.has("Tools 401–450 of 450"),
        "past the end: the last page"
    );

    // Saving the last page: its rule is set, the rule on the first page (not posted) stays.
    let field = format!("tool:{srv}:t420");
    let saved = b
        .post(
            &format!("{page}/toolbelt"),
            &[
                ("open-server", &srv),
                ("open-tools", "400"),
                (&field, "deny"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert!(saved.location.unwrap().contains("tools=400"));
    let now = grants(&app, &ann, &agent).await;
    let rule = |t: &str| {
        now.iter()
            .find(|g| g["tool"] == t)
            .map(|g| g["rule"].clone())
    };
    assert_eq!(rule("t420"), Some(json!("deny")), "{now:?}");
    assert_eq!(rule("t000"), Some(json!("ask")), "{now:?}");
}
