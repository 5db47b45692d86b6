//! Client ID Metadata Documents are kept as long as their HTTP caching headers say (the
//! draft asks an authorization server to respect them): a document served over HTTPS with a
//! test CA, fetched through the SSRF guard, and the fetches counted per caching policy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::tls::TestCa;

/// Serves `/{policy}/client.json` over HTTPS with `Cache-Control: {policy}` (none for
/// `none`), counting the fetches of each.
struct Documents {
    base: String,
    fetches: Arc<Mutex<HashMap<String, usize>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Documents {
    async fn serve(ca: &TestCa) -> Documents {
        use axum::extract::{Path, State};
        let fetches = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
        let doc = {
            let base = base.clone();
            move |State(n): State<Arc<Mutex<HashMap<String, usize>>>>,
                  Path(policy): Path<String>| async move {
                *n.lock().unwrap().entry(policy.clone()).or_default() += 1;
                let body = serde_json::json!({
                    "client_id": format!("{base}/{policy}/client.json"),
                    "client_name": "cached client",
                    "redirect_uris": ["http://127.0.0.1:9/cb"],
                    "token_endpoint_auth_method": "none",
                });
                let mut res = axum::Json(body).into_response();
                if policy != "none" {
                    res.headers_mut()
                        .insert("cache-control", policy.parse().unwrap());
                }
                res
            }
        };
        use axum::response::IntoResponse;
        let app = axum::Router::new()
            .route("/{policy}/client.json", axum::routing::get(doc))
            .with_state(fetches.clone());
        let acceptor = toolbelt_net::tls::Acceptor::load(&ca.files()).unwrap();
        let tls =
            toolbelt_net::tls::TlsListener::new(tcp, acceptor, Duration::from_secs(60)).unwrap();
        let task = tokio::spawn(async move {
            axum::serve(tls, app).await.unwrap();
        });
        Documents {
            base,
            fetches,
            _task: task,
        }
    }

    fn url(&self, policy: &str) -> String {
        format!("{}/{policy}/client.json", self.base)
    }

    fn fetches(&self, policy: &str) -> usize {
        self.fetches
            .lock()
            .unwrap()
            .get(policy)
            .copied()
            .unwrap_or(0)
    }
}

fn authorize(plane: &Plane, client_id: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("state", "s"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
            ("resource", &plane.mcp_url()),
        ])
        .finish();
    format!("{}/oauth2/authorize?{q}", plane.url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_documents_are_cached_as_their_cache_control_says() {
    let ca = TestCa::new("cimd cache");
    let docs = Documents::serve(&ca).await;
    let plane = Plane::start_with(Duration::from_secs(1), |o| {
        o.outbound = ca.outbound();
        o.gateway.ssrf_allow = toolbelt_net::ssrf::AllowList::parse("127.0.0.1/32").unwrap();
    })
    .await;
    let http = toolbelt_net::http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ask = async |policy: &str| {
        let r = http
            .get(authorize(&plane, &docs.url(policy)))
            .send()
            .await
            .unwrap();
        // On to the consent page: the document was accepted.
        assert_eq!(r.status(), 303, "{policy}: {}", r.text().await.unwrap());
    };
    for (policy, fetched) in [
        ("none", 1),
        ("max-age=3600", 1),
        ("no-store", 3),
        ("max-age=0", 3),
    ] {
        for _ in 0..3 {
            ask(policy).await;
        }
        assert_eq!(docs.fetches(policy), fetched, "{policy}");
    }
    // A short max-age runs out, and the next request fetches the document again.
    ask("max-age=1").await;
    ask("max-age=1").await;
    assert_eq!(docs.fetches("max-age=1"), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    ask("max-age=1").await;
    assert_eq!(docs.fetches("max-age=1"), 2);
}
