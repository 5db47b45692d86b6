//! A signal is a clean stop at any moment: during start-up (here, a database that accepts
//! the connection and never answers) `serve` and `dtma` exit 0, not by the signal's
//! default action — the handlers are installed before anything is bound or dialled.

use std::process::{Command, Stdio};
use tokio::net::TcpListener;
use toolbelt_e2e::eventually::{WAIT, eventually};
use toolbelt_e2e::wait_exit;
use toolbelt_testkit::proc::toolbelt_bin;

/// A listener that accepts connections and never says a word; how many it accepted.
async fn mute() -> (String, tokio::sync::watch::Receiver<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::watch::channel(0);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = l.accept().await {
            held.push(c);
            let _ = tx.send(held.len());
        }
    });
    (addr, rx)
}

async fn sigterm_while_starting(
    args: &[&str],
    env: &[(&str, &str)],
    accepted: tokio::sync::watch::Receiver<usize>,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(toolbelt_bin());
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // It is inside start-up, waiting on the mute peer.
    eventually("the process to dial the mute peer", WAIT, async || {
        *accepted.borrow() > 0
    })
    .await;
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut child, WAIT);
    assert!(
        status.success(),
        "{args:?} on SIGTERM during start-up: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_start_up_is_a_clean_exit() {
    let (db, accepted) = mute().await;
    let url = format!("postgres://toolbelt@{db}/toolbelt");
    let listen = format!("127.0.0.1:{}", toolbelt_testkit::proc::free_port());
    sigterm_while_starting(
        &["serve", "--listen", &listen],
        &[("TOOLBELT_DATABASE_URL", &url)],
        accepted,
    )
    .await;
    let (cp, accepted) = mute().await;
    let listen = format!("127.0.0.1:{}", toolbelt_testkit::proc::free_port());
    sigterm_while_starting(
        &[
            "dtma",
            "--server",
            &format!("http://{cp}"),
            "--join-token",
            "tbj_never-answered",
            "--runtime",
            "process",
            "--listen",
            &listen,
        ],
        &[],
        accepted,
    )
    .await;
}
