//! Images by digest against the real engine, with two `FROM scratch` images built here:
//! a server is pinned at its first deploy to the image ID its tag resolved to (shown by
//! the API and `server get`, audited), and a tag moved to the other image afterwards
//! changes nothing a restart or a re-create runs. A catalog `image@sha256:…` must be the
//! image its name resolves to: a digest that disagrees is a clear error. Moving a server
//! is an explicit, audited update (`server update-image`): the tag resolved again, or a
//! given digest of the entry's repository; any other digest is refused naming the field.
//! A toolbox's registry allow-list refuses a deploy and an update naming the field, and
//! its DTMA refuses to re-create a server whose image the list no longer allows.

use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use toolbelt_dtma::DtmaOptions;
use toolbelt_e2e::plane::{ADMIN, Plane};
use toolbelt_e2e::{Cli, docker_inspect};
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::static_fixture_bin;

const WAIT: Duration = Duration::from_secs(60);

/// Removes the toolbox's containers and networks, and the test's images.
struct Cleanup(String, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        toolbelt_e2e::docker_cleanup(&self.0);
        for tag in ["a", "b", "v1"] {
            let _ = Command::new("docker")
                .args(["rmi", "-f", &format!("{}:{tag}", self.1)])
                .output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &format!("{}-other:c", self.1)])
            .output();
    }
}

/// Builds the fixture server as `FROM scratch` image `tag` (`variant` makes its ID its
/// own); its image ID.
fn build(tag: &str, variant: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(static_fixture_bin(), dir.path().join("fixture-mcp")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY fixture-mcp /fixture-mcp\nLABEL toolbelt.test.variant={variant}\n\
             ENTRYPOINT [\"/fixture-mcp\"]\n"
        ),
    )
    .unwrap();
    let out = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--quiet", "-t", tag])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn tag(from: &str, to: &str) {
    assert!(
        Command::new("docker")
            .args(["tag", from, to])
            .status()
            .unwrap()
            .success()
    );
}

/// The `server.update_image` audit events so far that moved a server (a refused request
/// is audited too, as a failure).
async fn updates(plane: &Plane) -> Vec<Value> {
    plane
        .ok(
            "GET",
            "/api/v1/audit?action=server.update_image&outcome=success",
            json!(null),
        )
        .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn container(v: &Value) -> String {
    v["instance"]["container_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_runs_the_digest_it_was_pinned_to_whatever_its_tag_points_to_later() {
    let repo = format!("toolbelt-pin-test-{}", std::process::id());
    let (a, b) = (
        build(&format!("{repo}:a"), "a"),
        build(&format!("{repo}:b"), "b"),
    );
    assert_ne!(a, b);
    tag(&format!("{repo}:a"), &format!("{repo}:v1"));
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (tbx, join) = plane.toolbox("pins").await;
    let _c = Cleanup(tbx.clone(), repo.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DtmaOptions::new(&plane.url, dir.path().join("dtma"));
    opts.join_token = Some(join);
    opts.runtime = Some(ToolboxKind::Docker);
    opts.reconcile_interval = Duration::from_millis(250);
    let dtma = toolbelt_dtma::start(opts).await.unwrap();
    let v1 = format!("{repo}:v1");
    plane
        .catalog(json!({ "slug": "by-tag", "source": { "type": "image", "image": v1 }, "transport": "stdio" }))
        .await;
    let deploy = |name: &'static str, catalog: &'static str| {
        plane.ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": name, "catalog": catalog, "toolbox": "pins" }),
        )
    };
    deploy("pin", "by-tag").await;
    let s = plane
        .wait_server("pin", "pins", "pinned and running", WAIT, |v| {
            v["status"] == "running" && !v["image_digest"].is_null()
        })
        .await;
    assert_eq!(s["image_digest"], a.as_str(), "pinned to what v1 was: {s}");
    let first = container(&s);
    assert_eq!(docker_inspect(&first)["Image"], a.as_str());
    assert_eq!(
        docker_inspect(&first)["Config"]["Image"],
        a.as_str(),
        "created by image ID, not by tag"
    );
    let audit = plane
        .ok(
            "GET",
            "/api/v1/audit?action=server.image_pinned",
            json!(null),
        )
        .await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["target_id"], s["id"]);
    let detail: Value = serde_json::from_str(items[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["image_digest"], a.as_str());
    let cli = Cli {
        url: &plane.url,
        token: Some(ADMIN),
        config: dir.path().join("cli.toml"),
    };
    let got = cli.run(&["server", "get", "pin", "--toolbox", "pins"]);
    assert!(
        got.code == 0 && got.stdout.contains("IMAGE") && got.stdout.contains(&a),
        "server get shows the pin: {}{}",
        got.stdout,
        got.stderr
    );

    // v1 now names other code: a restart and a re-create still run the pinned image.
    tag(&format!("{repo}:b"), &v1);
    plane
        .ok(
            "POST",
            "/api/v1/servers/pin/restart?toolbox=pins",
            json!({}),
        )
        .await;
    let s = plane
        .wait_server("pin", "pins", "restarted", WAIT, |v| {
            v["status"] == "running" && v["generation"] == 2 && container(v) != first
        })
        .await;
    let second = container(&s);
    assert_eq!(
        docker_inspect(&second)["Image"],
        a.as_str(),
        "restart kept the pin"
    );
    assert_eq!(s["image_digest"], a.as_str());
    assert!(
        Command::new("docker")
            .args(["rm", "-f", &second])
            .status()
            .unwrap()
            .success()
    );
    let s = plane
        .wait_server("pin", "pins", "re-created", WAIT, |v| {
            v["status"] == "running" && container(v) != second
        })
        .await;
    assert_eq!(docker_inspect(&container(&s))["Image"], a.as_str());
    let audit = plane
        .ok(
            "GET",
            "/api/v1/audit?action=server.image_pinned",
            json!(null),
        )
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "pinned once");

    // An explicit update resolves v1 again (now b), moves the pin and re-creates.
    let third = container(&s);
    let u = plane
        .ok(
            "POST",
            "/api/v1/servers/pin/update-image?toolbox=pins",
            json!({}),
        )
        .await;
    assert_eq!(u["image_digest"], b.as_str(), "{u}");
    let gen_before = u["generation"].as_i64().unwrap();
    let s = plane
        .wait_server("pin", "pins", "moved to b", WAIT, |v| {
            v["status"] == "running" && container(v) != third
        })
        .await;
    assert_eq!(docker_inspect(&container(&s))["Image"], b.as_str());
    let items = updates(&plane).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let detail: Value = serde_json::from_str(items[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["old_digest"], a.as_str(), "{detail}");
    assert_eq!(detail["new_digest"], b.as_str(), "{detail}");
    assert_eq!(items[0]["actor_kind"], "user");

    // Back to a by its digest, with the CLI.
    let fourth = container(&s);
    let got = cli.run(&[
        "server",
        "update-image",
        "pin",
        "--toolbox",
        "pins",
        "--digest",
        &a,
    ]);
    assert!(
        got.code == 0 && got.stdout.contains(&a),
        "{}{}",
        got.stdout,
        got.stderr
    );
    let s = plane
        .wait_server("pin", "pins", "moved back to a", WAIT, |v| {
            v["status"] == "running" && container(v) != fourth
        })
        .await;
    assert_eq!(docker_inspect(&container(&s))["Image"], a.as_str());
    assert_eq!(s["image_digest"], a.as_str());
    assert!(s["generation"].as_i64().unwrap() > gen_before);
    let items = updates(&plane).await;
    assert_eq!(items.len(), 2, "{items:?}");

    // A digest that is nowhere, or an image of another repository, moves nothing.
    let other = build(&format!("{repo}-other:c"), "c");
    let nowhere = format!("sha256:{}", "0".repeat(64));
    for (digest, why) in [
        (&nowhere, "could not be pulled"),
        (&other, "is not an image of"),
    ] {
        let (code, body) = plane
            .api(
                "POST",
                "/api/v1/servers/pin/update-image?toolbox=pins",
                Some(json!({ "digest": digest })),
            )
            .await;
        assert_eq!(code, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], "digest", "{body}");
        assert!(
            body["errors"][0]["message"].as_str().unwrap().contains(why),
            "{body}"
        );
    }
    assert_eq!(updates(&plane).await.len(), 2, "refusals are not updates");
    let failed = plane
        .ok(
            "GET",
            "/api/v1/audit?action=server.update_image&outcome=failure",
            json!(null),
        )
        .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 2, "{failed}");
    let s = plane
        .ok("GET", "/api/v1/servers/pin?toolbox=pins", json!(null))
        .await;
    assert_eq!(s["image_digest"], a.as_str());

    // A digest in the entry must be the image its name resolves to.
    let wrong = format!("{v1}@{a}");
    let right = format!("{v1}@{b}");
    plane
        .catalog(json!({ "slug": "wrong", "source": { "type": "image", "image": wrong }, "transport": "stdio" }))
        .await;
    plane
        .catalog(json!({ "slug": "right", "source": { "type": "image", "image": right }, "transport": "stdio" }))
        .await;
    deploy("wrong", "wrong").await;
    deploy("right", "right").await;
    let w = plane
        .wait_server("wrong", "pins", "wrong refused", WAIT, |v| {
            v["status"] == "error_runtime"
        })
        .await;
    let err = w["last_error"].as_str().unwrap();
    assert!(
        err.contains(&format!("image {v1} is {b}")) && err.contains(&format!("not the {a}")),
        "{err}"
    );
    assert!(w["image_digest"].is_null(), "{w}");
    let r = plane
        .wait_server("right", "pins", "right pinned", WAIT, |v| {
            v["status"] == "running" && !v["image_digest"].is_null()
        })
        .await;
    assert_eq!(r["image_digest"], b.as_str());

    // A registry allow-list: the control plane refuses a deploy and an update naming the
    // field, and the DTMA refuses to re-create what was deployed before the list.
    let (code, body) = plane
        .api(
            "POST",
            "/api/v1/toolboxes",
            Some(json!({ "name": "bad-list", "allowed_registries": ["https://ghcr.io"] })),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["errors"][0]["field"], "allowed_registries[0]",
        "{body}"
    );
    let got = cli.run(&[
        "toolbox",
        "update",
        "pins",
        "--allowed-registries",
        "Registry.Example.com,ghcr.io",
    ]);
    assert!(got.code == 0, "{}{}", got.stdout, got.stderr);
    let t = plane.ok("GET", "/api/v1/toolboxes/pins", json!(null)).await;
    assert_eq!(
        t["allowed_registries"],
        json!(["registry.example.com", "ghcr.io"])
    );
    let (code, body) = plane
        .api(
            "POST",
            "/api/v1/servers",
            Some(json!({ "name": "late", "catalog": "by-tag", "toolbox": "pins" })),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "catalog", "{body}");
    let msg = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("registry docker.io") && msg.contains("allowed_registries"),
        "{msg}"
    );
    let (code, body) = plane
        .api(
            "POST",
            "/api/v1/servers/pin/update-image?toolbox=pins",
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "catalog", "{body}");
    assert_eq!(updates(&plane).await.len(), 2, "refusals are not updates");
    let before = container(&s);
    plane
        .ok(
            "POST",
            "/api/v1/servers/pin/restart?toolbox=pins",
            json!({}),
        )
        .await;
    let refused = plane
        .wait_server("pin", "pins", "refused by the DTMA", WAIT, |v| {
            v["status"] == "error_runtime"
        })
        .await;
    let err = refused["last_error"].as_str().unwrap();
    assert!(
        err.contains("registry docker.io") && err.contains("allowed_registries"),
        "{err}"
    );
    assert!(
        !Command::new("docker")
            .args(["inspect", &before])
            .output()
            .unwrap()
            .status
            .success(),
        "the old container went with the restart"
    );
    // Docker Hub listed: the restart is retried and runs the pin again.
    let got = cli.run(&[
        "toolbox",
        "update",
        "pins",
        "--allowed-registries",
        "docker.io",
    ]);
    assert!(got.code == 0, "{}{}", got.stdout, got.stderr);
    plane
        .ok(
            "POST",
            "/api/v1/servers/pin/restart?toolbox=pins",
            json!({}),
        )
        .await;
    let s = plane
        .wait_server("pin", "pins", "running again", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    assert_eq!(docker_inspect(&container(&s))["Image"], a.as_str());
    let audit = plane
        .ok(
            "GET",
            "/api/v1/audit?action=toolbox.update&outcome=success",
            json!(null),
        )
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    dtma.shutdown().await;
}
