//! The DTMA trusts no path it is sent: a secret name or server name that is `../x` is
//! refused by the control plane (at the API, and again when it builds a toolbox's desired
//! set from rows that got past the API) and by the DTMA (its deploy route), and nothing
//! is written anywhere.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toolbelt_dtma::DtmaOptions;
use toolbelt_e2e::plane::Plane;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::fixture_bin;

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            out.push(e.path());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_desired_set_with_a_path_for_a_name_is_refused_on_both_sides_and_writes_nothing() {
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (tbx, join) = plane.toolbox("paths").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dtma");
    let mut opts = DtmaOptions::new(&plane.url, data.clone());
    opts.join_token = Some(join);
    opts.runtime = Some(ToolboxKind::Process);
    let dtma = toolbelt_dtma::start(opts).await.unwrap();
    let shm = PathBuf::from(format!("/dev/shm/toolbelt-{tbx}"));
    let fx = fixture_bin().display().to_string();

    // The control plane's API refuses both names.
    let bad_entry = json!({ "slug": "leaky", "source": { "type": "package", "manager": "binary",
        "package": "fixture-mcp", "command": [fx] }, "transport": "stdio",
        "secrets": [{ "name": "../x", "required": false }] });
    let (s, v) = plane
        .api("POST", "/api/v1/catalog", Some(bad_entry.clone()))
        .await;
    assert_eq!(s, 422, "{v}");
    plane
        .catalog(
            json!({ "slug": "fx", "source": { "type": "package", "manager": "binary",
        "package": "fixture-mcp", "command": [fx] }, "transport": "stdio" }),
        )
        .await;
    let (s, v) = plane
        .api(
            "POST",
            "/api/v1/servers",
            Some(json!({ "name": "../x", "catalog": "fx", "toolbox": "paths" })),
        )
        .await;
    assert_eq!(s, 422, "{v}");

    // A row that got past the API (written straight to the store) never reaches the
    // toolbox: the desired set its heartbeat gets leaves it out.
    let spec: toolbelt_model::catalog::CatalogSpec = serde_json::from_value(bad_entry).unwrap();
    let mut c = plane.store.conn().await.unwrap();
    toolbelt_store::catalog::create(&mut c, &spec)
        .await
        .unwrap();
    drop(c);
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "leaky", "catalog": "leaky", "toolbox": "paths" }),
        )
        .await;
    let cred: Value =
        serde_json::from_slice(&std::fs::read(data.join("credential.json")).unwrap()).unwrap();
    let report = json!({ "version": "test", "advertise_url": format!("http://{}", dtma.addr),
        "runtime": { "kind": "process", "available": true, "detail": null },
        "system": { "cpu_percent": 0.0, "load1": 0.0, "mem_used_bytes": 0, "mem_total_bytes": 0,
            "disk_used_bytes": 0, "disk_total_bytes": 0, "dtma_rss_bytes": 0 },
        "servers": [] });
    let reply: Value = toolbelt_net::http::client()
        .post(format!("{}/api/v1/dtma/heartbeat", plane.url))
        .bearer_auth(cred["credential"].as_str().unwrap())
        .json(&report)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = reply["desired"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"))
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(!names.contains(&"leaky"), "sent to the toolbox: {reply}");

    // The DTMA refuses such a desired server pushed to it, with its secret value.
    let http = toolbelt_net::http::client();
    let token = plane.sign(&tbx);
    let server = |name: &str, secret: &str, id: &str| {
        json!({ "server": { "id": id, "name": name, "generation": 1,
            "desired": "running", "source": { "type": "package", "manager": "binary",
            "package": "x", "command": [fx] }, "transport": "stdio", "port": null,
            "secrets": [{ "name": secret }] }, "secrets": { secret: "stolen" } })
    };
    for (name, secret, id) in [
        ("ok", "../x", "srv_01aaaaaaaaaaaaaaaaaaaaaaaa"),
        ("../x", "API_KEY", "srv_01bbbbbbbbbbbbbbbbbbbbbbbb"),
        ("ok", "API_KEY", "../../../tmp/x"),
    ] {
        let res = http
            .post(format!("http://{}/v1/servers", dtma.addr))
            .bearer_auth(&token)
            .json(&server(name, secret, id))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 422, "{name} {secret} {id}: {body}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let written: Vec<PathBuf> = walk(&shm);
    assert!(
        written.is_empty(),
        "written under {}: {written:?}",
        shm.display()
    );
    for p in ["/dev/shm/x", "/dev/shm/x-1", "/tmp/x-1", "/dev/x-1"] {
        assert!(!Path::new(p).exists(), "{p} was written");
    }
    let st: Value = http
        .get(format!("http://{}/v1/servers", dtma.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        st.as_array().unwrap().iter().all(|s| s["name"] != "ok"),
        "{st}"
    );
    dtma.shutdown().await;
    let _ = std::fs::remove_dir_all(&shm);
}
