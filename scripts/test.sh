#!/usr/bin/env bash
# Runs every test of Toolbelt, bringing up what they need:
#   - a throwaway PostgreSQL (installed from Debian packages when missing),
#   - the Docker engine (must answer: the Docker tests fail, never skip, without it),
#   - a Python venv with the official MCP SDK and reference servers from PyPI,
#   - the fixture MCP server built statically for its FROM-scratch test image,
#   - formatting and lint checks,
#   - the whole workspace suite (SQLite and PostgreSQL halves, end-to-end tests),
# then prints how many tests ran on each database backend.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/toolbelt-test.XXXXXX)
chmod 755 "$work"
cleanup() {
    scripts/postgres.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }

step "PostgreSQL"
TOOLBELT_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$work/pg")
export TOOLBELT_TEST_POSTGRES_URL
echo "throwaway cluster at ${TOOLBELT_TEST_POSTGRES_URL}"

step "Docker engine"
docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})' \
    || { echo "no Docker engine answers; the Docker tests need one" >&2; exit 1; }

step "Python MCP SDK and reference servers (PyPI)"
venv=target/venv
if ! "$venv/bin/python" -c 'import mcp, mcp_server_time, mcp_server_git, authlib, flask' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'mcp==2.3.0' mcp-server-time mcp-server-git \
        -r tests/python/oauth/requirements.txt
fi
TOOLBELT_TEST_PYTHON=$(pwd)/$venv/bin/python
export TOOLBELT_TEST_PYTHON

step "static fixture MCP server (for its FROM-scratch image)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked -q -p fixture-mcp \
    --target x86_64-unknown-linux-gnu --profile static-fixture --target-dir target/static
TOOLBELT_STATIC_FIXTURE=$(pwd)/target/static/x86_64-unknown-linux-gnu/static-fixture/fixture-mcp
export TOOLBELT_STATIC_FIXTURE

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (binaries the end-to-end tests start: toolbelt, fixture-mcp)"
# nextest builds a package's binaries only for that package's own integration tests;
# the e2e tests run `toolbelt` and `fixture-mcp` from other packages, so build them here,
# with --tests so feature unification matches the nextest build and nothing rebuilds.
cargo build --workspace --bins --tests --locked

step "tests"
status=0
cargo nextest run --workspace --locked --profile ci || status=$?

step "summary"
python3 scripts/test_summary.py target/nextest/ci/junit.xml || status=1
exit $status
