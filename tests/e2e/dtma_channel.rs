//! The DTMA channel (issue 11.3), on the process runtime. Heartbeat replies and secret
//! deliveries are signed with the control key the DTMA pinned at join, over the request's
//! nonce: a party in the middle that alters the desired set, replays an old reply, or
//! swaps a secret's value is rejected and logged, and the DTMA keeps what it last
//! verified. A DTMA serving TLS has its key pinned at join: joins, deploys (secrets
//! delivered), heartbeats and gateway calls work over it across a certificate renewed for
//! the same key, with no CA trusted; an interceptor holding a certificate from a CA the
//! control plane trusts, but another key, is refused naming the pin mismatch. DTMAs on
//! plain HTTP keep working until an admin requires TLS, and are then refused saying so.

use crate::dtma_channel_mitm::{Mitm, Mode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use toolbelt_dtma::DtmaOptions;
use toolbelt_e2e::eventually::{WAIT, eventually, when};
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::plane::{ADMIN, Plane};
use toolbelt_e2e::tls::TestCa;
use toolbelt_e2e::world::{Bot, Caller};
use toolbelt_model::server::{DesiredState, ServerStatus};
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_net::dtma_pin::{DtmaClients, SpkiPin};
use toolbelt_testkit::fixture::fixture_bin;

const SECRET: &str = "the-real-api-key-0123456789";

/// The fixture server, with an API key delivered as an environment variable.
fn keyed_entry() -> Value {
    json!({ "slug": "keyed", "transport": "stdio",
        "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
            "command": [fixture_bin().display().to_string()] },
        "secrets": [{ "name": "API_KEY", "delivery": "env" }] })
}

#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    /// This process's log (each test runs in a process of its own under nextest).
    fn capture() -> LogBuf {
        let logs = LogBuf::default();
        let w = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info,hyper=warn,sqlx=warn")
            .with_ansi(false)
            .with_writer(move || w.clone())
            .try_init()
            .expect("the only subscriber of this test process");
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }
}

fn dtma_options(server_url: &str, dir: &std::path::Path, join: String) -> DtmaOptions {
    let mut o = DtmaOptions::new(server_url, dir.join("dtma"));
    o.join_token = Some(join);
    o.runtime = Some(ToolboxKind::Process);
    o.reconcile_interval = Duration::from_millis(200);
    o
}

/// An agent of the admin's granted `server` on `toolbox`.
async fn bot_for(admin: &Caller, server: &str, toolbox: &str) -> Bot {
    let bot = admin.agent(&format!("{server}-bot")).await;
    admin.grant(&bot.name).server(server, toolbox).await;
    bot
}

/// `tool` through the gateway as `bot`, once the gateway lists it.
async fn call(mcp_url: &str, bot: &Bot, tool: &str, args: Value) -> Value {
    let mut m = Mcp::new(mcp_url, &bot.token);
    m.initialize().await;
    eventually(&format!("{tool} through the gateway"), WAIT, async || {
        let r = m.tool(tool, args.clone()).await;
        when(r.clone(), r["result"].is_object())
    })
    .await
}

fn text(v: &Value) -> &str {
    v["result"]["content"][0]["text"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn altered_and_replayed_heartbeat_replies_and_an_altered_secret_delivery_are_rejected_and_logged()
 {
    let logs = LogBuf::capture();
    let plane = Plane::start(Duration::from_millis(200)).await;
    // In the middle of the DTMA → control plane direction ...
    let mitm = Mitm::plain(&plane.url).await;
    // ... and a plain relay in front of the DTMA, which can be cut to make pushes fail.
    let port = toolbelt_testkit::proc::free_port();
    let dtma_url = format!("http://127.0.0.1:{port}");
    let front = Mitm::plain(&dtma_url).await;
    let (_, join) = plane.toolbox("tapped").await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = dtma_options(&mitm.url, dir.path(), join);
    opts.listen = format!("127.0.0.1:{port}").parse().unwrap();
    opts.advertise_url = Some(front.url.clone());
    let dtma = toolbelt_dtma::start(opts).await.unwrap();
    plane.catalog(keyed_entry()).await;
    plane
        .ok(
            "POST",
            "/api/v1/secrets",
            json!({ "name": "chan-key", "value": SECRET, "kind": "api_key", "shared": true }),
        )
        .await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "keyed", "toolbox": "tapped",
        "secrets": { "API_KEY": "chan-key" } }),
        )
        .await;
    plane
        .wait_server("fx", "tapped", "fx running", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    assert!(mitm.has_first_beat(), "heartbeats pass through the proxy");

    // The desired set rewritten (every server `stopped`), then the first reply the proxy
    // saw (validly signed, before fx existed: an empty set) replayed: neither is applied.
    for (mode, what) in [
        (Mode::AlterHeartbeat, "altered"),
        (Mode::ReplayHeartbeat, "replayed"),
    ] {
        let (rejected, changed) = (logs.count("heartbeat reply rejected"), mitm.changed());
        mitm.set_mode(mode);
        eventually(
            &format!("{what} heartbeat replies rejected"),
            WAIT,
            async || {
                let n = logs.count("heartbeat reply rejected");
                let c = mitm.changed();
                when(
                    format!("{n} rejected, {c} changed"),
                    n >= rejected + 3 && c >= changed + 3,
                )
            },
        )
        .await;
        let fx = dtma
            .supervisor
            .observed()
            .into_iter()
            .find(|o| o.name == "fx")
            .unwrap_or_else(|| panic!("{what}: fx is no longer managed"));
        assert_eq!(fx.status, ServerStatus::Running, "{what}: {fx:?}");
        let spec = dtma.supervisor.spec(&fx.id).unwrap();
        assert_eq!(spec.desired, DesiredState::Running, "{what}");
    }
    mitm.set_mode(Mode::Pass);
    let log = logs.text();
    assert!(
        log.contains("keeping the previous desired set")
            && log.contains("does not verify with the control plane's key pinned at join"),
        "{log}"
    );

    // A server whose push does not arrive: the DTMA learns it from a heartbeat and fetches
    // its secret over the channel, where the proxy swaps the value: refused, the server
    // not started with it, the reason on the server.
    front.set_upstream("http://127.0.0.1:1");
    mitm.set_mode(Mode::AlterSecrets);
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "fy", "catalog": "keyed", "toolbox": "tapped",
        "secrets": { "API_KEY": "chan-key" } }),
        )
        .await;
    let failed = plane
        .wait_server(
            "fy",
            "tapped",
            "fy refusing the altered secret",
            WAIT,
            |v| {
                v["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("secret delivery reply rejected"))
            },
        )
        .await;
    assert_ne!(failed["status"], "running", "{failed}");
    assert!(mitm.changed() > 0);
    front.set_upstream(&dtma_url);
    mitm.set_mode(Mode::Pass);
    plane
        .wait_server("fy", "tapped", "fy running with its secret", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    let bot = bot_for(plane.admin(), "fy", "tapped").await;
    let r = call(
        &plane.mcp_url(),
        &bot,
        "fy__env",
        json!({ "name": "API_KEY" }),
    )
    .await;
    assert_eq!(
        r["result"]["structuredContent"],
        json!({ "set": true, "len": SECRET.len() }),
        "the real value, not the attacker's: {r}"
    );
    assert!(
        !logs.text().contains(SECRET),
        "a secret value reached the log"
    );
    dtma.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_dtma_is_pinned_at_join_and_serves_deploys_secrets_and_calls_across_a_renewed_certificate()
 {
    let ca = TestCa::new("dtma");
    // The control plane trusts no CA for it: the pin alone lets it in.
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (_, join) = plane.toolbox("sealed").await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = dtma_options(&plane.url, dir.path(), join);
    opts.tls = Some(ca.files());
    let dtma = toolbelt_dtma::start(opts).await.unwrap();
    let tb = plane
        .wait_toolbox("sealed", "active", Duration::from_secs(30))
        .await;
    let pin: SpkiPin = toolbelt_net::tls::Acceptor::load(&ca.files())
        .unwrap()
        .pin()
        .unwrap();
    assert_eq!(tb["dtma_url"], format!("https://{}", dtma.addr), "{tb}");
    assert_eq!(tb["dtma_tls_pin"], pin.as_str(), "{tb}");

    plane.catalog(keyed_entry()).await;
    plane
        .ok(
            "POST",
            "/api/v1/secrets",
            json!({ "name": "tls-key", "value": SECRET, "kind": "api_key", "shared": true }),
        )
        .await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "keyed", "toolbox": "sealed",
        "secrets": { "API_KEY": "tls-key" } }),
        )
        .await;
    plane
        .wait_server("fx", "sealed", "fx running", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    let bot = bot_for(plane.admin(), "fx", "sealed").await;
    let r = call(
        &plane.mcp_url(),
        &bot,
        "fx__env",
        json!({ "name": "API_KEY" }),
    )
    .await;
    assert_eq!(
        r["result"]["structuredContent"],
        json!({ "set": true, "len": SECRET.len() }),
        "{r}"
    );
    // The control plane's own calls (logs) go over the pinned channel too.
    let (status, logs) = plane
        .api("GET", "/api/v1/servers/fx/logs?toolbox=sealed", None)
        .await;
    assert_eq!(status, 200, "{logs}");

    // A certificate renewed for the same key: served once reloaded, and still accepted by
    // the pin on new connections; calls go on.
    let renewed = ca.renew_same_key();
    let healthz = format!("https://{}/healthz", dtma.addr);
    eventually("the renewed certificate served", WAIT, async || {
        // A new client per look: a resumed TLS session shows the first certificate.
        let probe = ca.outbound().builder().tls_info(true).build().unwrap();
        let r = probe.get(&healthz).send().await.unwrap();
        let served = r
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .unwrap()
            .to_vec();
        served == renewed
    })
    .await;
    let pinned = DtmaClients::new(&Default::default(), |b| b.pool_max_idle_per_host(0));
    let r = pinned.get(Some(pin.as_str())).get(&healthz).send().await;
    assert!(r.as_ref().is_ok_and(|r| r.status().is_success()), "{r:?}");
    plane
        .ok(
            "POST",
            "/api/v1/servers/fx/restart?toolbox=sealed",
            json!({}),
        )
        .await;
    plane
        .wait_server("fx", "sealed", "fx restarted", WAIT, |v| {
            v["status"] == "running" && v["generation"].as_i64() > Some(1)
        })
        .await;
    let r = call(
        &plane.mcp_url(),
        &bot,
        "fx__echo",
        json!({ "text": "renewed" }),
    )
    .await;
    assert_eq!(text(&r), "renewed", "{r}");
    dtma.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interceptor_with_a_trusted_certificate_for_another_key_is_refused_naming_the_pin() {
    let ca = TestCa::new("dtma");
    // The control plane trusts the CA that issued the interceptor's certificate too:
    // without the pin, calls would go through it.
    let plane = Plane::start_with(Duration::from_millis(300), |o| {
        o.outbound = ca.outbound();
    })
    .await;
    let (_, join) = plane.toolbox("tapped").await;
    let dir = tempfile::tempdir().unwrap();
    let port = toolbelt_testkit::proc::free_port();
    let mitm = Mitm::tls(
        &format!("https://127.0.0.1:{port}"),
        &ca.other_leaf(dir.path()),
        ca.outbound().builder().build().unwrap(),
    )
    .await;
    // The DTMA says it is where the interceptor listens.
    let mut opts = dtma_options(&plane.url, dir.path(), join);
    opts.tls = Some(ca.files());
    opts.listen = format!("127.0.0.1:{port}").parse().unwrap();
    opts.advertise_url = Some(mitm.url.clone());
    let dtma = toolbelt_dtma::start(opts).await.unwrap();
    plane.catalog(keyed_entry()).await;
    plane
        .ok(
            "POST",
            "/api/v1/secrets",
            json!({ "name": "k", "value": SECRET, "kind": "api_key", "shared": true }),
        )
        .await;
    // The server runs (the DTMA learns it from its heartbeat reply) ...
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "keyed", "toolbox": "tapped",
        "secrets": { "API_KEY": "k" } }),
        )
        .await;
    let srv = plane
        .wait_server("fx", "tapped", "fx running", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    // ... but nothing the control plane sends reaches the interceptor: the gateway's
    // discovery fails naming the pin mismatch, ...
    let id = toolbelt_model::ServerId::parse(srv["id"].as_str().unwrap()).unwrap();
    let registry = plane.app().app().gateway().registry.clone();
    let error = eventually("discovery refusing the interceptor", WAIT, async || {
        let e = registry.get(&id).and_then(|e| e.error.clone());
        match e {
            Some(e) if e.contains("not the key pinned") => Ok(e),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        error.contains("is not the key pinned when it joined"),
        "{error}"
    );
    // ... the control plane's own calls are refused the same way, ...
    let (status, v) = plane
        .api("GET", "/api/v1/servers/fx/logs?toolbox=tapped", None)
        .await;
    assert_eq!(status, 503, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("not the key pinned"),
        "{v}"
    );
    // ... and an agent sees no tool of it.
    let bot = bot_for(plane.admin(), "fx", "tapped").await;
    let mut m = Mcp::new(&plane.mcp_url(), &bot.token);
    m.initialize().await;
    let r = m.tool("fx__echo", json!({ "text": "leak?" })).await;
    assert!(r["error"].is_object(), "{r}");
    assert_eq!(mitm.seen(), Vec::<String>::new(), "requests got through");
    dtma.shutdown().await;
}

/// An app over `data` (the same database and keys across restarts).
async fn app_on(
    data: &std::path::Path,
    heartbeat: Duration,
    require_tls: bool,
) -> toolbelt_app::Running {
    let mut o = toolbelt_app::Options::new(data).heartbeat(heartbeat);
    o.listen = "127.0.0.1:0".parse().unwrap();
    o.bootstrap_token = Some(ADMIN.into());
    o.outbound.dtma.require_tls = require_tls;
    toolbelt_app::start(o).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plain_http_dtma_works_until_an_admin_requires_tls_then_is_refused_saying_so() {
    let logs = LogBuf::capture();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cp");
    let app = app_on(&data, Duration::from_millis(200), false).await;
    // One address for the control plane across its restart.
    let front = Mitm::plain(app.url()).await;
    let admin = Caller::new(&front.url, ADMIN);
    let tb = admin.toolbox("plain").shared().await;
    let join = tb.join_token().await;
    let dtma = toolbelt_dtma::start(dtma_options(&front.url, dir.path(), join))
        .await
        .unwrap();
    admin
        .catalog(json!({ "slug": "fixture", "transport": "stdio",
        "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
            "command": [fixture_bin().display().to_string()] } }))
        .await;
    let fx = admin.deploy("fx", "fixture").on("plain").await;
    fx.running().await;
    let bot = bot_for(&admin, "fx", "plain").await;
    let mcp = format!("{}/mcp", front.url);
    let r = call(&mcp, &bot, "fx__echo", json!({ "text": "in clear" })).await;
    assert_eq!(text(&r), "in clear", "{r}");

    // The admin requires TLS (a long heartbeat interval, so the toolbox is not yet
    // unresponsive when the gateway is asked).
    app.shutdown().await.unwrap();
    let app = app_on(&data, Duration::from_secs(120), true).await;
    front.set_upstream(app.url());
    let line = eventually(
        "the DTMA told why its heartbeats are refused",
        WAIT,
        async || {
            logs.text()
                .lines()
                .find(|l| l.contains("heartbeat failed") && l.contains("TOOLBELT_DTMA_REQUIRE_TLS"))
                .map(str::to_string)
        },
    )
    .await;
    assert!(line.contains("422"), "{line}");
    let (status, v) = {
        let r = toolbelt_net::http::client()
            .get(format!(
                "{}/api/v1/servers/fx/logs?toolbox=plain",
                front.url
            ))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 503, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("TOOLBELT_DTMA_REQUIRE_TLS"),
        "{v}"
    );
    // The gateway does not call it either: its discovery fails saying why, and the
    // agent gets no tool of it.
    let id = toolbelt_model::ServerId::parse(fx.id().await.as_str()).unwrap();
    let registry = app.app().gateway().registry.clone();
    eventually("the gateway refusing the plain DTMA", WAIT, async || {
        let e = registry.get(&id).and_then(|e| e.error.clone());
        match e {
            Some(e) if e.contains("TOOLBELT_DTMA_REQUIRE_TLS") => Ok(e),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let mut m = Mcp::new(&mcp, &bot.token);
    m.initialize().await;
    let r = m.tool("fx__echo", json!({ "text": "in clear?" })).await;
    assert!(r["error"].is_object(), "{r}");
    dtma.shutdown().await;
    app.shutdown().await.unwrap();
}
