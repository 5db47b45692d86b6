#!/usr/bin/env bash
# Makes the upgrade fixture of a release: what a user of TAG has on disk after a while.
#
#   scripts/make-upgrade-fixture.sh TAG          (e.g. v0.1.0) → tests/fixtures/upgrade/TAG/
#
# Checks TAG out into a temporary worktree and builds its `toolbelt` (in
# target/upgrade-build, so a re-run is incremental); runs `toolbelt up --runtime process`
# and one remote `toolbelt dtma` (process runtime) of that release; through TAG's own CLI
# seals a shared secret, adds a catalog entry of this checkout's fixture-mcp (found on PATH,
# so the fixture holds no machine's paths), deploys a server on each toolbox, makes an agent
# with grants on both, changes the servers' tool definitions and approves the changes;
# checks the agent's calls with the official Python SDK; stops everything cleanly; and
# copies the data dirs (no logs) and a manifest.json into tests/fixtures/upgrade/TAG/.
# tests/e2e/upgrade.rs starts the current binary on a copy. See tests/fixtures/upgrade/README.md.
#
# Needs git, cargo, python3, and a Python with the MCP SDK (TOOLBELT_TEST_PYTHON, or the
# target/venv that scripts/test.sh makes).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tag=${1:?usage: $0 TAG}
out=tests/fixtures/upgrade/$tag
python=${TOOLBELT_TEST_PYTHON:-$root/target/venv/bin/python}
"$python" -c 'import mcp' 2>/dev/null \
    || { echo "$python has no MCP SDK: run ./scripts/test.sh --fast once, or set TOOLBELT_TEST_PYTHON" >&2; exit 1; }
commit=$(git rev-parse --verify "$tag^{commit}")

# Fixed secrets of the fixture (it is test data; the manifest records them).
admin=tbu_upgrade-fixture-admin-token-0
secret_value=upgrade-fixture-secret-0123456789

work=$(mktemp -d /tmp/toolbelt-upgrade.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    git worktree remove --force "$work/src" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n==> %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# jget PATH < JSON: one value by a dotted path (list indices are numbers).
jget() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v=v[int(k)] if isinstance(v,list) else v[k]
print(v if isinstance(v,str) else json.dumps(v))' "$1"; }
wait_until() { # wait_until WHAT SECONDS CMD...: polls CMD until it succeeds
    local what=$1 limit=$2; shift 2
    for _ in $(seq $((limit * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "timed out waiting for $what" >&2
    tail -n 30 "$work"/*.log >&2 || true
    return 1
}

step "$tag ($commit): its source and its toolbelt"
git worktree add --detach -q "$work/src" "$commit"
# Quick to build (no optimisation, no debug info): it only has to run for a minute.
(cd "$work/src" && cargo build --locked -q -p toolbelt --target-dir "$root/target/upgrade-build" \
    --config 'profile.dev.debug=0' --config 'profile.dev.package."*".opt-level=0')
old=$root/target/upgrade-build/debug/toolbelt

step "this checkout's fixture-mcp, on PATH"
cargo build --locked -q -p fixture-mcp
mkdir "$work/bin"
ln -s "$root/target/debug/fixture-mcp" "$work/bin/fixture-mcp"
export PATH="$work/bin:$PATH"
unset TOOLBELT_DATABASE_URL TOOLBELT_CONTROL_KEY_FILE TOOLBELT_VAULT_KEY TOOLBELT_VAULT_KEY_FILE \
    TOOLBELT_URL TOOLBELT_TOKEN

step "$tag: toolbelt up (process runtime) and a remote DTMA"
port=$(free_port)
url=http://127.0.0.1:$port
TOOLBELT_BOOTSTRAP_TOKEN=$admin TOOLBELT_HEARTBEAT_MS=500 TOOLBELT_LOG=info \
    "$old" up --runtime process --data-dir "$work/data/cp" --listen "127.0.0.1:$port" \
    >"$work/up.log" 2>&1 &
up_pid=$!
pids+=("$up_pid")
wait_until "toolbelt up" 30 curl -sf "$url/readyz"
tb() { TOOLBELT_URL=$url TOOLBELT_TOKEN=$admin TOOLBELT_CONFIG=$work/cli.json "$old" "$@"; }
tb toolbox create edge --shared
join=$(tb toolbox join-token edge -o json | jget token)
"$old" dtma --server "$url" --join-token "$join" --runtime process \
    --data-dir "$work/data/edge" --listen "127.0.0.1:$(free_port)" >"$work/dtma.log" 2>&1 &
dtma_pid=$!
pids+=("$dtma_pid")
active() { [ "$(tb toolbox get "$1" -o json | jget status)" = active ]; }
wait_until "local active" 30 active local
wait_until "edge active" 30 active edge

step "$tag: a secret, a catalog entry, a server on each toolbox, an agent with grants"
printf '%s\n' "$secret_value" | tb secret create api-key --shared --from-stdin
entry() { # entry COMMAND...: the catalog entry running COMMAND
    python3 -c 'import json,sys; print(json.dumps({"slug": "fixture", "transport": "stdio",
        "source": {"type": "package", "manager": "binary", "package": "fixture-mcp", "command": sys.argv[1:]},
        "secrets": [{"name": "API_KEY", "delivery": "env", "required": False}]}))' "$@" >"$work/entry.json"
}
entry fixture-mcp
tb catalog create fixture --file "$work/entry.json"
tb server create tools --catalog fixture --secret API_KEY=api-key
tb server create far --catalog fixture --toolbox edge
agent_token=$(tb agent create bot -o json | jget token.token)
tb grant create --agent bot --server tools
tb grant create --agent bot --server far --toolbox edge
running() { # running SERVER TOOLBOX GENERATION
    local v
    v=$(tb server get "$1" --toolbox "$2" -o json)
    [ "$(jget status <<<"$v")" = running ] && [ "$(jget health <<<"$v")" = ok ] \
        && [ "$(jget generation <<<"$v")" -ge "$3" ]
}
wait_until "tools running" 60 running tools local 1
wait_until "far running" 60 running far edge 1

# sdk COMMAND-JSON...: the agent's answers, one JSON line per command.
sdk() {
    { for c in "$@"; do printf '%s\n' "$c"; done; echo '{"op":"quit"}'; } \
        | "$python" "$root/tests/python/sdk_driver.py" "$url/mcp" "$agent_token" legacy | tail -n +2
}
check_calls() {
    local answers
    answers=$(sdk '{"op":"call","name":"tools__echo","args":{"text":"one"}}' \
        '{"op":"call","name":"far__echo","args":{"text":"two"}}' \
        '{"op":"call","name":"tools__env","args":{"name":"API_KEY"}}')
    [ "$(sed -n 1p <<<"$answers" | jget text)" = one ] \
        && [ "$(sed -n 2p <<<"$answers" | jget text)" = two ] \
        && [ "$(sed -n 3p <<<"$answers" | jget structured.len)" = "${#secret_value}" ]
}
wait_until "the agent's calls answered" 30 check_calls

step "$tag: the servers' tool definitions change; an admin approves the changes"
entry fixture-mcp --change-on-start describe
tb catalog update fixture --file "$work/entry.json"
# Stop, let the gateway see them stopped, start: a plain restart whose short pending state
# the gateway's registry does not observe is not re-discovered (v0.1.0 and later; reported).
tb server stop tools
tb server stop far --toolbox edge
stopped() { [ "$(tb server get "$1" --toolbox "$2" -o json | jget status)" = stopped ]; }
wait_until "tools stopped" 60 stopped tools local
wait_until "far stopped" 60 stopped far edge
sdk '{"op":"list_tools"}' >/dev/null
tb server start tools
tb server start far --toolbox edge
wait_until "tools started" 60 running tools local 1
wait_until "far started" 60 running far edge 1
# An agent's listing makes the gateway look at the restarted servers at once.
pending() {
    sdk '{"op":"list_tools"}' >/dev/null
    [ "$(tb tool changes -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ]
}
wait_until "two pending changes" 60 pending
tb tool approve tools echo
tb tool approve far echo --toolbox edge
wait_until "the agent's calls answered after the approvals" 30 check_calls
tools=$(sdk '{"op":"list_tools"}' | python3 -c 'import json,sys
r=json.load(sys.stdin)
echo=[t["description"] for t in r["tools"] if t["name"]=="tools__echo"]
assert echo==["Echoes text back, changed"], echo
print(json.dumps(sorted(t["name"] for t in r["tools"])))')
tb audit verify
audit_events=$(tb audit export | wc -l)

step "$tag: stop cleanly"
kill -TERM "$dtma_pid"
wait "$dtma_pid" || { echo "the DTMA did not stop cleanly" >&2; exit 1; }
kill -TERM "$up_pid"
wait "$up_pid" || { echo "toolbelt up did not stop cleanly" >&2; cat "$work/up.log" >&2; exit 1; }
pids=()

step "pack into $out"
if ls "$work"/data/cp/toolbelt.db-* >/dev/null 2>&1; then
    echo "the database was not checkpointed on stop: $(ls "$work"/data/cp)" >&2
    exit 1
fi
rm -rf "$out"
mkdir -p "$out"
cp -R "$work/data/cp" "$work/data/edge" "$out/"
python3 - "$out/manifest.json" <<EOF
import json, sys
json.dump({
    "release": "$tag",
    "commit": "$commit",
    "admin_token": "$admin",
    "agent": {"name": "bot", "token": "$agent_token"},
    "secret": {"name": "api-key", "length": ${#secret_value}},
    "data_dirs": {"up": "cp", "dtma": "edge"},
    "toolboxes": ["local", "edge"],
    "servers": [{"name": "tools", "toolbox": "local"}, {"name": "far", "toolbox": "edge"}],
    "approved_changes": [{"server": "tools", "tool": "echo"}, {"server": "far", "tool": "echo"}],
    "echo_description": "Echoes text back, changed",
    "agent_tools": $tools,
    "audit_events": $audit_events,
}, open(sys.argv[1], "w"), indent=2)
EOF
find "$out" -type f | sort | xargs ls -l
du -sh "$out"
