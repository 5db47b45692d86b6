#!/usr/bin/env bash
# Runs the benchmarks in release mode and prints their tables:
#   ./scripts/bench.sh [control|dashboard|dtma|gateway|gateway-instructions|gateway-telemetry|oauth|search|chat|all]
# Needs what the tests need: PostgreSQL (TOOLBELT_TEST_POSTGRES_URL, else a throwaway
# cluster started here) and a Docker engine (`gateway` runs its DTMA-HTTP row only with
# one), and for `oauth` the Python venv with Authlib that scripts/test.sh makes
# (target/venv; `chat` runs the scripted LLM with it). `gateway` puts another MCP gateway
# in the same run with PEER_GATEWAY_URL (its MCP endpoint), PEER_TOOL (its name for the
# upstream's `echo`), PEER_TOKEN and PEER_PID (for its CPU); BENCH_UPSTREAM_PORT fixes the
# upstream's port (http://127.0.0.1:PORT/mcp) so the peer can be pointed at it beforehand.
# `gateway-instructions [CALLS]` counts instructions per call under callgrind (valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

work=$(mktemp -d /tmp/toolbelt-bench.XXXXXX)
chmod 755 "$work"
trap 'scripts/postgres.sh stop "$work/pg" || true; rm -rf "$work"' EXIT

cargo build --release --locked -q -p toolbelt -p toolbelt-bench
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked -q -p fixture-mcp \
    --target x86_64-unknown-linux-gnu --profile static-fixture --target-dir target/static
export TOOLBELT_BIN=$PWD/target/release/toolbelt
export TOOLBELT_STATIC_FIXTURE=$PWD/target/static/x86_64-unknown-linux-gnu/static-fixture/fixture-mcp
export TOOLBELT_TEST_PYTHON=${TOOLBELT_TEST_PYTHON:-$PWD/target/venv/bin/python}
if [ "$what" = oauth ] || [ "$what" = all ]; then
    "$TOOLBELT_TEST_PYTHON" -c 'import authlib, flask' \
        || { echo "run ./scripts/test.sh once first: it makes the Python venv" >&2; exit 1; }
fi
if [ "$what" = control ] || [ "$what" = dtma ] || [ "$what" = all ] \
    || { [ "$what" = gateway ] && [ -z "${TOOLBELT_TEST_POSTGRES_URL:-}" ]; }; then
    TOOLBELT_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$work/pg")
    export TOOLBELT_TEST_POSTGRES_URL
fi
if [ "$what" = gateway-instructions ] && ! command -v valgrind >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
fi

echo "# Toolbelt benchmarks — $(date -u +%FT%TZ), $(nproc) cores, $(uname -r)"
echo
case "$what" in
control) target/release/toolbelt-bench control ;;
dashboard) target/release/toolbelt-bench dashboard ;;
dtma) target/release/toolbelt-bench dtma ;;
gateway) target/release/toolbelt-bench gateway ;;
gateway-instructions) target/release/toolbelt-bench gateway-instructions --calls "${2:-500}" ;;
gateway-telemetry) target/release/toolbelt-bench gateway-telemetry ;;
oauth) target/release/toolbelt-bench oauth ;;
search) target/release/toolbelt-bench search ;;
chat) target/release/toolbelt-bench chat ;;
all)
    target/release/toolbelt-bench control; echo
    target/release/toolbelt-bench dashboard; echo
    target/release/toolbelt-bench dtma; echo
    target/release/toolbelt-bench gateway; echo
    target/release/toolbelt-bench gateway-telemetry; echo
    target/release/toolbelt-bench oauth; echo
    target/release/toolbelt-bench search; echo
    target/release/toolbelt-bench chat
    ;;
*) echo "usage: $0 [control|dashboard|dtma|gateway|gateway-instructions [CALLS]|gateway-telemetry|oauth|search|chat|all]" >&2; exit 2 ;;
esac
