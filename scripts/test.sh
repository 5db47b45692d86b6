#!/usr/bin/env bash
# Runs Toolbelt's tests, bringing up what they need.
#
#   ./scripts/test.sh          every test (the README's test command, and CI):
#     - a throwaway PostgreSQL (installed from Debian packages when missing),
#     - the Docker engine (must answer: the Docker tests fail, never skip, without it),
#     - bubblewrap, the process runtime's sandbox (installed from Debian when missing),
#     - Chromium and chromedriver for the dashboard's browser tests (Debian's chromium and
#       chromium-driver, installed when missing; the browser tests fail, never skip,
#       without them),
#     - a Python venv with the official MCP SDK, reference servers, the openai and
#       anthropic SDKs (the scripted LLM's self-test) and schemathesis (the API property
#       tests) from PyPI,
#     - the fixture MCP server built statically for its FROM-scratch test image,
#     - formatting and lint checks,
#     - the cargo-fuzz targets (scripts/fuzz.sh: deterministic runs, stable Rust with
#       --sanitizer none; cargo-fuzz installed when missing),
#     - the whole workspace suite (SQLite and PostgreSQL halves, end-to-end tests),
#     then prints how many tests ran on each database backend and how long each step took.
#
#   ./scripts/test.sh --fast   the edit loop: unit, store, API, process-runtime and
#     end-to-end tests that need neither Docker nor a browser (the `docker` and `browser`
#     test groups of .config/nextest.toml are left out); no lints, no Docker, no static
#     fixture. Uses TOOLBELT_TEST_POSTGRES_URL when it is set and answers, else a
#     throwaway cluster as above.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=false
case "${1:-}" in
"") ;;
--fast) fast=true ;;
*) echo "usage: $0 [--fast]" >&2; exit 2 ;;
esac

work=$(mktemp -d /tmp/toolbelt-test.XXXXXX)
chmod 755 "$work"
cleanup() {
    scripts/postgres.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT

# Each step's wall time, printed at the end (CI logs show where the minutes go).
started=$(date +%s)
step_name="" step_start=$started timings=""
end_step() {
    [ -n "$step_name" ] || return 0
    timings+=$(printf '%6ss  %s' "$(($(date +%s) - step_start))" "$step_name")$'\n'
}
step() {
    end_step
    step_name=$*
    step_start=$(date +%s)
    printf '\n==> %s\n' "$*"
}

# group() in filter expressions needs cargo-nextest 0.9.133 or later.
step "cargo-nextest"
version=$(cargo nextest --version 2>/dev/null | head -n 1 | awk '{print $2}') \
    || { echo "cargo-nextest is missing: cargo install --locked cargo-nextest" >&2; exit 1; }
if [ "$(printf '%s\n0.9.133\n' "$version" | sort -V | head -n 1)" != 0.9.133 ]; then
    echo "cargo-nextest $version is too old: 0.9.133 or later is needed" >&2
    exit 1
fi
echo "cargo-nextest $version"

step "PostgreSQL"
if $fast && [ -n "${TOOLBELT_TEST_POSTGRES_URL:-}" ] \
    && command -v pg_isready >/dev/null && pg_isready -q -d "$TOOLBELT_TEST_POSTGRES_URL"; then
    echo "using the cluster at ${TOOLBELT_TEST_POSTGRES_URL}"
else
    TOOLBELT_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$work/pg")
    echo "throwaway cluster at ${TOOLBELT_TEST_POSTGRES_URL}"
fi
export TOOLBELT_TEST_POSTGRES_URL

if ! $fast; then
    step "Docker engine"
    docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})' \
        || { echo "no Docker engine answers; the Docker tests need one" >&2; exit 1; }
fi

step "bubblewrap (the process runtime's sandbox)"
# Debian packages the tests need; the process-runtime tests fail, never skip, without them.
apt_packages=(bubblewrap)
if ! command -v bwrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
fi
bwrap --version

if ! $fast; then
    step "Chromium and chromedriver (the browser tests)"
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
    fi
    TOOLBELT_TEST_CHROMIUM=/usr/bin/chromium TOOLBELT_TEST_CHROMEDRIVER=/usr/bin/chromedriver
    export TOOLBELT_TEST_CHROMIUM TOOLBELT_TEST_CHROMEDRIVER
    "$TOOLBELT_TEST_CHROMEDRIVER" --version
fi

step "Python MCP SDK, reference servers and LLM SDKs (PyPI)"
venv=target/venv
if ! "$venv/bin/python" -c 'import mcp, mcp_server_time, mcp_server_git, authlib, flask, openai, anthropic, schemathesis' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'mcp==2.3.0' mcp-server-time mcp-server-git \
        -r tests/python/oauth/requirements.txt -r tests/python/llm/requirements.txt \
        -r tests/python/api_schema/requirements.txt
fi
TOOLBELT_TEST_PYTHON=$(pwd)/$venv/bin/python
export TOOLBELT_TEST_PYTHON

if ! $fast; then
    step "static fixture MCP server (for its FROM-scratch image)"
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked -q -p fixture-mcp \
        --target x86_64-unknown-linux-gnu --profile static-fixture --target-dir target/static
    TOOLBELT_STATIC_FIXTURE=$(pwd)/target/static/x86_64-unknown-linux-gnu/static-fixture/fixture-mcp
    export TOOLBELT_STATIC_FIXTURE
fi

step "format"
cargo fmt --all -- --check
if ! $fast; then
    step "lints"
    cargo clippy --workspace --all-targets --locked -- -D warnings
    step "fuzz targets (fuzz/, about 3 min warm)"
    scripts/fuzz.sh
fi

step "build (binaries the end-to-end tests start: toolbelt, fixture-mcp)"
# nextest builds a package's binaries only for that package's own integration tests;
# the e2e tests run `toolbelt` and `fixture-mcp` from other packages, so build them here,
# with --tests so feature unification matches the nextest build and nothing rebuilds.
cargo build --workspace --bins --tests --locked

status=0
if $fast; then
    step "tests (fast: no Docker, no browser)"
    profile=fast
    cargo nextest run --workspace --locked --profile fast \
        -E 'not (group(docker) | group(browser))' || status=$?
else
    step "tests"
    profile=ci
    cargo nextest run --workspace --locked --profile ci || status=$?
fi

step "summary"
python3 scripts/test_summary.py "target/nextest/$profile/junit.xml" || status=1
end_step
printf '\n==> time per step\n%s%6ss  total\n' "$timings" "$(($(date +%s) - started))"
exit $status
