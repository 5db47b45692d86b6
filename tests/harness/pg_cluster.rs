//! A private PostgreSQL cluster for one test: `initdb` in a temporary directory, on a free
//! port, which the test may stop and start again (a restart under load). The shared test
//! cluster (`TOOLBELT_TEST_POSTGRES_URL`) is never restarted: other tests use it.
//! Needs Debian's PostgreSQL binaries (`scripts/test.sh` installs them) and root (the
//! cluster runs as the `postgres` user).

use std::path::PathBuf;
use std::process::Command;
use toolbelt_testkit::proc::free_port;

pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// A new cluster, started.
    pub fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("PostgreSQL's binaries in /usr/lib/postgresql/*/bin (scripts/test.sh installs them)");
        let dir = tempfile::tempdir().unwrap();
        // The cluster runs as `postgres`, which must reach into the directory.
        chmod(dir.path(), 0o755);
        // The cluster's own directory (its data, socket and log): `postgres` writes there.
        let home = dir.path().join("pg");
        std::fs::create_dir(&home).unwrap();
        chown_postgres(&home);
        let data = home.join("data");
        let c = Cluster {
            bin,
            data,
            port: free_port(),
            _dir: dir,
        };
        c.pg(&["initdb", "-D"], &["-A", "trust", "-U", "postgres"]);
        c.start_again();
        c
    }

    /// The superuser's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m fast`: every session is ended, then the server exits.
    pub fn stop(&self) {
        self.pg(&["pg_ctl", "-D"], &["-m", "fast", "-w", "stop"]);
    }

    /// Starts the (stopped) cluster on its port, waiting until it accepts connections.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.parent().unwrap().display()
        );
        let log = self.data.parent().unwrap().join("log");
        let log = log.display().to_string();
        self.pg(&["pg_ctl", "-D"], &["-o", &opts, "-l", &log, "-w", "start"]);
    }

    /// Runs `bin/<tool> <pre…> DATA <post…>` as `postgres`.
    fn pg(&self, pre: &[&str], post: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(pre[0]))
            .args(&pre[1..])
            .arg(&self.data)
            .args(post)
            .output()
            .expect("runuser runs");
        assert!(
            out.status.success(),
            "{} {post:?}: {}{}",
            pre[0],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn chmod(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_postgres(p: &std::path::Path) {
    let ok = Command::new("chown")
        .arg("postgres")
        .arg(p)
        .status()
        .unwrap();
    assert!(ok.success(), "chown postgres (the test runs as root)");
}
