//! The fixture MCP server (`fixture-mcp`, see `fixture-mcp/`): its normal build,
//! its static build, and the `FROM scratch` Docker image around the static build.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The image [`fixture_image`] builds.
pub const FIXTURE_IMAGE: &str = "toolbelt-fixture:test";

/// The image label holding the sha256 of the binary inside, to tell a stale image.
const SHA_LABEL: &str = "toolbelt.fixture.sha256";

const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// It asks for root and sets no limits on purpose: the DTMA must impose its own.
const DOCKERFILE: &str = "FROM scratch\n\
COPY fixture-mcp /fixture-mcp\n\
USER 0:0\n\
ENTRYPOINT [\"/fixture-mcp\"]\n";

/// The `fixture-mcp` of this build (dynamically linked, next to the test executable's
/// `deps/` dir), or `TOOLBELT_FIXTURE_BIN` when set.
pub fn fixture_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TOOLBELT_FIXTURE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("fixture-mcp");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p fixture-mcp)",
        bin.display()
    );
    bin
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Holds an exclusive lock on `path` (created if needed) until dropped, so concurrent
/// tests, in this process or others, build things once.
fn lock(path: &Path) -> File {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create the lock's directory");
    }
    let file = File::create(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    file
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time among the fixture's sources and its package manifest.
fn newest_source(root: &Path) -> Option<SystemTime> {
    let pkg = root.join("crates/testkit/fixture-mcp");
    let mut newest = modified(&pkg.join("Cargo.toml"));
    let dir = pkg.join("src");
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        newest = newest.max(modified(&entry.path()));
    }
    newest
}

/// The statically linked release build of `fixture-mcp` (for the `FROM scratch` image),
/// built first when missing or older than its sources; `TOOLBELT_STATIC_FIXTURE` names
/// a ready one instead.
pub fn static_fixture_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TOOLBELT_STATIC_FIXTURE") {
        return PathBuf::from(p);
    }
    let root = workspace_root();
    let target_dir = root.join("target/static");
    let bin = target_dir
        .join(STATIC_TARGET)
        .join("static-fixture/fixture-mcp");
    let _lock = lock(&target_dir.join(".fixture-build.lock"));
    if let Some(built) = modified(&bin)
        && newest_source(&root).is_none_or(|src| src <= built)
    {
        return bin;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--target", STATIC_TARGET])
        .args([
            "--profile",
            "static-fixture",
            "-p",
            "fixture-mcp",
            "--target-dir",
        ])
        .arg(&target_dir)
        // CARGO_ENCODED_RUSTFLAGS would win over RUSTFLAGS; the static build needs ours.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .status()
        .unwrap_or_else(|e| panic!("run {cargo}: {e}"));
    assert!(
        status.success(),
        "the static fixture-mcp build failed ({status})"
    );
    assert!(bin.exists(), "{} is missing after the build", bin.display());
    bin
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run docker {}: {e} (is Docker installed?)", args.join(" ")))
}

/// Makes sure the Docker image [`FIXTURE_IMAGE`] holds the current static build and
/// returns its name. Needs a Docker engine; panics without one.
pub async fn fixture_image() -> String {
    tokio::task::spawn_blocking(ensure_image)
        .await
        .expect("the image build task panicked")
}

fn ensure_image() -> String {
    let bin = static_fixture_bin();
    let sha = sha256_hex(&bin);
    let _lock = lock(&workspace_root().join("target/static/.fixture-image.lock"));
    let format = format!("{{{{index .Config.Labels \"{SHA_LABEL}\"}}}}");
    let inspect = docker(&["image", "inspect", "--format", &format, FIXTURE_IMAGE]);
    if inspect.status.success() && String::from_utf8_lossy(&inspect.stdout).trim() == sha {
        return FIXTURE_IMAGE.to_owned();
    }
    let dir = tempfile::tempdir().expect("a temp dir for the image build");
    std::fs::copy(&bin, dir.path().join("fixture-mcp")).expect("copy fixture-mcp");
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).expect("write the Dockerfile");
    let label = format!("{SHA_LABEL}={sha}");
    let context = dir.path().to_string_lossy();
    // The classic builder: this engine (20.10) and CLI have no buildx, and FROM scratch
    // needs no pull.
    let build = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args([
            "build",
            "--quiet",
            "--label",
            &label,
            "-t",
            FIXTURE_IMAGE,
            &context,
        ])
        .output()
        .unwrap_or_else(|e| panic!("run docker build: {e} (is Docker installed?)"));
    assert!(
        build.status.success(),
        "docker build of {FIXTURE_IMAGE} failed ({}): {}",
        build.status,
        String::from_utf8_lossy(&build.stderr)
    );
    FIXTURE_IMAGE.to_owned()
}
