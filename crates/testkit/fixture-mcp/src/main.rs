//! `fixture-mcp`: a small, scriptable MCP server that Toolbelt's tests run as an upstream.
//!
//! Its tools misbehave on request (errors, crashes, junk on stdout, memory, forks, a tool
//! list that changes at run time) so the tests can drive the gateway and the DTMA through
//! the cases real servers produce. Logs go to stderr only: in stdio mode stdout is the
//! protocol.
//!
//! ```text
//! fixture-mcp [--stdio]                 serve on stdin/stdout (the default)
//! fixture-mcp --http 0.0.0.0:PORT       serve Streamable HTTP at /mcp
//! fixture-mcp --http ADDR --json        … answering one-message replies as JSON, not SSE
//! fixture-mcp --sleep-forever           do nothing, forever (the children of the `fork` tool)
//! fixture-mcp --crash-on-start CODE     exit at once with CODE (crash-loop tests)
//! fixture-mcp --junk-on-start N         print N non-JSON lines to stdout before serving
//! fixture-mcp --tools N                 pad the tool list with echo-like tools to N tools
//! fixture-mcp --change-on-start MODE    start as if `change_tools` MODE had been called (a
//!                                       changed definition that survives restarts)
//! fixture-mcp --start-delay-ms MS       wait MS before serving (a slow server: its status
//!                                       stays `starting` that long, for live-update tests)
//! fixture-mcp --label TEXT              `whoami` answers TEXT too (which server answered)
//! fixture-mcp --print-secret NAME …     print the value of secret NAME (env, else the file in
//!                                       $TOOLBELT_SECRETS_DIR or /run/secrets) to stdout and
//!                                       stderr: whole, split across two writes, straddling
//!                                       8 KiB in a long line, then every 500 ms (log masking)
//! ```

mod args;
mod calls;
mod escape;
mod handler;
mod http;
mod prompts;
mod tools;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rmcp::ServiceExt;

/// Set once in stdio mode: the `junk` tool only writes to stdout when stdout is the protocol.
static STDIO_MODE: AtomicBool = AtomicBool::new(false);

pub fn stdio_mode() -> bool {
    STDIO_MODE.load(Ordering::Relaxed)
}

/// `--label`: tells servers running this same binary apart in `whoami`'s answer.
static LABEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn label() -> Option<&'static str> {
    LABEL.get().map(String::as_str)
}

#[derive(Debug, Default)]
struct Options {
    http: Option<SocketAddr>,
    json: bool,
    sleep_forever: bool,
    crash_on_start: Option<i32>,
    junk_on_start: usize,
    tools: usize,
    change_on_start: Option<String>,
    start_delay_ms: u64,
    print_secret: Vec<String>,
}

/// A bad command line (exit code 2).
#[derive(Debug, thiserror::Error)]
enum Usage {
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    #[error("{flag} {value}: {reason}")]
    BadValue {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("unknown argument {0}")]
    Unknown(String),
}

/// Serving failed (exit code 1).
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("http {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("junk: {0}")]
    Junk(std::io::Error),
    #[error("stdio: {0}")]
    Stdio(Box<dyn std::error::Error + Send + Sync>),
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, Usage> {
    fn parsed<T: std::str::FromStr<Err: std::fmt::Display>>(
        flag: &'static str,
        value: Option<String>,
    ) -> Result<T, Usage> {
        let value = value.ok_or(Usage::MissingValue(flag))?;
        value.parse().map_err(|e: T::Err| Usage::BadValue {
            flag,
            reason: e.to_string(),
            value,
        })
    }
    let mut o = Options::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--stdio" => o.http = None,
            "--http" => o.http = Some(parsed("--http", args.next())?),
            "--json" => o.json = true,
            "--sleep-forever" => o.sleep_forever = true,
            "--crash-on-start" => o.crash_on_start = Some(parsed("--crash-on-start", args.next())?),
            "--junk-on-start" => o.junk_on_start = parsed("--junk-on-start", args.next())?,
            "--tools" => o.tools = parsed("--tools", args.next())?,
            "--change-on-start" => {
                o.change_on_start = Some(
                    args.next()
                        .ok_or(Usage::MissingValue("--change-on-start"))?,
                )
            }
            "--start-delay-ms" => o.start_delay_ms = parsed("--start-delay-ms", args.next())?,
            "--label" => {
                let _ = LABEL.set(args.next().ok_or(Usage::MissingValue("--label"))?);
            }
            "--print-secret" => o
                .print_secret
                .push(args.next().ok_or(Usage::MissingValue("--print-secret"))?),
            _ => return Err(Usage::Unknown(arg)),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fixture-mcp: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.sleep_forever {
        // Die with the parent, so `fork`'s children do not outlive a fixture that was
        // run as a plain process (in a container they die with it anyway).
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on this process.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    tools::pad_to(opts.tools);
    if let Some(mode) = &opts.change_on_start
        && !tools::change(mode, None)
    {
        eprintln!("fixture-mcp: --change-on-start {mode}: unknown mode");
        return ExitCode::from(2);
    }
    std::thread::sleep(Duration::from_millis(opts.start_delay_ms));
    for name in &opts.print_secret {
        print_secret(name, opts.http.is_none());
    }
    if let Some(code) = opts.crash_on_start {
        eprintln!("fixture-mcp crashing on start with exit code {code}");
        std::process::exit(code);
    }
    // Few threads, kept alive: under a pids limit (the `fork` tool) the runtime must not
    // need to start new threads to keep answering.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_secs(24 * 3600))
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fixture-mcp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = serve(opts) => r,
            signal = terminated() => {
                eprintln!("fixture-mcp: {signal}, exiting");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fixture-mcp: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(opts: Options) -> Result<(), ServeError> {
    if let Some(addr) = opts.http {
        return http::serve(addr, opts.json)
            .await
            .map_err(|source| ServeError::Http { addr, source });
    }
    STDIO_MODE.store(true, Ordering::Relaxed);
    if opts.junk_on_start > 0 {
        calls::write_junk(opts.junk_on_start).map_err(ServeError::Junk)?;
    }
    // Printed before `serve`, which only returns once the client has initialized.
    eprintln!("fixture-mcp ready (stdio)");
    // `stdio()`, not `stdio_pipes()`: its writes go through std's locked stdout as whole
    // messages, so the `junk` tool can interleave whole lines through the same lock.
    let service = handler::Fixture
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Stdio(e.into()))?;
    let reason = service
        .waiting()
        .await
        .map_err(|e| ServeError::Stdio(e.into()))?;
    eprintln!("fixture-mcp: stdio closed ({reason:?})");
    Ok(())
}

/// Prints a secret's value as a careless server would (see `--print-secret`). In stdio
/// mode the stdout line is junk between protocol messages, as a stray `print` is.
fn print_secret(name: &str, stdio: bool) {
    use std::io::Write;
    let from_dir = |dir: &std::path::Path| std::fs::read_to_string(dir.join(name)).ok();
    let value = std::env::var(name)
        .ok()
        .or_else(|| std::env::var_os("TOOLBELT_SECRETS_DIR").and_then(|d| from_dir(d.as_ref())))
        .or_else(|| from_dir("/run/secrets".as_ref()))
        .unwrap_or_default();
    let value = value.trim_end().to_string();
    println!(
        "secret {name}={value} (on stdout{})",
        if stdio { ", not JSON-RPC" } else { "" }
    );
    let _ = std::io::stdout().flush();
    let mut err = std::io::stderr().lock();
    let half = value.len() / 2;
    let half = (0..=half)
        .rev()
        .find(|i| value.is_char_boundary(*i))
        .unwrap_or(0);
    let _ = write!(err, "split secret {name}={}", &value[..half]);
    let _ = err.flush();
    std::thread::sleep(Duration::from_millis(50));
    let _ = writeln!(err, "{} (two writes)", &value[half..]);
    let pad = (8 * 1024usize).saturating_sub(half);
    let _ = writeln!(err, "{}{value}{}", "x".repeat(pad), "y".repeat(100));
    let _ = err.flush();
    drop(err);
    let (name, value) = (name.to_string(), value);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            eprintln!("again secret {name}={value}");
        }
    });
}

/// Resolves on SIGTERM or SIGINT. As PID 1 in a container the default action for SIGTERM
/// is "ignore", so without this `docker stop` would wait for its kill timeout.
async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
