//! A memory cgroup per process server, so its limit is on resident memory (what a leak,
//! a shared mapping or a tmpfs file really costs), not only on `RLIMIT_DATA`.
//!
//! Found from this DTMA's own cgroup: on cgroup v2 when its cgroup delegates the
//! `memory` controller to children (`cgroup.subtree_control`), on a v1 `memory`
//! hierarchy when its directory there is writable (root). Elsewhere there is none and
//! the runtime says so; `RLIMIT_DATA` stays in force either way.

use std::ffi::CString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where this DTMA may make memory cgroups.
#[derive(Debug, Clone)]
pub struct Cgroups {
    version: Version,
    parent: PathBuf,
}

/// One server's cgroup: a directory with its limit, joined by the child before exec.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    version: Version,
}

/// The mount point of a hierarchy in `/proc/self/mountinfo`: cgroup2, or the v1 one
/// carrying the `memory` option.
fn mount_of(mountinfo: &str, version: Version) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        let fstype = r.next()?;
        let _source = r.next();
        let opts = r.next().unwrap_or("");
        let ok = match version {
            Version::V2 => fstype == "cgroup2",
            Version::V1 => fstype == "cgroup" && opts.split(',').any(|o| o == "memory"),
        };
        ok.then(|| left.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// This process's path in a hierarchy from `/proc/self/cgroup`.
fn own_path(cgroup: &str, version: Version) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let (_id, ctrls, path) = (p.next()?, p.next()?, p.next()?);
        let ok = match version {
            Version::V2 => ctrls.is_empty(),
            Version::V1 => ctrls.split(',').any(|c| c == "memory"),
        };
        ok.then(|| path.to_string())
    })
}

impl Cgroups {
    /// Probes what this host allows (by making and removing a probe directory).
    pub fn detect() -> Option<Cgroups> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        for version in [Version::V2, Version::V1] {
            let (Some(mount), Some(own)) =
                (mount_of(&mountinfo, version), own_path(&cgroup, version))
            else {
                continue;
            };
            let parent = mount.join(own.trim_start_matches('/'));
            if version == Version::V2 {
                let ctl = std::fs::read_to_string(parent.join("cgroup.subtree_control"))
                    .unwrap_or_default();
                if !ctl.split_whitespace().any(|c| c == "memory") {
                    continue;
                }
            }
            let probe = parent.join(format!("toolbelt-probe-{}", std::process::id()));
            if std::fs::create_dir(&probe).is_ok() {
                let _ = std::fs::remove_dir(&probe);
                return Some(Cgroups { version, parent });
            }
        }
        None
    }

    pub fn describe(&self) -> String {
        let v = match self.version {
            Version::V1 => "v1",
            Version::V2 => "v2",
        };
        format!("memory cgroup {v} under {}", self.parent.display())
    }

    /// A fresh cgroup named `name` limited to `bytes` of memory and no swap.
    pub fn create(&self, name: &str, bytes: u64) -> std::io::Result<Cgroup> {
        let dir = self.parent.join(name);
        let cg = Cgroup {
            dir,
            version: self.version,
        };
        cg.remove();
        std::fs::create_dir(&cg.dir)?;
        let write = |file: &str, v: &str| std::fs::write(cg.dir.join(file), v);
        let limited = match self.version {
            Version::V2 => write("memory.max", &bytes.to_string()).and_then(|()| {
                // Absent without swap accounting: then there is no swap to limit.
                match write("memory.swap.max", "0") {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }),
            Version::V1 => write("memory.limit_in_bytes", &bytes.to_string()).and_then(|()| {
                match write("memory.memsw.limit_in_bytes", &bytes.to_string()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }),
        };
        if let Err(e) = limited {
            cg.remove();
            return Err(e);
        }
        Ok(cg)
    }
}

impl Cgroup {
    /// `cgroup.procs`, for the child to write itself into between fork and exec.
    pub fn procs(&self) -> CString {
        CString::new(self.dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
            .expect("a cgroup path has no NUL")
    }

    pub fn limit_bytes(&self) -> Option<u64> {
        let file = match self.version {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn usage_bytes(&self) -> Option<u64> {
        let file = match self.version {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Removes the directory once its processes are gone (best effort).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir(&self.dir);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Between fork and exec: moves the calling process into the cgroup (only
/// async-signal-safe calls: open, write, close).
pub fn join(procs: &CString) -> std::io::Result<()> {
    // SAFETY: a valid NUL-terminated path; the buffer outlives the call.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        if n != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    #[test]
    fn hierarchies_are_found_from_mountinfo_and_own_cgroup() {
        assert_eq!(
            mount_of(MOUNTINFO, Version::V1),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            mount_of(MOUNTINFO, Version::V2),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let cg = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n0::/user.slice\n";
        assert_eq!(
            own_path(cg, Version::V1).as_deref(),
            Some("/process_api/abc")
        );
        assert_eq!(own_path(cg, Version::V2).as_deref(), Some("/user.slice"));
        assert_eq!(own_path("0::/\n", Version::V1), None);
    }
}
