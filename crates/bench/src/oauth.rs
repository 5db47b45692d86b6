//! The vault and OAuth: seal/open cost per secret, connecting N accounts, scheduling and
//! completing a refresh of all N against the local authorization server (Authlib), and the
//! per-call cost of finding and attaching a user's token (header injection).

use crate::stats::{fmt, summarize};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use toolbelt_model::catalog::CatalogSpec;
use toolbelt_model::grant::{GrantKind, ToolRule};
use toolbelt_model::oauth::ProviderKind;
use toolbelt_model::toolbox::{ToolboxKind, ToolboxStatus};
use toolbelt_model::{Name, Role, Scope, UserId};
use toolbelt_oauth::{Callback, NewProvider, OAuth, OAuthConfig};
use toolbelt_store::secrets::SecretKind;
use toolbelt_store::{Store, StoreOptions, agents, catalog, grants, servers, toolboxes, users};
use toolbelt_vault::{Actor, KeyRing, SecretValue, Vault};

const PUBLIC: &str = "http://127.0.0.1:9";

async fn user(store: &Store, email: &str, role: Role) -> Result<UserId> {
    let mut c = store.conn().await?;
    Ok(users::create(&mut c, email, role, None).await?.id)
}

/// The code flow with this process as the browser (the provider auto-approves alice).
async fn connect(oauth: &OAuth, http: &reqwest::Client, u: &UserId) -> Result<String> {
    let flow = oauth
        .create_flow(u, "local", None, Some("alice".into()))
        .await?;
    let url = oauth
        .begin("local", &flow.flow_id, u, "bench-session")
        .await?;
    let r = http.get(&url).send().await?;
    let loc = reqwest::Url::parse(r.headers()["location"].to_str()?)?;
    let q: HashMap<_, _> = loc.query_pairs().into_owned().collect();
    let conn = oauth
        .complete(
            "local",
            Callback {
                code: q.get("code").cloned(),
                state: q.get("state").cloned(),
                ..Default::default()
            },
            Some("bench-session"),
        )
        .await?;
    Ok(conn.id.to_string())
}

pub async fn run(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open(&url, StoreOptions::default()).await?;
    let vault = Vault::open(store.clone(), Arc::new(KeyRing::generate()?)).await?;
    let auth =
        toolbelt_e2e::oauth::authorization_server(&format!("{PUBLIC}/oauth/local/callback"), 3600)
            .await;
    let admin = user(&store, "admin@example.com", Role::Admin).await?;
    let alice = user(&store, "alice@example.com", Role::Member).await?;
    let config = OAuthConfig {
        public_url: PUBLIC.into(),
        ..OAuthConfig::default()
    };
    let oauth = OAuth::new(store.clone(), vault.clone(), config.clone());
    oauth
        .create_provider(
            &Scope {
                user_id: admin,
                role: Role::Admin,
            },
            NewProvider {
                name: "local".into(),
                kind: ProviderKind::Custom,
                issuer: Some(auth.url.clone()),
                authorization_endpoint: None,
                token_endpoint: None,
                revocation_endpoint: None,
                client_id: toolbelt_e2e::oauth::CLIENT_ID.into(),
                client_secret: Some(toolbelt_e2e::oauth::CLIENT_SECRET.into()),
                default_scopes: Some(vec!["read".into()]),
            },
        )
        .await
        .context("provider")?;

    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "## Vault and OAuth (SQLite, {build} build, {n} connections, provider: Authlib fixture)\n"
    );
    println!("| measure | figure |\n|---|---|");

    // Seal + store, and load + open, end to end (each with its audited transaction).
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    let mut ids = Vec::new();
    for i in 0..n {
        let name = Name::from_db(format!("bench-{i}"));
        let t = Instant::now();
        let m = vault
            .put_for(
                Some(&alice),
                &name,
                SecretKind::Generic,
                SecretValue::from(format!("value-{i}-{}", "x".repeat(40))),
                &Actor::system("bench"),
            )
            .await?;
        puts.push(t.elapsed());
        ids.push(m.id);
    }
    for id in &ids {
        let t = Instant::now();
        vault.open_by_id(id, &Actor::system("bench")).await?;
        gets.push(t.elapsed());
    }
    let (p, g) = (summarize(puts), summarize(gets));
    println!(
        "| seal + store a secret (audited write), p50 / p99 | {} / {} |",
        fmt(p.p50),
        fmt(p.p99)
    );
    println!(
        "| load + open a secret (audited read), p50 / p99 | {} / {} |",
        fmt(g.p50),
        fmt(g.p99)
    );

    // N connections through the whole code flow.
    let http = toolbelt_net::http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let t = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(connect(&oauth, &http, &alice).await?);
    }
    let took = t.elapsed();
    println!(
        "| connect {n} accounts (PKCE flow + exchange + seal), total / per connection | {} / {} |",
        fmt(took),
        fmt(took / n.max(1) as u32)
    );

    // All N due at once: how long until every one is refreshed (rotated tokens sealed).
    let used_before = auth.events("refresh_used").await.len();
    sqlx::query("UPDATE oauth_connections SET next_refresh_at = 0")
        .execute(store.pool())
        .await?;
    let limit = Arc::new(tokio::sync::Semaphore::new(config.concurrency));
    let t = Instant::now();
    let mut first_sweep = None;
    loop {
        let picked = oauth.refresh_due(&limit).await?;
        first_sweep.get_or_insert(t.elapsed());
        if picked == 0 {
            break;
        }
    }
    let took = t.elapsed();
    let refreshed = auth.events("refresh_used").await.len() - used_before;
    let reused = auth.events("refresh_reuse_detected").await.len();
    println!(
        "| refresh {n} due connections ({} in flight): done in / per second | {} / {:.0} |",
        config.concurrency,
        fmt(took),
        refreshed as f64 / took.as_secs_f64()
    );
    println!("| … refreshes the provider saw / refresh tokens reused | {refreshed} / {reused} |");

    // Header injection: the look-up a call through a remote server makes for its token.
    let (agent, server) = {
        let mut c = store.conn().await?;
        let tb = toolboxes::create(
            &mut c,
            &Name::from_db("remote".into()),
            Some(&alice),
            Some(ToolboxKind::Remote),
            ToolboxStatus::Active,
        )
        .await?;
        let spec: CatalogSpec = serde_json::from_value(serde_json::json!({
            "slug": "notes", "source": { "type": "remote", "url": "http://127.0.0.1:9/mcp" },
            "transport": "streamable_http", "oauth": { "provider": "local" },
        }))?;
        let entry = catalog::create(&mut c, &spec).await?;
        let s = servers::create(
            &mut c,
            servers::NewServer {
                name: &Name::from_db("notes".into()),
                toolbox_id: &tb.id,
                catalog_id: &entry.id,
                owner_id: Some(&alice),
                config: &Default::default(),
                secrets: &Default::default(),
            },
        )
        .await?;
        let a = agents::create(&mut c, &alice, &Name::from_db("bot".into()), "").await?;
        let con = toolbelt_model::ConnectionId::parse(&conns[0]).context("connection id")?;
        grants::create(
            &mut c,
            grants::NewGrant {
                agent_id: &a.id,
                kind: GrantKind::Connection,
                toolbox_id: None,
                server_id: Some(&s.id),
                tool: None,
                connection_id: Some(&con),
                rule: ToolRule::Allow,
            },
        )
        .await?;
        (a.id, s.id)
    };
    let t = Instant::now();
    oauth
        .credential_for(&agent, &server, Some("local"))
        .await?
        .context("a credential")?;
    let cold = t.elapsed();
    let mut lat = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        oauth.credential_for(&agent, &server, Some("local")).await?;
        lat.push(t.elapsed());
    }
    let s = summarize(lat);
    println!(
        "| header injection per call (grant + connection look-up, token cached), p50 / p99 | {} / {} |",
        fmt(s.p50),
        fmt(s.p99)
    );
    println!(
        "| … first call after a refresh (decrypt, audited) | {} |",
        fmt(cold)
    );
    Ok(())
}
