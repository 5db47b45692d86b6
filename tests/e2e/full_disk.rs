//! A full disk under the data dir (issue 13, "In CI"): `toolbelt up` on a size-limited
//! tmpfs the test mounts (never the machine's disk), filled to the last byte. Writes are
//! refused with 503 saying the disk is full and tool calls fail (their audit event cannot
//! be made durable) rather than answering unaudited; reads keep working. Once space
//! returns, writes and calls work again without a restart, nothing half-written is left,
//! the audit chain verifies and SQLite's integrity check passes.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::world::{Bot, Caller};
use toolbelt_e2e::{Cli, Server};
use toolbelt_testkit::fixture::fixture_bin;

const ADMIN: &str = "tbu_full-disk-admin-00000000";
const WAIT: Duration = Duration::from_secs(60);

/// A tmpfs of `mib` MiB mounted on a fresh directory; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u32) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let size = format!("size={mib}m");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs (the test runs as root)");
        Tmpfs { path, _dir: dir }
    }

    /// Fills what is left with a file; removing it gives the space back.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        // The last partial chunk: byte by byte until nothing more fits.
        while f.write_all(&[0]).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

async fn call(bot: &Bot, text: &str) -> Value {
    let mut sdk = bot.mcp("legacy").await;
    let r = sdk.call("fx__echo", json!({ "text": text })).await;
    sdk.quit().await;
    r
}

fn integrity(db: &Path) -> String {
    let out = Command::new(toolbelt_e2e::sdk::python())
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(db)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_clearly_and_loses_nothing_once_space_returns() {
    let disk = Tmpfs::mount(48);
    // The mount is the data dir; the server's log is written beside it, on the real disk.
    let data = disk.path.clone();
    let server = Server::up(
        &data,
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_RUNTIME", "process"),
            ("TOOLBELT_HEARTBEAT_MS", "300"),
        ],
    )
    .await;
    let cli = Cli {
        url: &server.url,
        token: Some(ADMIN),
        config: disk._dir.path().join("cli.json"),
    };
    let fx = fixture_bin().display().to_string();
    cli.ok(&[
        "catalog",
        "create",
        "fx",
        "--command",
        &fx,
        "--transport",
        "stdio",
    ]);
    cli.ok(&["server", "create", "fx", "--catalog", "fx"]);
    let admin = Caller::new(&server.url, ADMIN);
    admin.server("fx", "local").running().await;
    let bot = admin.agent("bot").await;
    admin.grant(&bot.name).server("fx", "local").await;
    assert_eq!(call(&bot, "before").await["text"], "before");

    let filler = disk.fill();
    // The WAL may still hold a few writes' worth of space: write until one is refused.
    let mut made = vec!["bot".to_string()];
    let mut refused = None;
    for i in 0..50 {
        let name = format!("full-{i}");
        let (status, body) = admin
            .rest
            .send("POST", "/api/v1/agents", Some(json!({ "name": name })))
            .await;
        match status {
            201 => made.push(name),
            503 => {
                refused = Some(body);
                break;
            }
            _ => panic!("agent {name} on a full disk: {status} {body}"),
        }
    }
    let refused = refused.expect("a write refused on a full disk");
    assert!(
        refused["detail"].as_str().unwrap().contains("disk is full"),
        "{refused}"
    );
    // Every write while full is refused the same way (each may leave its pooled
    // connection in a state the pool must not hand out again).
    for i in 0..10 {
        let (status, body) = admin
            .rest
            .send(
                "POST",
                "/api/v1/agents",
                Some(json!({ "name": format!("refused-{i}") })),
            )
            .await;
        assert_eq!(status, 503, "write {i} while full: {body}");
    }
    // A call cannot be audited, so it is not answered as if it were.
    let r = call(&bot, "while full").await;
    assert_ne!(r["text"], "while full", "answered unaudited: {r}");
    // Reads work.
    let (status, _) = admin.rest.send("GET", "/api/v1/agents", None).await;
    assert_eq!(status, 200);

    std::fs::remove_file(filler).unwrap();
    // No restart: the same process recovers.
    eventually("writes to work again", WAIT, async || {
        let (s, b) = admin
            .rest
            .send("POST", "/api/v1/agents", Some(json!({ "name": "after" })))
            .await;
        if s == 201 {
            Ok(())
        } else {
            Err(format!("{s} {b}"))
        }
    })
    .await;
    made.push("after".into());
    // And keeps working: no connection is left stuck in a transaction.
    for i in 0..20 {
        let name = format!("again-{i}");
        let (status, body) = admin
            .rest
            .send("POST", "/api/v1/agents", Some(json!({ "name": name })))
            .await;
        assert_eq!(status, 201, "write {i} after space returned: {body}");
        made.push(name);
    }
    eventually("calls to work again", WAIT, async || {
        let r = call(&bot, "after").await;
        if r["text"] == "after" { Ok(()) } else { Err(r) }
    })
    .await;
    let listed = admin.rest.get("/api/v1/agents").await;
    let mut names: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    made.sort();
    assert_eq!(names, made, "exactly the writes that were answered 201");
    let verify = admin.rest.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    server.stop();
    assert_eq!(integrity(&data.join("toolbelt.db")), "ok");
}
