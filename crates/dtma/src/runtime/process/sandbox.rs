//! How a process server is kept from the host: a bubblewrap sandbox where one can be
//! made, else a dedicated unprivileged user per server (a root DTMA), else nothing.
//!
//! The sandbox is an allow-list: an empty root with the system directories (`/usr`,
//! `/etc`, the `/lib*` and `/bin` links) and the command's own files bound read-only,
//! fresh `/proc`, `/dev`, `/tmp` and home, the server's own secret directory at
//! `/run/secrets`, and nothing else. So the data dir is invisible wherever it lies
//! unless it is under a bound path — and any protected path that is (a data dir inside a
//! virtualenv, under `/etc`) is covered by an empty tmpfs after the binds. Binding `/`
//! and masking known places would instead expose whatever was not thought of.
//!
//! [`bwrap_args`] is a pure function of a [`Plan`] (unit-tested); [`command_files`]
//! finds what a command needs on this host; [`detect`] probes what works here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use toolbelt_model::dtma::Isolation;

/// Bound read-only into every sandbox when present. On merged-/usr systems the `/bin`,
/// `/sbin` and `/lib*` entries are links into `/usr` and bind to the same directories.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];

/// The sandbox's home directory (a tmpfs) and working directory.
pub const SANDBOX_HOME: &str = "/home/mcp";
/// Where a server's own secret files appear inside the sandbox.
pub const SANDBOX_SECRETS: &str = "/run/secrets";

/// First uid of the per-server users a root DTMA runs servers as (a range no
/// distribution hands out); the uid doubles as the gid.
pub const UID_BASE: u32 = 1_900_000_000;
/// How many per-server uids there are.
pub const UID_SPAN: u32 = 1 << 24;

/// What one sandbox is made of.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The program (an absolute host path) and its arguments.
    pub argv: Vec<String>,
    /// Host paths the command needs (its executable, interpreter, virtualenv, package
    /// directory), each bound read-only at the same path.
    pub command_files: Vec<PathBuf>,
    /// The server's own secret directory, bound read-only at [`SANDBOX_SECRETS`].
    pub secrets_dir: Option<PathBuf>,
    /// Paths that must never be seen (data dirs, key files, the secret store): covered
    /// wherever a bind would show them.
    pub protected: Vec<Protected>,
    /// Keep the host's network namespace (the entry lists egress).
    pub network: bool,
    /// A root DTMA's server user: bwrap then runs as root (it binds what root can reach,
    /// a Python under `/root/.pyenv`, and needs no unprivileged user namespaces) and the
    /// command starts through `setpriv` as this user, with no capabilities left.
    pub run_as: Option<RunAs>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    /// util-linux's `setpriv` (a system path, so inside the sandbox too).
    pub setpriv: PathBuf,
}

/// A path no server may see; a file is covered by `/dev/null`, a directory by a tmpfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub path: PathBuf,
    pub file: bool,
}

impl Protected {
    /// As it is on this host (a path that does not exist yet counts as a directory).
    pub fn of(path: PathBuf) -> Protected {
        let file = path.is_file();
        Protected { path, file }
    }
}

/// Whether `p` is `dir` or lies under it (by components, so `/usrx` is not under `/usr`).
fn under(p: &Path, dir: &Path) -> bool {
    p.starts_with(dir)
}

fn is_system(p: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| under(p, Path::new(d)))
}

/// bwrap's arguments for a plan, ending with `--` and the command. Environment is not
/// here: values on argv are readable by every local user in `/proc/PID/cmdline`, so the
/// server's environment is bwrap's own (the DTMA starts bwrap with exactly that).
pub fn bwrap_args(plan: &Plan) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(OsString::from));
    if plan.run_as.is_none() {
        // An unprivileged bwrap works in a user namespace of its own; nested ones are
        // refused (they would hand the server capabilities to attack the kernel with).
        push(&["--unshare-user", "--disable-userns"]);
    }
    push(&[
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]);
    if !plan.network {
        push(&["--unshare-net"]);
    }
    // Dies with bwrap, which dies with the DTMA; its own session: no TIOCSTI into a
    // terminal the DTMA may have.
    push(&["--die-with-parent", "--new-session"]);
    for d in SYSTEM_DIRS {
        push(&["--ro-bind-try", d, d]);
    }
    // Private and writable: the mounts are the sandbox's alone (a root bwrap makes them
    // root's, hence the modes).
    push(&["--proc", "/proc", "--dev", "/dev"]);
    push(&["--perms", "1777", "--tmpfs", "/tmp"]);
    push(&["--perms", "0777", "--tmpfs", SANDBOX_HOME]);
    let mut made: Vec<PathBuf> = Vec::new();
    // Parent directories bwrap would make with the source's modes (`/root` 0700, which
    // a server user could not pass): made traversable first.
    let mut parents = |a: &mut Vec<OsString>, dest: &Path| {
        let mut ancestors: Vec<&Path> = dest
            .ancestors()
            .skip(1)
            .filter(|p| *p != Path::new("/") && !is_system(p))
            .collect();
        ancestors.reverse();
        for p in ancestors {
            if !made.iter().any(|m| m == p) {
                made.push(p.to_path_buf());
                a.extend(["--perms", "0755", "--dir"].map(OsString::from));
                a.push(p.as_os_str().to_os_string());
            }
        }
    };
    let mut bound: Vec<&Path> = SYSTEM_DIRS.iter().map(Path::new).collect();
    for f in &plan.command_files {
        if is_system(f) || plan.protected.iter().any(|p| under(f, &p.path)) {
            continue;
        }
        parents(&mut a, f);
        a.push("--ro-bind".into());
        a.push(f.as_os_str().to_os_string());
        a.push(f.as_os_str().to_os_string());
        bound.push(f);
    }
    if let Some(dir) = &plan.secrets_dir {
        parents(&mut a, Path::new(SANDBOX_SECRETS));
        a.push("--ro-bind".into());
        a.push(dir.as_os_str().to_os_string());
        a.push(SANDBOX_SECRETS.into());
    }
    // After every bind, so a protected path inside a bound one is covered, not shown.
    for p in &plan.protected {
        if bound.iter().any(|b| under(&p.path, b)) {
            let path = p.path.as_os_str().to_os_string();
            if p.file {
                a.extend(["--ro-bind".into(), "/dev/null".into(), path]);
            } else {
                a.extend(["--tmpfs".into(), path.clone(), "--remount-ro".into(), path]);
            }
        }
    }
    // The sandbox's root (where bwrap made the parents of the binds) read-only too:
    // only /tmp and the home take writes.
    a.extend(["--remount-ro", "/", "--chdir", SANDBOX_HOME].map(OsString::from));
    if let Some(r) = &plan.run_as {
        // Only to change user; setpriv drops them again (and the bounding set with them).
        a.extend(["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"].map(OsString::from));
        a.push(r.setpriv.as_os_str().to_os_string());
        let id = r.uid.to_string();
        a.extend(
            [
                "--reuid",
                &id,
                "--regid",
                &id,
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
            ]
            .map(OsString::from),
        );
    }
    a.push("--".into());
    a.extend(plan.argv.iter().map(OsString::from));
    a
}

/// Finds `program` the way `execvp` would, in `path` (a `PATH` value), relative names
/// against `cwd`.
pub fn resolve_program(program: &str, path: &str, cwd: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = cwd.join(program);
        return executable(&p).then_some(p);
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| cwd.join(d).join(program))
        .find(|p| executable(p))
}

/// What to bind for one of the command's files: the package it belongs to when that is
/// clear — the outermost `node_modules` directory on its path (npm puts a package's
/// dependencies there), the virtualenv whose `bin` holds it (a `pyvenv.cfg` beside
/// `bin`), or for a program in an installation prefix (`PREFIX/bin/python3.11`) that
/// prefix's `lib` beside it — else the file alone. Never a whole prefix such as
/// `~/.local` or `~/.cargo`, which hold unrelated files (and credentials).
fn owning_package(p: &Path) -> Vec<PathBuf> {
    let mut acc = PathBuf::new();
    for c in p.components() {
        acc.push(c);
        if c.as_os_str() == "node_modules" {
            return vec![acc];
        }
    }
    let prefix = p
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "bin"))
        .and_then(Path::parent)
        .filter(|pre| *pre != Path::new("/") && !is_system(pre));
    match prefix {
        Some(v) if v.join("pyvenv.cfg").is_file() => vec![v.to_path_buf()],
        Some(pre) if pre.join("lib").is_dir() => vec![p.to_path_buf(), pre.join("lib")],
        _ => vec![p.to_path_buf()],
    }
}

/// `p` and every path its symbolic links lead through to the file (a virtualenv's
/// `python` → pyenv's `python3` → `python3.11`): each must exist in the sandbox too.
fn link_chain(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    let mut at = p.to_path_buf();
    for _ in 0..16 {
        let Ok(target) = std::fs::read_link(&at) else {
            break;
        };
        let dir = at.parent().map(Path::to_path_buf).unwrap_or_default();
        let next = dir.join(target);
        // Links among the directories above are resolved; the file's own name is kept.
        at = match (next.parent().map(std::fs::canonicalize), next.file_name()) {
            (Some(Ok(d)), Some(name)) => d.join(name),
            _ => break,
        };
        out.push(at.clone());
    }
    out
}

/// The interpreter a script names on its `#!` line (`/usr/bin/env NAME` resolved).
fn interpreter(script: &Path, path: &str, cwd: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = String::from_utf8_lossy(line.split(|b| *b == b'\n').next()?).to_string();
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if first.ends_with("/env") {
        let name = words.find(|w| !w.starts_with('-'))?;
        return resolve_program(name, path, cwd);
    }
    Some(PathBuf::from(first))
}

/// What a command needs visible: its program's package (and that of the file a link
/// points to), its script interpreter's, and every absolute path among its arguments
/// that exists. System paths are left out (always bound).
pub fn command_files(program: &Path, args: &[String], path: &str, cwd: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf| {
        if !is_system(&p) && !out.iter().any(|o| under(&p, o)) {
            out.retain(|o| !under(o, &p));
            out.push(p);
        }
    };
    let mut programs = vec![program.to_path_buf()];
    if let Some(i) = interpreter(program, path, cwd) {
        programs.push(i);
    }
    for p in programs {
        for hop in link_chain(&p) {
            owning_package(&hop).into_iter().for_each(&mut add);
        }
    }
    for a in args.iter().filter(|a| a.starts_with('/')) {
        let p = PathBuf::from(a);
        if p.exists() {
            owning_package(&p).into_iter().for_each(&mut add);
        }
    }
    out
}

/// Where bwrap is: `TOOLBELT_BWRAP`, else `bwrap` on `PATH`.
pub fn bwrap_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TOOLBELT_BWRAP") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    resolve_program("bwrap", &path, Path::new("/"))
}

/// Whether the DTMA runs as root (then servers get users of their own).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The programs a bubblewrap sandbox is made with.
#[derive(Debug, Clone)]
pub struct Tools {
    pub bwrap: PathBuf,
    /// For a root DTMA: how the command becomes its server's user.
    pub setpriv: Option<PathBuf>,
}

/// Why the isolation asked for cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("TOOLBELT_SANDBOX={0} is not one of auto, bubblewrap, user, none")]
    Unknown(String),
    #[error("TOOLBELT_SANDBOX=bubblewrap, but bubblewrap cannot run here: {0}")]
    NoBubblewrap(String),
    #[error("TOOLBELT_SANDBOX=user needs a DTMA running as root (it runs servers as other users)")]
    NotRoot,
}

/// Runs a trivial command in a sandbox made like a server's, as a server would be run
/// (as a per-server uid when root): the only reliable test that namespaces are allowed.
fn probe(bwrap: &Path, setpriv: Option<&Path>) -> Result<(), String> {
    let path = "/usr/local/bin:/usr/bin:/bin";
    let t = resolve_program("true", path, Path::new("/")).ok_or("no `true` to probe with")?;
    let plan = Plan {
        argv: vec![t.display().to_string()],
        run_as: setpriv.map(|s| RunAs {
            uid: UID_BASE + UID_SPAN - 1,
            setpriv: s.to_path_buf(),
        }),
        ..Plan::default()
    };
    let mut cmd = std::process::Command::new(bwrap);
    cmd.args(bwrap_args(&plan))
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", bwrap.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The isolation this host gives, `TOOLBELT_SANDBOX` (`auto` by default) deciding:
/// `auto` takes the strongest that works; a named one is that or an error.
pub fn detect(setting: Option<&str>) -> Result<(Isolation, Option<Tools>, String), SandboxError> {
    let want = setting.unwrap_or("auto");
    let bwrap = || -> Result<Tools, String> {
        let b = bwrap_path().ok_or("bwrap is not installed (Debian package bubblewrap)")?;
        let setpriv = if is_root() {
            let path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
            let s = resolve_program("setpriv", path, Path::new("/"))
                .ok_or("setpriv (util-linux) is missing")?;
            Some(s)
        } else {
            None
        };
        probe(&b, setpriv.as_deref())?;
        Ok(Tools { bwrap: b, setpriv })
    };
    match want {
        "auto" => match bwrap() {
            Ok(b) => Ok((Isolation::Bubblewrap, Some(b), "bubblewrap".into())),
            Err(why) if is_root() => Ok((
                Isolation::User,
                None,
                format!("a user per server (no bubblewrap: {why})"),
            )),
            Err(why) => Ok((
                Isolation::None,
                None,
                format!("none (no bubblewrap: {why}; not root, so no user per server)"),
            )),
        },
        "bubblewrap" => bwrap()
            .map(|b| (Isolation::Bubblewrap, Some(b), "bubblewrap".into()))
            .map_err(SandboxError::NoBubblewrap),
        "user" if is_root() => Ok((
            Isolation::User,
            None,
            "a user per server (asked for)".into(),
        )),
        "user" => Err(SandboxError::NotRoot),
        "none" => Ok((Isolation::None, None, "none (asked for)".into())),
        other => Err(SandboxError::Unknown(other.into())),
    }
}

/// How this runtime isolates servers, found at start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub isolation: Isolation,
    /// bwrap (and setpriv) for isolation `bubblewrap`.
    pub tools: Option<Tools>,
    /// What was found, for the log and the heartbeat.
    pub detail: String,
    /// An admin let servers run with isolation `none` (`TOOLBELT_ALLOW_UNSANDBOXED=1`).
    pub allow_unsandboxed: bool,
    /// What no server may see: the data dirs, key files and the secret store.
    pub protected: Vec<Protected>,
}

impl SandboxConfig {
    /// From `TOOLBELT_SANDBOX` (`auto`, `bubblewrap`, `user`, `none`) and
    /// `TOOLBELT_ALLOW_UNSANDBOXED`, probing this host.
    pub fn from_env(protected: &[PathBuf]) -> Result<SandboxConfig, SandboxError> {
        let setting = std::env::var("TOOLBELT_SANDBOX").ok();
        let (isolation, tools, detail) = detect(setting.as_deref().filter(|s| !s.is_empty()))?;
        let allow_unsandboxed = std::env::var("TOOLBELT_ALLOW_UNSANDBOXED")
            .is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        Ok(SandboxConfig {
            isolation,
            tools,
            detail,
            allow_unsandboxed,
            protected: protected.iter().cloned().map(Protected::of).collect(),
        })
    }
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
