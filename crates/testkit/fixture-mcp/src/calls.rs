//! What each tool does once its arguments have been validated.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, ErrorCode, ProgressNotificationParam};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};

use crate::args::Args;
use crate::tools;

/// A 1x1 PNG, base64: what the `image` tool returns.
pub const PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s)])
}

fn tool_error(s: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(s)])
}

/// Text content plus the same data as structuredContent.
fn structured(shown: impl Into<String>, data: Value) -> CallToolResult {
    let mut r = text(shown);
    r.structured_content = Some(data);
    r
}

pub async fn run(
    name: &str,
    args: Args<'_>,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    // `--tools N` fillers all behave as echo.
    let name = if name.starts_with("filler_") {
        "filler"
    } else {
        name
    };
    match name {
        "echo" | "extra" | "filler" => {
            let mut s = args.str("text")?.to_owned();
            // Only reachable after `change_tools schema` added `suffix` to echo's schema.
            if let Some(suffix) = args.opt_str("suffix")? {
                s.push_str(suffix);
            }
            Ok(structured(s.clone(), json!({ "text": s })))
        }
        "add" => {
            let sum = args.num("a")? + args.num("b")?;
            Ok(structured(sum.to_string(), json!({ "sum": sum })))
        }
        "sleep" => sleep(args.count("ms")?, ctx).await,
        "fail" => match args.str("mode")? {
            "tool" => Ok(tool_error("failed on purpose")),
            _ => Err(McpError::new(ErrorCode(-32000), "failed on purpose", None)),
        },
        "progress" => progress(args.count("steps")?, args.count("delay_ms")?, ctx).await,
        "change_tools" | "rug_pull" => {
            let mode = args.str("mode")?;
            let description = args.opt_str("description")?;
            // Prompt and template changes ride on the tools' announcement: the gateway
            // lists a server again, whole, when it hears its tools changed.
            if !(crate::prompts::change(mode, description) || tools::change(mode, description)) {
                return Err(McpError::invalid_params(
                    format!("invalid argument `mode`: unknown mode {mode}"),
                    None,
                ));
            }
            tools::announce().await;
            Ok(text(format!("tools changed: {mode}")))
        }
        "crash" => {
            let code = args.int("code")?;
            eprintln!("fixture-mcp crashing on request with exit code {code}");
            std::process::exit(i32::try_from(code).unwrap_or(1));
        }
        "alloc" => alloc(args.count("mb")?),
        "alloc_shared" => Ok(alloc_shared(args.count("mb")?)),
        "stderr_flood" => Ok(stderr_flood(args.count("mb")?, args.count("line_kb")?)),
        "fork" => Ok(fork(args.count("n")?)),
        "whoami" => {
            // SAFETY: getuid and getgid cannot fail and touch no memory.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            let mut data = json!({ "uid": uid, "gid": gid, "pid": std::process::id() });
            if let Some(l) = crate::label() {
                data["label"] = json!(l);
            }
            Ok(structured(data.to_string(), data))
        }
        "env" => {
            let value = std::env::var_os(args.str("name")?);
            let data = json!({ "set": value.is_some(), "len": value.map_or(0, |v| v.len()) });
            Ok(structured(data.to_string(), data))
        }
        "secret" => {
            let name = args.str("name")?;
            let dir = std::env::var_os("TOOLBELT_SECRETS_DIR").unwrap_or_default();
            let value = if name.contains('/') || dir.is_empty() {
                None
            } else {
                std::fs::read_to_string(std::path::Path::new(&dir).join(name)).ok()
            };
            let data = json!({
                "set": value.is_some(),
                "len": value.as_ref().map_or(0, String::len),
                "prefix": value.as_ref().map(|v| v.chars().take(3).collect::<String>()).unwrap_or_default(),
            });
            Ok(structured(data.to_string(), data))
        }
        "image" => Ok(CallToolResult::success(vec![
            ContentBlock::text("a 1x1 PNG"),
            ContentBlock::image(PIXEL_PNG, "image/png"),
            ContentBlock::embedded_text("fixture://note", "the note beside the picture"),
        ])),
        "read_file" => Ok(match tokio::fs::read_to_string(args.str("path")?).await {
            Ok(s) => text(s),
            Err(e) => tool_error(e.to_string()),
        }),
        "write_file" => Ok(
            match tokio::fs::write(args.str("path")?, args.str("text")?).await {
                Ok(()) => text("ok"),
                Err(e) => tool_error(e.to_string()),
            },
        ),
        "escape" => {
            let list = |k: &str| -> Vec<String> {
                args.0
                    .get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let data = crate::escape::attempt(&list("read"), &list("write"), &list("connect"));
            Ok(structured(data.to_string(), data))
        }
        "junk" => {
            if crate::stdio_mode() {
                let lines = usize::try_from(args.count("lines")?).unwrap_or(usize::MAX);
                write_junk(lines)
                    .map_err(|e| McpError::internal_error(format!("junk: {e}"), None))?;
            }
            Ok(text("junked"))
        }
        other => Err(McpError::invalid_params(
            format!("unknown tool `{other}`"),
            None,
        )),
    }
}

async fn sleep(ms: u64, ctx: &RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
    let start = Instant::now();
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(text(format!("slept {ms} ms"))),
        _ = ctx.ct.cancelled() => {
            let after = start.elapsed().as_millis();
            // On stderr so tests can see that the cancellation reached the server.
            eprintln!("fixture-mcp: sleep cancelled after {after} ms");
            Ok(tool_error(format!("cancelled after {after} ms")))
        }
    }
}

async fn progress(
    steps: u64,
    delay_ms: u64,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let token = ctx.meta.get_progress_token();
    for i in 1..=steps {
        if let Some(token) = &token {
            let p = ProgressNotificationParam::new(token.clone(), i as f64)
                .with_total(steps as f64)
                .with_message(format!("step {i}"));
            if let Err(e) = ctx.peer.notify_progress(p).await {
                eprintln!("fixture-mcp: progress notification failed: {e}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
            _ = ctx.ct.cancelled() => return Ok(tool_error(format!("cancelled at step {i}"))),
        }
    }
    Ok(text("done"))
}

/// Kept alive for the life of the process, so `alloc` raises the resident size for good.
static HELD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn alloc(mb: u64) -> Result<CallToolResult, McpError> {
    let Some(bytes) = usize::try_from(mb)
        .ok()
        .and_then(|m| m.checked_mul(1 << 20))
    else {
        return Ok(tool_error(format!("{mb} MB is too much")));
    };
    let mut block: Vec<u8> = Vec::new();
    if let Err(e) = block.try_reserve_exact(bytes) {
        return Ok(tool_error(format!("cannot allocate {mb} MB: {e}")));
    }
    // Non-zero bytes, so every page is really written (zeroed memory may stay unmapped).
    block.resize(bytes, 0xA5);
    HELD.lock().unwrap_or_else(|p| p.into_inner()).push(block);
    Ok(text(format!("allocated {mb} MB")))
}

fn alloc_shared(mb: u64) -> CallToolResult {
    let Some(bytes) = usize::try_from(mb)
        .ok()
        .and_then(|m| m.checked_mul(1 << 20))
    else {
        return tool_error(format!("{mb} MB is too much"));
    };
    // SAFETY: a fresh anonymous mapping; written only within its length, never unmapped
    // (kept for the life of the process, like `alloc`).
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return tool_error(format!(
                "cannot map {mb} MB: {}",
                std::io::Error::last_os_error()
            ));
        }
        let page = 4096;
        let base = p.cast::<u8>();
        let mut off = 0;
        while off < bytes {
            base.add(off).write_volatile(0xA5);
            off += page;
        }
    }
    text(format!("mapped {mb} MB shared"))
}

fn stderr_flood(mb: u64, line_kb: u64) -> CallToolResult {
    let total = mb.saturating_mul(1 << 20);
    let chunk = vec![b'e'; 64 * 1024];
    let line = line_kb.saturating_mul(1024);
    let mut err = std::io::stderr().lock();
    let (mut written, mut in_line) = (0u64, 0u64);
    while written < total {
        let mut n = chunk.len() as u64;
        if line > 0 {
            n = n.min(line - in_line);
        }
        n = n.min(total - written);
        if err.write_all(&chunk[..n as usize]).is_err() {
            return tool_error("stderr closed");
        }
        written += n;
        in_line += n;
        if line > 0 && in_line == line {
            let _ = err.write_all(b"\n");
            in_line = 0;
        }
    }
    let _ = err.flush();
    text(format!("wrote {mb} MB to stderr"))
}

fn fork(n: u64) -> CallToolResult {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return tool_error(format!("current_exe: {e}")),
    };
    let mut spawned = 0u64;
    let mut first_error: Option<String> = None;
    for _ in 0..n {
        let child = std::process::Command::new(&exe)
            .arg("--sleep-forever")
            // No inherited stdio: a child must not keep the protocol pipes open.
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            // Not waited for: the children live (or become zombies) until the process exits.
            Ok(_) => spawned += 1,
            Err(e) => {
                first_error = Some(e.to_string());
                break;
            }
        }
    }
    let data = json!({ "spawned": spawned, "error": first_error });
    structured(data.to_string(), data)
}

/// Writes `lines` non-JSON lines to stdout as whole lines under std's stdout lock, the
/// same lock rmcp's stdio writer takes for each whole message, so no message is split.
pub fn write_junk(lines: usize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for _ in 0..lines {
        out.write_all(b"this is not json\n")?;
    }
    out.flush()
}
