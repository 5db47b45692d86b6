//! Login under attack: floods are throttled per address (429 + `Retry-After`, nothing
//! hashed), `X-Forwarded-For` counts only from trusted proxies, known and unknown emails
//! cost one hash each, and anonymous failures reach the audit chain as summaries.

use crate::support::{ADMIN, App};
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_control::ControlConfig;
use toolbelt_control::client_ip::TrustedProxies;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    a_flood_from_one_address_is_refused_with_retry_after_and_stops_hashing,
    known_and_unknown_emails_cost_one_hash_each,
    anonymous_failures_reach_the_chain_as_one_summary_per_address,
);

/// Limits small enough to reach, waits long enough never to end during a test.
fn config(per_address: u32, per_account: u32) -> ControlConfig {
    let mut c = ControlConfig::default();
    for (b, free) in [
        (&mut c.login.per_address, per_address),
        (&mut c.login.per_account, per_account),
    ] {
        b.free = free;
        b.base = Duration::from_secs(3600);
        b.max = Duration::from_secs(3600);
    }
    c
}

/// The app on a loopback socket (served with connect info, as `toolbelt serve` is).
struct Served {
    app: toolbelt_app::Running,
    http: reqwest::Client,
    _data: tempfile::TempDir,
    _db: TestDb,
}

impl Served {
    async fn start(db: TestDb, control: ControlConfig) -> Served {
        let data = tempfile::tempdir().unwrap();
        let mut o = toolbelt_app::Options::new(data.path());
        o.listen = "127.0.0.1:0".parse().unwrap();
        o.database_url = Some(db.url.clone());
        o.bootstrap_token = Some(ADMIN.into());
        o.control = control;
        Served {
            app: toolbelt_app::start(o).await.unwrap(),
            http: toolbelt_net::http::client(),
            _data: data,
            _db: db,
        }
    }

    /// POST /api/v1/login, optionally with an `X-Forwarded-For`: (status, Retry-After, body).
    async fn login(&self, body: Value, xff: Option<&str>) -> (u16, Option<u64>, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/v1/login", self.app.url()))
            .json(&body);
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let retry = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        (status, retry, res.json().await.unwrap_or(Value::Null))
    }

    fn hashes(&self) -> u64 {
        self.app.state().passwords.runs()
    }
}

fn wrong(email: &str) -> Value {
    json!({ "email": email, "password": "not the password" })
}

async fn a_flood_from_one_address_is_refused_with_retry_after_and_stops_hashing(db: TestDb) {
    let s = Served::start(db, config(10, 5)).await;
    let before = s.hashes();
    let mut statuses = Vec::new();
    for i in 0..40 {
        // A new email each time: only the address can stop this.
        let (status, retry, body) = s.login(wrong(&format!("u{i}@example.com")), None).await;
        if status == 429 {
            assert!(
                retry.is_some_and(|r| r >= 1),
                "Retry-After is given: {body}"
            );
            assert_eq!(body["type"], "urn:toolbelt:problem:too-many-attempts");
            assert_eq!(body["retry_after"].as_u64(), retry);
        }
        statuses.push(status);
    }
    let expected: Vec<u16> = [401; 10].into_iter().chain([429; 30]).collect();
    assert_eq!(statuses, expected);
    assert_eq!(s.hashes() - before, 10, "refused attempts hash nothing");
    // The address is blocked for every kind of login, a right password or a login token.
    let admin = toolbelt_net::http::client()
        .post(format!("{}/api/v1/users", s.app.url()))
        .bearer_auth(ADMIN)
        .json(&json!({ "email": "pat@example.com", "role": "member", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 201);
    let right = json!({ "email": "pat@example.com", "password": "correct horse battery" });
    assert_eq!(s.login(right, None).await.0, 429);
    assert_eq!(
        s.login(json!({ "login_token": "tbl_guess" }), None).await.0,
        429
    );
    assert_eq!(s.hashes() - before, 11, "only pat's creation hashed since");
}

async fn known_and_unknown_emails_cost_one_hash_each(db: TestDb) {
    let app = App::with_config(db, config(100, 100)).await;
    let created = app
        .post(
            "/api/v1/users",
            ADMIN,
            json!({ "email": "pat@example.com", "role": "member", "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(created.status, 201);
    app.member("nopass@example.com").await;
    let st = app.app.state();
    let cost = async |email: &str| {
        let before = st.passwords.runs();
        for _ in 0..3 {
            let r = app
                .call(Method::POST, "/api/v1/login", None, Some(wrong(email)))
                .await;
            assert_eq!(r.status, 401, "{}", r.body);
        }
        st.passwords.runs() - before
    };
    let known = cost("pat@example.com").await;
    let unknown = cost("nobody@example.com").await;
    let without_password = cost("nopass@example.com").await;
    assert_eq!(
        (known, unknown, without_password),
        (3, 3, 3),
        "one argon2 run per attempt, whoever the email names"
    );
}

async fn anonymous_failures_reach_the_chain_as_one_summary_per_address(db: TestDb) {
    let app = App::with_config(db, config(25, 5)).await;
    let before = app.audit_count().await;
    for i in 0..20 {
        let email = format!("u{i}@example.com");
        let r = app
            .call(Method::POST, "/api/v1/login", None, Some(wrong(&email)))
            .await;
        assert_eq!(r.status, 401);
    }
    for _ in 0..5 {
        let r = app
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(wrong("no-at-sign")),
            )
            .await;
        assert_eq!(r.status, 422);
    }
    assert_eq!(
        app.audit_count().await,
        before,
        "no event per attempt (and no chain lock taken for one)"
    );
    for _ in 0..10 {
        let r = app
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(wrong("x@example.com")),
            )
            .await;
        assert_eq!(r.status, 429);
    }
    assert_eq!(app.audit_count().await, before, "nor per refusal");
    toolbelt_control::login_upkeep::tick(app.app.state()).await;
    assert_eq!(app.audit_count().await, before + 1, "one summary");
    let listed = app
        .get("/api/v1/audit?action=session.login.failure", ADMIN)
        .await;
    let ev = &listed.body["items"][0];
    assert_eq!(
        (ev["actor_kind"].as_str(), ev["outcome"].as_str()),
        (Some("anonymous"), Some("denied"))
    );
    let detail: Value = serde_json::from_str(ev["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        (
            detail["failed"].as_u64(),
            detail["throttled"].as_u64(),
            detail["statuses"].clone(),
            detail["emails"].as_array().map(Vec::len),
            detail["more_emails"].as_u64(),
        ),
        (
            Some(25),
            Some(10),
            json!({ "401": 20, "422": 5 }),
            Some(8),
            Some(12)
        ),
        "{detail}"
    );
    toolbelt_control::login_upkeep::tick(app.app.state()).await;
    assert_eq!(
        app.audit_count().await,
        before + 1,
        "nothing new, nothing written"
    );
    let verified = app.get("/api/v1/audit/verify", ADMIN).await;
    assert_eq!(verified.body["ok"], true, "{}", verified.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_counts_only_from_trusted_proxies() {
    // No trusted proxy: the header is the client's word, and ignored.
    let s = Served::start(TestDb::sqlite().await, config(3, 100)).await;
    for i in 0..3 {
        let xff = format!("203.0.113.{i}");
        assert_eq!(s.login(wrong("a@example.com"), Some(&xff)).await.0, 401);
    }
    assert_eq!(
        s.login(wrong("a@example.com"), Some("203.0.113.99"))
            .await
            .0,
        429,
        "a new X-Forwarded-For does not make a new client"
    );

    // Behind a trusted proxy (this test, on loopback): the rightmost untrusted entry.
    let mut c = config(3, 100);
    c.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    let s = Served::start(TestDb::sqlite().await, c).await;
    for _ in 0..3 {
        assert_eq!(
            s.login(wrong("a@example.com"), Some("203.0.113.1")).await.0,
            401
        );
    }
    let (status, retry, _) = s.login(wrong("a@example.com"), Some("203.0.113.1")).await;
    assert_eq!((status, retry.is_some()), (429, true));
    // A client naming another address left of what the proxy saw is still itself.
    assert_eq!(
        s.login(wrong("a@example.com"), Some("198.51.100.9, 203.0.113.1"))
            .await
            .0,
        429
    );
    // Another client behind the same proxy is not held up.
    assert_eq!(
        s.login(wrong("a@example.com"), Some("203.0.113.2")).await.0,
        401
    );
    // The summary names the client, not the proxy.
    toolbelt_control::login_upkeep::tick(s.app.state()).await;
    let mut c = s.app.store().conn().await.unwrap();
    let page = toolbelt_store::audit::list(
        &mut c,
        &toolbelt_model::Scope {
            user_id: toolbelt_model::UserId::from_db(String::new()),
            role: toolbelt_model::Role::Admin,
        },
        &toolbelt_store::audit::Filter {
            action: Some("session.login.failure".into()),
            ..Default::default()
        },
        10,
        None,
    )
    .await
    .unwrap();
    let mut addresses: Vec<String> = page
        .items
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap()["address"].to_string())
        .collect();
    addresses.sort();
    assert_eq!(addresses, ["\"203.0.113.1\"", "\"203.0.113.2\""]);
}
