//! `toolbelt up` on a machine with Docker: the `local` toolbox's DTMA runs in-process with
//! the Docker runtime; the fixture image is deployed with nothing but the CLI and answers
//! MCP at the DTMA's `/mcp/{server}`.

use serde_json::json;
use std::time::Duration;
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::{Cli, Server, containers_of, docker_cleanup, docker_inspect};
use toolbelt_testkit::fixture::fixture_image;

const ADMIN: &str = "tbu_up-docker-admin-0000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn toolbelt_up_runs_the_fixture_image_on_its_local_docker_toolbox() {
    let image = fixture_image().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::up(
        &dir.path().join("data"),
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_HEARTBEAT_MS", "300"),
        ],
    )
    .await;
    let cli = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: dir.path().join("cli.json"),
    };
    let local = cli
        .until(
            &["toolbox", "get", "local", "-o", "json"],
            "the local toolbox active",
            |v| v["status"] == "active",
        )
        .await;
    let tbx = local["id"].as_str().unwrap().to_string();
    struct Clean(String);
    impl Drop for Clean {
        fn drop(&mut self) {
            docker_cleanup(&self.0);
        }
    }
    let _c = Clean(tbx.clone());
    assert_eq!(
        local["kind"], "docker",
        "an engine answers here, so the local toolbox runs containers"
    );

    cli.ok(&[
        "catalog",
        "create",
        "fx",
        "--image",
        &image,
        "--transport",
        "stdio",
    ]);
    cli.ok(&["server", "create", "fx", "--catalog", "fx"]);
    let srv = cli
        .until(&["server", "get", "fx", "-o", "json"], "fx running", |v| {
            v["status"] == "running" && v["health"] == "ok"
        })
        .await;
    let cid = srv["instance"]["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(docker_inspect(&cid)["Config"]["User"], "65534:65534");

    let dtma_url = local["dtma_url"].as_str().unwrap();
    let token = server
        .control_key()
        .sign(&tbx, chrono::Utc::now().timestamp(), 300);
    let mut m = Mcp::new(&format!("{dtma_url}/mcp/fx"), &token);
    let init = m.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "fixture-mcp");
    let r = m.tool("add", json!({ "a": 2, "b": 40 })).await;
    assert_eq!(r["result"]["structuredContent"]["sum"], 42.0, "{r}");

    let logs = cli.ok(&["server", "logs", "fx", "--tail", "20"]);
    assert!(logs.stdout.contains("fixture-mcp ready"), "{}", logs.stdout);
    let stats = cli.ok(&["server", "stats", "fx", "-o", "json"]).json();
    assert!(stats["memory_bytes"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["memory_limit_bytes"].as_u64().unwrap() <= 256 * 1024 * 1024);

    cli.ok(&["server", "stop", "fx"]);
    cli.until(&["server", "get", "fx", "-o", "json"], "fx stopped", |v| {
        v["status"] == "stopped"
    })
    .await;
    let sid = srv["id"].as_str().unwrap().to_string();
    eventually("its container removed", Duration::from_secs(30), || {
        let sid = sid.clone();
        async move { containers_of(&sid).is_empty().then_some(()) }
    })
    .await;
    cli.ok(&["server", "start", "fx"]);
    cli.until(
        &["server", "get", "fx", "-o", "json"],
        "fx running again",
        |v| v["status"] == "running",
    )
    .await;
    cli.ok(&["server", "delete", "fx"]);
    // By name it is gone at once (the name is free again); its row goes when the
    // toolbox confirms the container is removed.
    assert_eq!(cli.run(&["server", "get", "fx"]).code, 1);
    eventually(
        "fx's row purged and its container removed",
        Duration::from_secs(30),
        || {
            let (sid, cli) = (sid.clone(), &cli);
            async move {
                (cli.run(&["server", "get", &sid]).code == 1 && containers_of(&sid).is_empty())
                    .then_some(())
            }
        },
    )
    .await;
    server.stop();
}
