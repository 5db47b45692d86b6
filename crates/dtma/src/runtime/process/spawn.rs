//! The command a server is started with, by isolation, and what its child does between
//! fork and exec (cgroup, rlimits, its own user, death with the DTMA).

use super::cgroup;
use super::sandbox::{self, Plan, SandboxConfig};
use crate::runtime::{Launch, RuntimeError};
use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;
use toolbelt_model::dtma::Isolation;

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A command ready to spawn (limits still to be set), and the scratch directory made for
/// it, if any.
pub(super) struct Prepared {
    pub cmd: Command,
    pub scratch: Option<PathBuf>,
    /// The user the DTMA itself switches to between fork and exec (isolation `user`; a
    /// bubblewrap sandbox switches inside).
    pub setuid: Option<u32>,
}

/// The environment a server gets: PATH, HOME and LANG basics, what its entry declares,
/// its env-delivered secrets, and where its secret files are. Nothing of the DTMA's own.
fn environment(
    launch: &Launch<'_>,
    path: &str,
    home: &Path,
    secrets_dir: Option<&Path>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("PATH".to_string(), path.to_string()),
        ("HOME".to_string(), home.display().to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
    ]);
    env.extend(launch.server.env.clone());
    env.extend(launch.secret_env.clone());
    if let Some(d) = secrets_dir {
        env.insert("TOOLBELT_SECRETS_DIR".into(), d.display().to_string());
    }
    env
}

/// A fresh working directory for a server run as `uid`, outside the data dir, only it
/// may enter (a random name: a planted directory is never reused).
fn scratch_dir(uid: u32) -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let dir = base.join(format!("toolbelt-scratch-{:016x}", rand::random::<u64>()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    std::os::unix::fs::chown(&dir, Some(uid), Some(uid))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// Builds the command for `argv` under the runtime's isolation.
pub(super) fn prepare(
    sb: &SandboxConfig,
    launch: &Launch<'_>,
    argv: &[String],
    uid: Option<u32>,
) -> Result<Prepared, RuntimeError> {
    let (program, args) = argv.split_first().expect("checked non-empty");
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let resolved = sandbox::resolve_program(program, &path, &cwd).ok_or_else(|| {
        RuntimeError::Refused(format!(
            "cannot start {program}: no such executable (PATH={path})"
        ))
    })?;
    let secrets = launch.secrets_dir.as_deref();
    let mut setuid = None;
    let (mut cmd, scratch) = match sb.isolation {
        Isolation::Bubblewrap => {
            let tools = sb
                .tools
                .as_ref()
                .expect("bubblewrap isolation has its tools");
            let run_as = match (uid, &tools.setpriv) {
                (Some(uid), Some(setpriv)) => Some(sandbox::RunAs {
                    uid,
                    setpriv: setpriv.clone(),
                }),
                _ => None,
            };
            let plan = Plan {
                argv: std::iter::once(resolved.display().to_string())
                    .chain(args.iter().cloned())
                    .collect(),
                command_files: sandbox::command_files(&resolved, args, &path, &cwd),
                secrets_dir: secrets.map(Path::to_path_buf),
                protected: sb.protected.clone(),
                network: !launch.server.egress.is_empty(),
                run_as,
            };
            let mut cmd = Command::new(&tools.bwrap);
            let inside_secrets = secrets.map(|_| Path::new(sandbox::SANDBOX_SECRETS));
            // bwrap's own environment becomes the server's: values never go on argv.
            cmd.args(sandbox::bwrap_args(&plan))
                .env_clear()
                .envs(environment(
                    launch,
                    &path,
                    Path::new(sandbox::SANDBOX_HOME),
                    inside_secrets,
                ));
            (cmd, None)
        }
        Isolation::User => {
            let uid = uid.expect("a root DTMA gives each server a uid");
            let dir = scratch_dir(uid).map_err(|e| {
                RuntimeError::Refused(format!("cannot make a scratch directory: {e}"))
            })?;
            let mut env = environment(launch, &path, &dir, secrets);
            env.insert("TMPDIR".into(), dir.display().to_string());
            let mut cmd = Command::new(&resolved);
            cmd.args(args).env_clear().envs(env).current_dir(&dir);
            setuid = Some(uid);
            (cmd, Some(dir))
        }
        Isolation::None => {
            let mut cmd = Command::new(&resolved);
            cmd.args(args).env_clear().envs(environment(
                launch,
                &path,
                &std::env::temp_dir(),
                secrets,
            ));
            (cmd, None)
        }
    };
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    Ok(Prepared {
        cmd,
        scratch,
        setuid,
    })
}

/// Sets limits in the child between fork and exec, in this order: the cgroup (joined
/// while still privileged), rlimits, the server's own user, then the death signal (a
/// change of user clears it). Only async-signal-safe calls.
pub(super) fn limit(
    memory_mb: u32,
    cgroup_procs: Option<&std::ffi::CString>,
    uid: Option<u32>,
) -> std::io::Result<()> {
    if let Some(procs) = cgroup_procs {
        cgroup::join(procs)?;
    }
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    unsafe {
        let set = |res, v: u64| {
            let r = libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            };
            libc::setrlimit(res, &r)
        };
        set(libc::RLIMIT_CORE, 0);
        set(libc::RLIMIT_NOFILE, 4096);
        // Heap and private writable mappings: what grows when a server leaks memory.
        set(libc::RLIMIT_DATA, u64::from(memory_mb) * 1024 * 1024);
        if let Some(uid) = uid {
            // No supplementary groups (root's would stay otherwise), then gid, then uid.
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(uid))?;
            check(libc::setuid(uid))?;
        }
        // No setuid binary gives the server back what it was just denied.
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        // Die with the DTMA instead of lingering with a dead pipe.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
    }
    Ok(())
}
