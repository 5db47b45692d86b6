//! Issue 13, item 3: listing a server that acts with users' tokens. A user's token lists
//! only servers that user's connection is granted for, and what it listed is shown only
//! to agents acting with that connection. The fixtures list `only_<user>` to each user's
//! token and record every lister, so whose listing an agent was shown is plain to see.

use crate::oauth_world::*;
use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::oauth;
use toolbelt_e2e::sdk::Sdk;

fn catalog(slug: &str, url: &str) -> Value {
    json!({ "slug": slug, "source": { "type": "remote", "url": url },
        "transport": "streamable_http", "oauth": { "provider": "local", "scopes": ["read"] } })
}

async fn listers(f: &oauth::Fixture) -> Vec<Value> {
    f.get("/_test/lists").await.as_array().unwrap().clone()
}

fn of(names: &[String], prefix: &str) -> Vec<String> {
    names
        .iter()
        .filter(|n| n.starts_with(prefix))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_token_lists_only_servers_it_is_granted_for_and_only_for_its_agents() {
    let w = world(300).await;
    // Bob's own server of the same provider, and a shared one both may use, each on a
    // fixture of its own.
    let bobs = oauth::protected_mcp_per_user(&w.auth).await;
    let team = oauth::protected_mcp_per_user(&w.auth).await;
    for (slug, url) in [("bobnotes", &bobs.url), ("team", &team.url)] {
        let (s, v) = api(
            &w.server.url,
            ADMIN,
            "POST",
            "/api/v1/catalog",
            Some(catalog(slug, url)),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let admin = w.cli("admin");
    admin.ok(&["toolbox", "create", "team", "--kind", "remote", "--shared"]);
    admin.ok(&[
        "server",
        "create",
        "team",
        "--catalog",
        "team",
        "--toolbox",
        "team",
    ]);
    let bob = w.cli(&w.bob_token);
    bob.ok(&["toolbox", "create", "his", "--kind", "remote"]);
    bob.ok(&[
        "server",
        "create",
        "bnotes",
        "--catalog",
        "bobnotes",
        "--toolbox",
        "his",
    ]);
    let spy = bob.ok(&["agent", "create", "spy", "-o", "json"]).json()["token"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    bob.ok(&["grant", "create", "--agent", "spy", "--server", "bnotes"]);
    bob.ok(&["grant", "create", "--agent", "spy", "--server", "team"]);
    let alice = w.cli(&w.alice_token);
    alice.ok(&["grant", "create", "--agent", "bot", "--server", "team"]);

    // Alice grants her agent her connection for every server of the provider.
    let con = w.connect().await;
    alice.ok(&["grant", "create", "--agent", "bot", "--connection", &con]);
    let mut bot = w.agent().await;
    eventually(
        "alice's agent sees the team server as listed to her",
        WAIT,
        async || {
            let names = bot.tool_names().await;
            when(names.clone(), names.contains(&"team__only_alice".into()))
        },
    )
    .await;

    // Bob's agent, with no connection of its own, sees nothing of either server, however
    // long it looks; and bob's server never got alice's token (its catalog entry asks for
    // the same provider, but alice granted her connection to none of bob's servers).
    let mut sdk = Sdk::connect(&format!("{}/mcp", w.server.url), &spy, "legacy").await;
    for _ in 0..10 {
        let names = sdk.tool_names().await;
        assert!(
            of(&names, "team__").is_empty() && of(&names, "bnotes__").is_empty(),
            "bob's agent was shown a listing made with alice's token: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = sdk.call("team__whoami", json!({})).await;
    assert_eq!(r["code"], -32602, "{r}");
    assert!(
        !listers(&bobs).await.contains(&json!("alice")),
        "alice's token listed bob's server: {:?}",
        listers(&bobs).await
    );
    let lists = listers(&team).await;
    assert!(
        !lists.is_empty() && lists.iter().all(|u| u == "alice"),
        "{lists:?}"
    );

    // Bob connects and grants his agent: it sees the servers as listed to him, never
    // alice's listing, and its calls carry his token.
    let flow = bob
        .ok(&[
            "connection",
            "start",
            "local",
            "--login-hint",
            "bob",
            "--no-wait",
            "-o",
            "json",
        ])
        .json();
    let landing = w
        .browser("bob@example.com")
        .await
        .follow(flow["start_url"].as_str().unwrap())
        .await;
    assert!(landing.body.contains("Connected"), "{landing:?}");
    let (_, f) = api(
        &w.server.url,
        &w.bob_token,
        "GET",
        &format!(
            "/api/v1/connections/flows/{}",
            flow["flow_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let bobs_con = f["connection"]["id"].as_str().unwrap().to_string();
    bob.ok(&[
        "grant",
        "create",
        "--agent",
        "spy",
        "--connection",
        &bobs_con,
    ]);
    let names = eventually("bob's agent sees both servers", WAIT, async || {
        let names = sdk.tool_names().await;
        when(
            names.clone(),
            names.contains(&"team__whoami".into()) && names.contains(&"bnotes__only_bob".into()),
        )
    })
    .await;
    assert!(
        !names.iter().any(|n| n.ends_with("only_alice")),
        "{names:?}"
    );
    for tool in ["team__whoami", "bnotes__whoami"] {
        assert_eq!(
            whoami(&sdk.call(tool, json!({})).await)["user"],
            "bob",
            "{tool}"
        );
    }
    assert_eq!(
        whoami(&bot.call("team__whoami", json!({})).await)["user"],
        "alice"
    );
    let names = bot.tool_names().await;
    assert!(
        of(&names, "bnotes__").is_empty() && !names.iter().any(|n| n.ends_with("only_bob")),
        "{names:?}"
    );
    let lists = listers(&bobs).await;
    assert!(
        !lists.is_empty() && lists.iter().all(|u| u == "bob"),
        "{lists:?}"
    );
    sdk.quit().await;
    bot.quit().await;
}
