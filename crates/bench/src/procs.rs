//! The processes a gateway benchmark runs: `toolbelt serve`, `toolbelt dtma` and the
//! fixture as an HTTP upstream, each optionally under a wrapper (valgrind), killed on drop.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use toolbelt_testkit::fixture::static_fixture_bin;
use toolbelt_testkit::proc::{free_port, toolbelt_bin};

pub const ADMIN: &str = "tbu_bench-admin-token-00000000";

/// How to start one process: extra arguments and environment, and a command it runs
/// under (`valgrind --tool=callgrind …`), if any.
#[derive(Default, Clone)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub wrap: Vec<String>,
}

impl Launch {
    pub fn arg(mut self, a: &str) -> Launch {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Launch {
        self.env.push((k.into(), v.into()));
        self
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = match self.wrap.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.stdin(Stdio::null());
        cmd
    }
}

/// A child process, killed when dropped.
pub struct Proc {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of its log (for a failure's report).
    pub fn tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(n).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_file(path: &Path) -> Result<(std::fs::File, std::fs::File)> {
    let out = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)?;
    Ok((out.try_clone()?, out))
}

/// `toolbelt serve` on a given port (a restart must keep it: the DTMAs know the URL).
pub fn serve(data: &Path, port: u16, how: &Launch) -> Result<Proc> {
    launch(&["serve"], data, port, how)
}

/// `toolbelt up --runtime process`: the control plane and the `local` toolbox's DTMA in one
/// process.
pub fn up(data: &Path, port: u16, how: &Launch) -> Result<Proc> {
    launch(&["up", "--runtime", "process"], data, port, how)
}

fn launch(sub: &[&str], data: &Path, port: u16, how: &Launch) -> Result<Proc> {
    std::fs::create_dir_all(data)?;
    let log = data.with_extension("log");
    let (out, err) = log_file(&log)?;
    let mut cmd = how.command(&toolbelt_bin());
    cmd.args(sub)
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(&how.args)
        .env_remove("TOOLBELT_DATABASE_URL")
        .env("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN)
        .env("TOOLBELT_HEARTBEAT_MS", "1000")
        .env("TOOLBELT_LOG", "info")
        // The remote route's upstream listens on loopback.
        .env("TOOLBELT_SSRF_ALLOW", "127.0.0.1/32")
        .envs(how.env.iter().map(|(k, v)| (k, v)))
        .stdout(out)
        .stderr(err);
    // Given a certificate, `serve` answers HTTPS only.
    let scheme = if how.env.iter().any(|(k, _)| k == "TOOLBELT_TLS_CERT") {
        "https"
    } else {
        "http"
    };
    Ok(Proc {
        child: cmd
            .spawn()
            .with_context(|| format!("toolbelt {}", sub[0]))?,
        url: format!("{scheme}://127.0.0.1:{port}"),
        log,
    })
}

/// `toolbelt dtma` on a free port, joining with `join` on first start.
pub async fn dtma(
    control: &str,
    join: Option<&str>,
    data: &Path,
    runtime: &str,
    how: &Launch,
) -> Result<Proc> {
    let port = free_port();
    std::fs::create_dir_all(data.parent().context("a parent dir")?)?;
    let log = data.with_extension("log");
    let (out, err) = log_file(&log)?;
    let mut cmd = how.command(&toolbelt_bin());
    cmd.args(["dtma", "--server", control, "--runtime", runtime])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data)
        .env("TOOLBELT_LOG", "info")
        .env("TOOLBELT_HEARTBEAT_MS", "1000")
        .envs(how.env.iter().map(|(k, v)| (k, v)))
        .stdout(out)
        .stderr(err);
    if let Some(j) = join {
        cmd.args(["--join-token", j]);
    }
    // A DTMA given a certificate serves HTTPS only; its readiness is probed trusting the
    // CA it names (TOOLBELT_CA_FILE).
    let tls = how.env.iter().any(|(k, _)| k == "TOOLBELT_TLS_CERT");
    let p = Proc {
        child: cmd.spawn().context("toolbelt dtma")?,
        url: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
        log,
    };
    healthy_with(
        &client_for(how)?,
        &format!("{}/healthz", p.url),
        Duration::from_secs(120),
    )
    .await?;
    Ok(p)
}

/// The fixture as a Streamable HTTP server (legacy sessions, JSON replies) on `port`.
pub async fn upstream(port: u16, dir: &Path) -> Result<Proc> {
    let log = dir.join("upstream.log");
    let (out, err) = log_file(&log)?;
    let child = Command::new(static_fixture_bin())
        .args(["--http", &format!("127.0.0.1:{port}"), "--json"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("fixture-mcp --http")?;
    let p = Proc {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(10),
            "the upstream fixture never listened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(p)
}

/// Polls `url` every 5 ms until it answers 2xx.
pub async fn healthy(url: &str, limit: Duration) -> Result<()> {
    healthy_with(&toolbelt_net::http::client(), url, limit).await
}

/// A client for a process started with `how`: trusting the CA it names
/// (TOOLBELT_CA_FILE), as one serving TLS with a test CA needs.
pub fn client_for(how: &Launch) -> Result<reqwest::Client> {
    Ok(
        match how.env.iter().find(|(k, _)| k == "TOOLBELT_CA_FILE") {
            Some((_, f)) => toolbelt_net::http::Outbound::with_ca_file(f.as_ref())?
                .builder()
                .tcp_nodelay(true)
                .build()?,
            None => toolbelt_net::http::client(),
        },
    )
}

pub async fn healthy_with(http: &reqwest::Client, url: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(start.elapsed() < limit, "{url} not ready within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
