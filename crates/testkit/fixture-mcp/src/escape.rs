//! The `escape` tool: what a hostile MCP server would try once it runs on a toolbox.
//! Each attempt is reported (`ok`, and what it got or why it failed) so a test can
//! assert that every one of them failed.

use serde_json::{Value, json};

/// At most this much of an environment read is reported (of a file: its start only).
const KEEP: usize = 8 * 1024;
const KEEP_FILE: usize = 64;

fn read(path: &str, keep: usize) -> Value {
    match std::fs::read(path) {
        Ok(bytes) => {
            let shown = &bytes[..bytes.len().min(keep)];
            // Environment blocks are NUL-separated: shown one variable a line.
            let text = String::from_utf8_lossy(shown).replace('\0', "\n");
            json!({ "path": path, "ok": true, "bytes": bytes.len(), "text": text })
        }
        Err(e) => json!({ "path": path, "ok": false, "error": e.to_string() }),
    }
}

fn create(path: &str) -> Value {
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    match made {
        Ok(_) => {
            let _ = std::fs::remove_file(path);
            json!({ "path": path, "ok": true })
        }
        Err(e) => json!({ "path": path, "ok": false, "error": e.to_string() }),
    }
}

/// Every process this one can see in `/proc`, but itself.
fn processes() -> Vec<Value> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<(u32, String)> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (pid, cmd.trim().to_string())
        })
        .collect();
    out.sort();
    out.into_iter()
        .map(|(pid, cmdline)| json!({ "pid": pid, "cmdline": cmdline }))
        .collect()
}

/// A TCP connection to `addr` (`host:port`), given two seconds.
fn connect(addr: &str) -> Value {
    use std::net::ToSocketAddrs;
    let tried = addr
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut a| a.next().ok_or_else(|| "no address".to_string()))
        .and_then(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2))
                .map_err(|e| e.to_string())
        });
    match tried {
        Ok(_) => json!({ "addr": addr, "ok": true }),
        Err(e) => json!({ "addr": addr, "ok": false, "error": e }),
    }
}

pub fn attempt(reads: &[String], writes: &[String], connects: &[String]) -> Value {
    // SAFETY: getppid and getuid cannot fail and touch no memory.
    let (ppid, uid) = unsafe { (libc::getppid(), libc::getuid()) };
    json!({
        "pid": std::process::id(),
        "ppid": ppid,
        "uid": uid,
        "read": reads.iter().map(|p| read(p, KEEP_FILE)).collect::<Vec<_>>(),
        "environ": [
            read("/proc/1/environ", KEEP),
            read(&format!("/proc/{ppid}/environ"), KEEP),
        ],
        "processes": processes(),
        "write": writes.iter().map(|p| create(p)).collect::<Vec<_>>(),
        "connect": connects.iter().map(|a| connect(a)).collect::<Vec<_>>(),
    })
}
