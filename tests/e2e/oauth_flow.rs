//! OAuth end to end, against a strict Authlib authorization server and an MCP server (the
//! official SDK) that accepts only its tokens: connect through the CLI + browser flow,
//! grant an agent the connection, its calls carry the user's token, the token refreshes
//! on its own (rotating refresh tokens, no calls needed), revocation stops the next call,
//! a provider-side revocation marks the connection `needs_reauth`, bad flows are refused
//! with nothing stored, and the database holds no token in clear.

use crate::oauth_world::*;
use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::oauth::{Browser, CLIENT_ID, CLIENT_SECRET};
use toolbelt_e2e::sdk::Sdk;
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connected_account_is_used_refreshed_and_revoked_for_its_agent_only() {
    let w = world(4).await;
    let con = w.connect().await;
    let c = w.connection(&con).await;
    assert_eq!(
        (c["status"].as_str(), c["provider"].as_str()),
        (Some("active"), Some("local")),
        "{c}"
    );
    assert!(
        c["expires_at"].is_string() && c["has_refresh_token"] == true,
        "{c}"
    );
    assert_eq!(c["scopes"], json!(["read", "write"]), "{c}");

    // No grant yet: the server acts with local tokens, so the call is refused, not sent bare.
    let mut sdk = Sdk::connect(&format!("{}/mcp", w.server.url), &w.agent_token, "legacy").await;
    let r = sdk.call("notes__whoami", json!({})).await;
    assert!(r["ok"] != true, "{r}");

    // Another member's connection is never grantable, whoever asks.
    let bob = w.cli(&w.bob_token);
    bob.ok(&["agent", "create", "spy"]);
    let r = bob.run(&["grant", "create", "--agent", "spy", "--connection", &con]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("of the agent's owner"), "{}", r.stderr);
    w.cli("admin").ok(&["agent", "create", "adminbot"]);
    let r = w.cli("admin").run(&[
        "grant",
        "create",
        "--agent",
        "adminbot",
        "--connection",
        &con,
    ]);
    assert_eq!(r.code, 1, "admins cannot lend a member's connection either");

    w.cli(&w.alice_token).ok(&[
        "grant",
        "create",
        "--agent",
        "bot",
        "--connection",
        &con,
        "--server",
        "notes",
    ]);
    sdk.quit().await;
    let mut sdk = w.agent().await;
    let first = whoami(&sdk.call("notes__whoami", json!({})).await);
    assert_eq!(first["user"], "alice", "{first}");
    let calls = w.mcp.get("/_test/calls").await;
    assert_eq!(
        calls.as_array().unwrap().last().unwrap()["user"],
        "alice",
        "{calls}"
    );

    // The call's audit event names the connection; the agent's token never went upstream
    // (the server accepted only a token the authorization server issued to alice).
    let (_, ev) = api(
        &w.server.url,
        ADMIN,
        "GET",
        "/api/v1/audit?action=tool.call",
        None,
    )
    .await;
    let last = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["outcome"] == "success")
        .unwrap()
        .clone();
    assert_eq!(detail(&last)["connection"], con.as_str(), "{last}");
    let (_, ev) = api(
        &w.server.url,
        ADMIN,
        "GET",
        "/api/v1/audit?action=secret.decrypt",
        None,
    )
    .await;
    assert!(
        ev["items"]
            .as_array()
            .unwrap()
            .iter()
            // The token is opened once per version and cached: by the call that needed
            // it, or by the discovery that listed the server's tools with it first (the
            // call itself is audited above, naming the connection).
            .any(|e| ["oauth.inject", "oauth.discovery"]
                .contains(&detail(e)["purpose"].as_str().unwrap_or(""))),
        "{ev}"
    );

    // Idle: no calls, and the refresher renews before expiry, twice more, rotating each
    // time (each refresh presents the refresh token the previous one returned).
    let before = w.auth.events("refresh_used").await.len();
    eventually("two refreshes", Duration::from_secs(30), || async {
        (w.auth.events("refresh_used").await.len() >= before + 2).then_some(())
    })
    .await;
    assert!(
        w.auth.events("refresh_reuse_detected").await.is_empty(),
        "a rotated refresh token was presented twice"
    );
    let c = w.connection(&con).await;
    assert!(
        c["last_refresh_at"].is_string() && c["status"] == "active",
        "{c}"
    );
    let second = whoami(&sdk.call("notes__whoami", json!({})).await);
    assert_eq!(second["user"], "alice");

    assert_ne!(
        second["token_id"], first["token_id"],
        "the call carries the refreshed token"
    );

    // Nothing readable in the database: no token, no secret value (but the dump is real:
    // non-secret values are there).
    let canary = format!("CANARY-{}", con.to_ascii_uppercase());
    let f = w.dir.path().join("canary");
    std::fs::write(&f, &canary).unwrap();
    w.cli(&w.alice_token).ok(&[
        "secret",
        "create",
        "canary",
        "--from-file",
        f.to_str().unwrap(),
    ]);
    let db = database_bytes(&w);
    assert!(
        contains(&db, con.as_bytes()) && contains(&db, CLIENT_ID.as_bytes()),
        "the dump is not the database"
    );
    assert!(
        !contains(&db, canary.as_bytes()),
        "a secret value is in the database in clear"
    );
    assert!(
        !contains(&db, CLIENT_SECRET.as_bytes()),
        "the client secret is in the database in clear"
    );
    assert!(
        !has_token(&db),
        "an OAuth token is in the database in clear"
    );
    assert!(!contains(
        &w.server.log_text().into_bytes(),
        canary.as_bytes()
    ));
    assert!(
        !has_token(w.server.log_text().as_bytes()),
        "a token is in the log"
    );

    // Revocation: at the provider, and here, effective for the very next call.
    let r = w
        .cli(&w.alice_token)
        .ok(&["connection", "revoke", &con, "-o", "json"])
        .json();
    assert_eq!(r["provider_revoked"], true, "{r}");
    assert!(!w.auth.events("revocation_requested").await.is_empty());
    // The agent acts with no connection now, so it is shown nothing a connection listed.
    let r = sdk.call("notes__whoami", json!({})).await;
    assert_eq!(r["code"], -32602, "{r}");
    let (_, list) = w.alice_api("GET", "/api/v1/connections", None).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    let (_, secrets) = w.alice_api("GET", "/api/v1/secrets", None).await;
    assert!(
        secrets["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["kind"] != "oauth_token"),
        "the tokens went with the connection: {secrets}"
    );
    let v = w.cli("admin").ok(&["audit", "verify", "-o", "json"]).json();
    assert_eq!(v["ok"], true, "{v}");
    sdk.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_at_the_provider_the_connection_needs_reauth_calls_stop_and_a_reconnect_restores_it()
 {
    let w = world(30).await;
    let con = w.connect().await;
    w.cli(&w.alice_token)
        .ok(&["grant", "create", "--agent", "bot", "--connection", &con]);
    let mut sdk = w.agent().await;
    assert_eq!(
        whoami(&sdk.call("notes__whoami", json!({})).await)["user"],
        "alice"
    );

    w.auth.post("/_test/revoke-all?user=alice").await;
    // The next refresh (forced now rather than waiting for the schedule) is refused.
    let (s, v) = w
        .alice_api(
            "POST",
            &format!("/api/v1/connections/{con}/refresh"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "needs_reauth", "{v}");
    assert!(
        v["last_error"].as_str().unwrap().contains("invalid_grant"),
        "{v}"
    );
    let (_, ev) = api(
        &w.server.url,
        ADMIN,
        "GET",
        "/api/v1/audit?action=connection.refresh",
        None,
    )
    .await;
    assert!(
        ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "failure" && detail(e)["status"] == "needs_reauth"),
        "{ev}"
    );
    let r = sdk.call("notes__whoami", json!({})).await;
    assert_eq!(r["code"], -32006, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("re-authorization"),
        "{r}"
    );

    // Alice reconnects (CLI, then her browser): the same connection is active again, so
    // the grant naming it holds, and the agent's calls work on the new grant's tokens.
    let flow = w.reconnect(&con);
    assert_eq!(flow["scopes"], w.connection(&con).await["scopes"], "{flow}");
    assert_eq!(w.complete(&flow).await, con, "the same connection");
    let v = w.connection(&con).await;
    assert_eq!(v["status"], "active", "{v}");
    assert_eq!(v["last_error"], Value::Null, "{v}");
    let (_, list) = w.alice_api("GET", "/api/v1/connections", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let r = sdk.call("notes__whoami", json!({})).await;
    assert_eq!(whoami(&r)["user"], "alice", "{r}");
    let (_, ev) = api(
        &w.server.url,
        ADMIN,
        "GET",
        "/api/v1/audit?action=connection.reconnect",
        None,
    )
    .await;
    let items = ev["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|e| e["target_id"] == con.as_str() && e["outcome"] == "success"),
        "{ev}"
    );
    sdk.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_flows_are_refused_and_store_nothing() {
    let w = world(60).await;
    let alice = w.browser("alice@example.com").await;
    let bob = w.browser("bob@example.com").await;
    let base = &w.server.url;

    // Unknown provider; unknown state; no state.
    let r = w.cli(&w.alice_token).run(&["connection", "start", "nope"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no provider nope"), "{}", r.stderr);
    for q in ["code=x&state=bogus", "code=x"] {
        let l = alice
            .follow(&format!("{base}/oauth/local/callback?{q}"))
            .await;
        assert_eq!(l.status, 400, "{l:?}");
        assert!(l.body.contains("urn:toolbelt:problem:oauth-state"), "{l:?}");
    }

    // Another member cannot open alice's start URL.
    let flow = w.start();
    let l = bob.follow(flow["start_url"].as_str().unwrap()).await;
    assert_eq!(l.status, 400, "{l:?}");
    assert!(l.body.contains("of yours"), "{l:?}");

    // The callback must come back to the session that started it; the state is then
    // spent, so neither a cookie-less nor a later replay completes it.
    let cb = alice
        .until_callback(flow["start_url"].as_str().unwrap())
        .await;
    let l = Browser::new().follow(&cb).await;
    assert_eq!(l.status, 401, "{l:?}");
    let l = bob.follow(&cb).await;
    assert_eq!(l.status, 400, "{l:?}");
    assert!(
        l.body.contains("did not come from the browser session"),
        "{l:?}"
    );
    let l = alice.follow(&cb).await;
    assert_eq!(l.status, 400, "{l:?}");
    assert!(l.body.contains("already used"), "{l:?}");

    // The provider says no.
    let flow = w.start();
    let cb = alice
        .until_callback(flow["start_url"].as_str().unwrap())
        .await;
    let state = cb
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let l = alice
        .follow(&format!("{base}/oauth/local/callback?state={state}&error=access_denied&error_description=no+thanks"))
        .await;
    assert_eq!(l.status, 400, "{l:?}");
    assert!(
        l.body.contains("provider-refused") && l.body.contains("access_denied"),
        "{l:?}"
    );
    let (_, s) = w
        .alice_api(
            "GET",
            &format!(
                "/api/v1/connections/flows/{}",
                flow["flow_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(s["status"], "failed", "{s}");

    // A wrong PKCE verifier: the strict provider refuses the code.
    let flow = w.start();
    let cb = alice
        .until_callback(flow["start_url"].as_str().unwrap())
        .await;
    let store = toolbelt_store::Store::open(
        &format!(
            "sqlite://{}",
            w.dir.path().join("data/toolbelt.db").display()
        ),
        Default::default(),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE oauth_flows SET verifier = $1 WHERE id = $2")
        .bind("x".repeat(64))
        .bind(flow["flow_id"].as_str().unwrap().to_string())
        .execute(&mut *store.conn().await.unwrap())
        .await
        .unwrap();
    let l = alice.follow(&cb).await;
    assert_eq!(l.status, 400, "{l:?}");
    assert!(l.body.contains("invalid_grant"), "{l:?}");
    assert!(
        w.auth
            .events("token_error")
            .await
            .iter()
            .any(|e| e["error"] == "invalid_grant"),
        "the provider saw the wrong verifier"
    );

    // Malformed token responses.
    for mode in ["garbage", "missing", "error"] {
        w.auth.post(&format!("/_test/mode?token={mode}")).await;
        let flow = w.start();
        let l = alice.follow(flow["start_url"].as_str().unwrap()).await;
        assert_eq!(l.status, 502, "{mode}: {l:?}");
        assert!(l.body.contains("provider-failed"), "{mode}: {l:?}");
    }
    w.auth.post("/_test/mode?token=normal").await;

    // Nothing half-stored: no connection, no token secret.
    let (_, list) = w.alice_api("GET", "/api/v1/connections", None).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    let (_, secrets) = w.alice_api("GET", "/api/v1/secrets", None).await;
    assert!(secrets["items"].as_array().unwrap().is_empty(), "{secrets}");
    // And after all that, the flow still works.
    w.connect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_serving_one_user_gets_its_token_at_deploy_and_rolls_on_refresh() {
    let w = world(6).await;
    let alice = w.cli(&w.alice_token);
    // Alice's own toolbox (a DTMA process) and a stdio server acting with `local` tokens.
    alice.ok(&["toolbox", "create", "desk"]);
    let join = alice
        .ok(&["toolbox", "join-token", "desk", "-o", "json"])
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let _dtma = toolbelt_e2e::DtmaProc::start(
        &w.server.url,
        Some(&join),
        &w.dir.path().join("dtma"),
        "process",
        &[],
    )
    .await;
    let entry = w.dir.path().join("entry.json");
    std::fs::write(&entry, json!({
        "slug": "boxed", "transport": "stdio", "oauth": { "provider": "local" },
        "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
                    "command": [toolbelt_testkit::fixture::fixture_bin().display().to_string()] },
    }).to_string()).unwrap();
    w.cli("admin").ok(&[
        "catalog",
        "create",
        "boxed",
        "--file",
        entry.to_str().unwrap(),
    ]);

    // Without a connection the deploy fails, saying why.
    alice.ok(&[
        "server",
        "create",
        "nb",
        "--catalog",
        "boxed",
        "--toolbox",
        "desk",
    ]);
    let failed = eventually("the deploy to fail", Duration::from_secs(30), || async {
        let v = alice.ok(&["server", "get", "nb", "-o", "json"]).json();
        v["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("local connection"))
            .then_some(v)
    })
    .await;
    assert_ne!(failed["status"], "running", "{failed}");

    // Connecting rolls it onto the new token: no restart by hand.
    let con = w.connect().await;
    let running = eventually("nb running", Duration::from_secs(30), || async {
        let v = alice.ok(&["server", "get", "nb", "-o", "json"]).json();
        (v["status"] == "running" && v["health"] == "ok").then_some(v)
    })
    .await;
    alice.ok(&["grant", "create", "--agent", "bot", "--server", "nb"]);
    let mut sdk = Sdk::connect(&format!("{}/mcp", w.server.url), &w.agent_token, "legacy").await;
    let seen = eventually("the token delivered", WAIT, async || {
        let r = sdk
            .call("nb__secret", json!({ "name": "OAUTH_ACCESS_TOKEN" }))
            .await;
        when(r.clone(), r["ok"] == true)
    })
    .await;
    assert_eq!(
        seen["structured"],
        json!({ "set": true, "len": 43, "prefix": "at_" }),
        "{seen}"
    );

    // A refresh replaces the token: the server is recreated with the new one.
    let generation = running["generation"].as_i64().unwrap();
    eventually(
        "nb rolled onto a refreshed token",
        Duration::from_secs(30),
        || async {
            let v = alice.ok(&["server", "get", "nb", "-o", "json"]).json();
            (v["generation"].as_i64() > Some(generation)).then_some(())
        },
    )
    .await;
    let (_, ev) = api(
        &w.server.url,
        ADMIN,
        "GET",
        "/api/v1/audit?action=server.restart",
        None,
    )
    .await;
    assert!(
        ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| detail(e)["connection"] == con.as_str()),
        "{ev}"
    );
    sdk.quit().await;
}
