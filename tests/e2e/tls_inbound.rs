//! Inbound TLS (issue 11, item 2): `toolbelt up` with `--tls-cert`/`--tls-key` (here their
//! environment variables) serves HTTPS only, its cookies are `Secure` and its responses
//! carry HSTS, the local toolbox joins over HTTPS, and a certificate rotated on disk is
//! what the next new connection gets — no restart.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use toolbelt_e2e::Server;
use toolbelt_e2e::tls::TestCa;

const ADMIN: &str = "tbu_tls-inbound-admin-token-00";

/// A client that reports the server's certificate. A new client per look: one client would
/// resume its TLS session, and a resumed session shows the certificate of the first.
fn fresh(ca: &TestCa) -> reqwest::Client {
    ca.outbound()
        .builder()
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("a TLS connection")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_serves_https_with_secure_cookies_and_hsts_and_rotates_its_certificate() {
    let ca = TestCa::new("inbound");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) = (
        ca.cert.display().to_string(),
        ca.key.display().to_string(),
        ca.ca.display().to_string(),
    );
    let server = Server::up(
        &dir.path().join("data"),
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_RUNTIME", "process"),
            ("TOOLBELT_HEARTBEAT_MS", "300"),
            ("TOOLBELT_TLS_CERT", &cert),
            ("TOOLBELT_TLS_KEY", &key),
            // The local toolbox's DTMA joins the control plane over HTTPS too.
            ("TOOLBELT_CA_FILE", &ca_file),
        ],
    )
    .await;
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let http = fresh(&ca);

    let r = http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        r.headers()["strict-transport-security"],
        toolbelt_net::tls::HSTS
    );
    let first = peer_cert(&r);
    // Nothing is answered in clear on that port.
    let plain = toolbelt_net::http::client()
        .get(server.url.replacen("https://", "http://", 1) + "/healthz")
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP answered"
    );

    // A session cookie is `Secure`.
    let r = http
        .post(format!("{}/api/v1/users", server.url))
        .bearer_auth(ADMIN)
        .json(&json!({ "email": "ann@example.com", "role": "member", "password": "correct horse battery staple" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = http
        .post(format!("{}/api/v1/login", server.url))
        .json(&json!({ "email": "ann@example.com", "password": "correct horse battery staple" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let cookie = r.headers()[reqwest::header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The local toolbox joined and heartbeats over HTTPS.
    let start = Instant::now();
    loop {
        let v: Value = http
            .get(format!("{}/api/v1/toolboxes", server.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let local = v["items"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == "local").cloned());
        if local
            .as_ref()
            .is_some_and(|t| t["status"] == "active" && t["last_heartbeat_at"].is_string())
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the local toolbox never came online: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Rotation: new files on disk, and a new connection gets the new certificate.
    let rotated = ca.reissue();
    assert_ne!(rotated, first);
    let start = Instant::now();
    loop {
        let r = fresh(&ca)
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        if peer_cert(&r) == rotated {
            break;
        }
        assert_eq!(
            peer_cert(&r),
            first,
            "neither the old nor the new certificate"
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the rotated certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
