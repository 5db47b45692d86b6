//! The end-to-end harness. Running `toolbelt` as its users do: a server process
//! ([`Server`]), DTMA processes ([`DtmaProc`]) and CLI invocations ([`Cli`]); an in-process
//! control plane ([`plane`]); agents as the official Python SDK ([`sdk`]) or a raw
//! JSON-RPC client that shows the wire ([`mcp`]); the OAuth fixtures ([`oauth`]); the
//! scripted LLM the chat tests drive ([`llm`]) and chat over REST ([`chat`]). Scenarios
//! speak through domain handles ([`world`]: callers, toolboxes, servers, agents) and wait
//! with [`eventually::eventually`]; `tests/harness/README.md` says which piece is for what.

#[path = "harness/browser.rs"]
pub mod browser;
#[path = "harness/chat.rs"]
pub mod chat;
#[path = "harness/eventually.rs"]
pub mod eventually;
#[path = "harness/llm.rs"]
pub mod llm;
#[path = "harness/mcp.rs"]
pub mod mcp;
#[path = "harness/netns.rs"]
pub mod netns;
#[path = "harness/oauth.rs"]
pub mod oauth;
#[path = "harness/pg_cluster.rs"]
pub mod pg_cluster;
#[path = "harness/plane.rs"]
pub mod plane;
#[path = "harness/replicas.rs"]
pub mod replicas;
#[path = "harness/rest.rs"]
pub mod rest;
#[path = "harness/sdk.rs"]
pub mod sdk;
#[path = "harness/tls.rs"]
pub mod tls;
#[path = "harness/world.rs"]
pub mod world;

use eventually::eventually;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use toolbelt_testkit::proc::{free_port, toolbelt_bin};

const LOOPBACK: &str = "127.0.0.1";

/// A `toolbelt up` (or `serve`) process on a free loopback port.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    /// Starts `toolbelt up` with the given data dir and extra environment.
    pub async fn up(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start("up", LOOPBACK, data_dir, env, None).await
    }

    /// `toolbelt up` as the user `uid` (a root test runs it as an unprivileged one; the
    /// data dir is made that user's).
    pub async fn up_as(data_dir: &Path, env: &[(&str, &str)], uid: Option<u32>) -> Server {
        Self::start("up", LOOPBACK, data_dir, env, uid).await
    }

    /// Starts `toolbelt serve` (no local toolbox).
    pub async fn serve(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start("serve", LOOPBACK, data_dir, env, None).await
    }

    /// `toolbelt serve` listening on `host` (an address a test's namespace reaches).
    pub async fn serve_at(host: &str, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start("serve", host, data_dir, env, None).await
    }

    /// The control plane's signing key (tests sign DTMA calls with it).
    pub fn control_key(&self) -> toolbelt_model::signed::ControlKey {
        let hex = std::fs::read_to_string(self.data_dir.join("control.key")).unwrap();
        let bytes: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap())
            .collect();
        toolbelt_model::signed::ControlKey::from_seed(bytes.try_into().unwrap())
    }

    async fn start(
        sub: &str,
        host: &str,
        data_dir: &Path,
        env: &[(&str, &str)],
        uid: Option<u32>,
    ) -> Server {
        let port = free_port();
        std::fs::create_dir_all(data_dir).unwrap();
        if let Some(uid) = uid {
            std::os::unix::fs::chown(data_dir, Some(uid), Some(uid)).unwrap();
        }
        let log = data_dir.with_extension(format!("{port}.log"));
        let mut cmd = Command::new(toolbelt_bin());
        cmd.args([sub, "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("{host}:{port}")])
            .env_remove("TOOLBELT_DATABASE_URL")
            .env("TOOLBELT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ));
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        let child = cmd.spawn().expect("toolbelt up starts");
        let tls = env.iter().any(|(k, _)| *k == "TOOLBELT_TLS_CERT");
        let url = format!("{}://{host}:{port}", if tls { "https" } else { "http" });
        // Readiness over HTTPS trusts the CA the server is given.
        let http = match env.iter().find(|(k, _)| *k == "TOOLBELT_CA_FILE") {
            Some((_, f)) => toolbelt_net::http::Outbound::with_ca_file(f.as_ref())
                .unwrap()
                .builder()
                .build()
                .unwrap(),
            None => toolbelt_net::http::client(),
        };
        let s = Server {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
            log,
        };
        s.wait_ready_with(http).await;
        s
    }

    pub async fn wait_ready(&self) {
        self.wait_ready_with(toolbelt_net::http::client()).await
    }

    async fn wait_ready_with(&self, http: reqwest::Client) {
        let url = format!("{}/readyz", self.url);
        eventually("toolbelt to be ready", Duration::from_secs(20), || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit (status 0).
    pub fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_exit(&mut self.child, Duration::from_secs(15));
        assert!(
            status.success(),
            "toolbelt exited with {status} on SIGTERM:\n{}",
            self.log_text()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `toolbelt dtma` process.
pub struct DtmaProc {
    pub child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl DtmaProc {
    /// Starts a DTMA on a free port; `join` only on first start.
    pub async fn start(
        server: &str,
        join: Option<&str>,
        data_dir: &Path,
        runtime: &str,
        env: &[(&str, &str)],
    ) -> DtmaProc {
        Self::spawn(None, server, join, data_dir, runtime, env).await
    }

    /// A DTMA inside `net`'s namespace, listening on (and advertising) its address.
    pub async fn start_in(
        net: &netns::Netns,
        server: &str,
        join: Option<&str>,
        data_dir: &Path,
        runtime: &str,
        env: &[(&str, &str)],
    ) -> DtmaProc {
        Self::spawn(Some(net), server, join, data_dir, runtime, env).await
    }

    async fn spawn(
        net: Option<&netns::Netns>,
        server: &str,
        join: Option<&str>,
        data_dir: &Path,
        runtime: &str,
        env: &[(&str, &str)],
    ) -> DtmaProc {
        let port = free_port();
        std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
        let log = data_dir.with_extension(format!("{port}.log"));
        let host = net.map_or(LOOPBACK, |n| n.ns_ip.as_str());
        let mut cmd = match net {
            Some(n) => n.command(&toolbelt_bin()),
            None => Command::new(toolbelt_bin()),
        };
        cmd.args([
            "dtma",
            "--server",
            server,
            "--runtime",
            runtime,
            "--listen",
            &format!("{host}:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("TOOLBELT_LOG", "debug,hyper=info,reqwest=info,bollard=info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        ));
        if let Some(j) = join {
            cmd.args(["--join-token", j]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("toolbelt dtma starts");
        let d = DtmaProc {
            child,
            addr: format!("{host}:{port}"),
            log,
        };
        let url = format!("http://{}/healthz", d.addr);
        eventually("the DTMA to serve", Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                toolbelt_net::http::client()
                    .get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DtmaProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `docker inspect` of one object, as JSON.
pub fn docker_inspect(id: &str) -> Value {
    let out = Command::new("docker")
        .args(["inspect", id])
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker inspect {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
}

/// Removes every container and network a toolbox owns (tests clean up after themselves).
pub fn docker_cleanup(toolbox_id: &str) {
    let filter = format!("label=toolbelt.toolbox={toolbox_id}");
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .arg("rm")
            .arg("-f")
            .args(&ids)
            .output();
    }
    // The toolbox's networks: one per server that has one (and the shared one of DTMAs
    // before per-server networks).
    let out = Command::new("docker")
        .args(["network", "ls", "-q", "--filter", &filter])
        .output()
        .unwrap();
    let nets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !nets.is_empty() {
        let _ = Command::new("docker")
            .args(["network", "rm"])
            .args(&nets)
            .output();
    }
}

/// Containers of one server, by label.
pub fn containers_of(server_id: &str) -> Vec<String> {
    let filter = format!("label=toolbelt.server={server_id}");
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One CLI invocation against `url` with `token`.
pub struct Cli<'a> {
    pub url: &'a str,
    pub token: Option<&'a str>,
    pub config: PathBuf,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

impl Cli<'_> {
    pub fn run(&self, args: &[&str]) -> Ran {
        let mut cmd = Command::new(toolbelt_bin());
        cmd.args(args)
            .env("TOOLBELT_URL", self.url)
            .env("TOOLBELT_CONFIG", &self.config)
            .env_remove("TOOLBELT_TOKEN");
        if let Some(t) = self.token {
            cmd.env("TOOLBELT_TOKEN", t);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("toolbelt runs");
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into(),
            stderr: String::from_utf8_lossy(&stderr).into(),
        }
    }

    /// Runs `args` (a `-o json` command) until it succeeds with JSON satisfying `pred`;
    /// that JSON. On timeout the panic shows the last output.
    pub async fn until(&self, args: &[&str], what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(what, eventually::WAIT, async || {
            let r = self.run(args);
            match serde_json::from_str::<Value>(&r.stdout) {
                Ok(v) if r.code == 0 && pred(&v) => Ok(v),
                _ => Err(format!("exit {}: {}{}", r.code, r.stdout, r.stderr)),
            }
        })
        .await
    }

    /// Runs and insists on exit code 0.
    pub fn ok(&self, args: &[&str]) -> Ran {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "toolbelt {}:\n{}\n{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r
    }
}
