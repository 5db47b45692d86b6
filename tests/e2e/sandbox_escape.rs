//! A hostile stdio server on the process runtime of `toolbelt up`: the fixture's `escape`
//! tool tries to read the vault key, the control key, the DTMA credential, the database
//! and another server's secret file, to read its parent's and PID 1's environment, to
//! list other processes and to create files outside `/tmp`. Under bubblewrap (the DTMA
//! as root, and as an unprivileged user) every attempt fails; on the fallback of a user
//! per server the files and environments stay out of reach; with no sandbox at all
//! servers are refused unless an admin opted in, which is audited.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toolbelt_e2e::Server;
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::rest::Rest;
use toolbelt_testkit::fixture::fixture_bin;

const ADMIN: &str = "tbu_sandbox-escape-admin-tok0";
/// In `toolbelt up`'s environment: no environment a server can read may contain it.
const MARKER: &str = "sbx-marker-7f3a1c";
const WAIT: Duration = Duration::from_secs(45);
/// The unprivileged user the DTMA runs as in the "usual case" run.
const DTMA_USER: u32 = 1_999_000_001;

struct World {
    server: Server,
    api: Rest,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

/// `toolbelt up` with the process runtime, a data dir outside `/tmp` (a private `/tmp`
/// alone must not be what hides it), and `env` added.
async fn up(env: &[(&str, &str)], uid: Option<u32>) -> World {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = dir.path().join("data");
    if let Some(u) = uid {
        std::os::unix::fs::chown(dir.path(), Some(u), Some(u)).unwrap();
    }
    let mut all = vec![
        ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
        ("TOOLBELT_HEARTBEAT_MS", "300"),
        ("TOOLBELT_RUNTIME", "process"),
        ("TOOLBELT_TEST_MARKER", MARKER),
    ];
    all.extend_from_slice(env);
    let server = Server::up_as(&data, &all, uid).await;
    let api = Rest::new(&server.url, ADMIN);
    World {
        server,
        api,
        data,
        _dir: dir,
    }
}

impl World {
    async fn fixture(&self, slug: &str, secret: Option<&str>) {
        let fx = fixture_bin().display().to_string();
        let secrets: Vec<Value> = secret.map(|s| json!({ "name": s })).into_iter().collect();
        self.api
            .post(
                "/api/v1/catalog",
                json!({ "slug": slug, "source": { "type": "package", "manager": "binary",
                "package": "fixture-mcp", "command": [fx] }, "transport": "stdio",
                "secrets": secrets }),
            )
            .await;
    }

    /// A server with one file-delivered secret of the given value.
    async fn deploy(&self, name: &str, secret: &str, value: &str) {
        let sname = format!("{name}-key");
        self.api
            .post(
                "/api/v1/secrets",
                json!({ "name": sname, "value": value, "shared": true }),
            )
            .await;
        self.fixture(name, Some(secret)).await;
        self.api
            .post(
                "/api/v1/servers",
                json!({ "name": name, "catalog": name, "toolbox": "local",
                "secrets": { secret: sname } }),
            )
            .await;
    }

    async fn server(&self, name: &str) -> Value {
        self.api
            .get(&format!("/api/v1/servers/{name}?toolbox=local"))
            .await
    }

    async fn wait(&self, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let what = format!("{name} {what}");
        eventually(&what, WAIT, async || {
            let last = self.server(name).await;
            let seen = format!("{last:#}\n{}", self.server.log_text());
            if ok(&last) { Ok(last) } else { Err(seen) }
        })
        .await
    }

    async fn toolbox(&self) -> Value {
        self.api.get("/api/v1/toolboxes/local").await
    }

    async fn mcp(&self, server: &str) -> Mcp {
        let tb = self.toolbox().await;
        let id = tb["id"].as_str().unwrap();
        let token = self
            .server
            .control_key()
            .sign(id, chrono::Utc::now().timestamp(), 300);
        let mut m = Mcp::new(
            &format!("{}/mcp/{server}", tb["dtma_url"].as_str().unwrap()),
            &token,
        );
        m.initialize().await;
        m
    }

    /// Deploys a victim and the hostile server, and has the hostile one try everything.
    async fn attack(&self) -> (Value, Value) {
        self.deploy("victim", "VICTIM_KEY", "victim-secret-value")
            .await;
        self.deploy("hostile", "OWN_KEY", "own-secret-value").await;
        let victim = self
            .wait("victim", "ran", |v| v["status"] == "running")
            .await;
        self.wait("hostile", "ran", |v| v["status"] == "running")
            .await;
        let tb = self.toolbox().await;
        let victim_secret = Path::new("/dev/shm")
            .join(format!("toolbelt-{}", tb["id"].as_str().unwrap()))
            .join(format!(
                "{}-{}",
                victim["id"].as_str().unwrap(),
                victim["generation"]
            ))
            .join("VICTIM_KEY");
        assert!(
            std::fs::read_to_string(&victim_secret).is_ok_and(|v| v == "victim-secret-value"),
            "the victim's secret file is at {}",
            victim_secret.display()
        );
        let d = &self.data;
        let reads: Vec<String> = [
            d.join("vault.key"),
            d.join("control.key"),
            d.join("dtma/credential.json"),
            d.join("toolbelt.db"),
            victim_secret,
        ]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
        for r in &reads {
            assert!(Path::new(r).exists(), "{r} exists on the host");
        }
        let fixture_dir = fixture_bin().parent().unwrap().to_path_buf();
        let writes: Vec<String> = [
            d.join("pwned"),
            fixture_dir.join("pwned"),
            PathBuf::from("/pwned"),
            PathBuf::from("/etc/pwned"),
        ]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
        let m = self.mcp("hostile").await;
        let r = m
            .tool("escape", json!({ "read": reads, "write": writes }))
            .await;
        let report = r["result"]["structuredContent"].clone();
        assert!(report.is_object(), "{r}");
        println!("escape report: {report:#}");
        let own = m.tool("secret", json!({ "name": "OWN_KEY" })).await;
        (report, own["result"]["structuredContent"].clone())
    }
}

fn attempts<'a>(report: &'a Value, key: &str) -> &'a Vec<Value> {
    report[key].as_array().unwrap()
}

/// The file reads and writes all failed, no readable environment holds the DTMA's.
fn assert_files_and_environments_out_of_reach(report: &Value, own: &Value) {
    for a in attempts(report, "read") {
        assert_eq!(a["ok"], false, "read {}: {a}", a["path"]);
    }
    for a in attempts(report, "write") {
        assert_eq!(a["ok"], false, "created {}: {a}", a["path"]);
        let p = a["path"].as_str().unwrap();
        assert!(!Path::new(p).exists(), "{p} appeared on the host");
    }
    for a in attempts(report, "environ") {
        let text = a["text"].as_str().unwrap_or_default();
        assert!(
            !text.contains(MARKER) && !text.contains(ADMIN),
            "{} shows the DTMA's environment: {a}",
            a["path"]
        );
    }
    assert_ne!(report["uid"], 0, "the server runs as root: {report}");
    // Not broken, only confined: its own secret file is there.
    assert_eq!(own["set"], true, "{own}");
    assert_eq!(own["prefix"], "own", "{own}");
}

/// Under bubblewrap the server sees no process but its sandbox's own PID 1 (bwrap).
fn assert_no_other_process_visible(report: &Value) {
    let seen = attempts(report, "processes");
    assert!(
        seen.len() <= 1
            && seen
                .iter()
                .all(|p| p["cmdline"].as_str().unwrap_or("").contains("bwrap")),
        "processes visible from the sandbox: {seen:#?}"
    );
}

async fn assert_isolation(w: &World, want: &str) {
    let tb = w.toolbox().await;
    assert_eq!(tb["isolation"], want, "{tb:#}");
    assert_eq!(tb["report"]["runtime"]["isolation"], want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_server_in_bubblewrap_reaches_no_key_secret_environment_or_process() {
    let w = up(&[], None).await;
    let (report, own) = w.attack().await;
    assert_files_and_environments_out_of_reach(&report, &own);
    assert_no_other_process_visible(&report);
    assert_isolation(&w, "bubblewrap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_server_in_bubblewrap_of_an_unprivileged_dtma_reaches_nothing_either() {
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let w = up(&[], root.then_some(DTMA_USER)).await;
    let (report, own) = w.attack().await;
    assert_files_and_environments_out_of_reach(&report, &own);
    assert_no_other_process_visible(&report);
    assert_isolation(&w, "bubblewrap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_bubblewrap_a_root_dtma_runs_each_server_as_a_user_of_its_own() {
    // SAFETY: geteuid cannot fail and touches no memory.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the fallback needs a root DTMA"
    );
    let w = up(&[("TOOLBELT_SANDBOX", "user")], None).await;
    let (report, own) = w.attack().await;
    assert_files_and_environments_out_of_reach(&report, &own);
    // Without a PID namespace other processes stay listable (their environments do not
    // stay readable: asserted above). That is what `user` gives up against bubblewrap.
    assert!(report["uid"].as_u64().unwrap() >= 1_900_000_000, "{report}");
    assert_isolation(&w, "user").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_no_sandbox_servers_are_refused_unless_an_admin_allows_it_which_is_audited() {
    let w = up(&[("TOOLBELT_SANDBOX", "none")], None).await;
    w.fixture("fx", None).await;
    w.api
        .post(
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "fx", "toolbox": "local" }),
        )
        .await;
    let refused = w
        .wait("fx", "was refused", |v| v["status"] == "error_runtime")
        .await;
    let why = refused["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("TOOLBELT_ALLOW_UNSANDBOXED"), "{refused:#}");
    assert_isolation(&w, "none").await;
    let audit = w.api.get("/api/v1/audit?action=toolbox.unsandboxed").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 0, "{audit}");
    drop(w);

    let w = up(
        &[
            ("TOOLBELT_SANDBOX", "none"),
            ("TOOLBELT_ALLOW_UNSANDBOXED", "1"),
        ],
        None,
    )
    .await;
    w.fixture("fx", None).await;
    w.api
        .post(
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "fx", "toolbox": "local" }),
        )
        .await;
    w.wait("fx", "ran", |v| v["status"] == "running").await;
    let tb = w.toolbox().await;
    assert_eq!(tb["isolation"], "none");
    assert_eq!(
        tb["report"]["runtime"]["unsandboxed_allowed"], true,
        "{tb:#}"
    );
    eventually("the opt-in audited", WAIT, || async {
        let audit = w.api.get("/api/v1/audit?action=toolbox.unsandboxed").await;
        (audit["items"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
}
