#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite.
#   scripts/postgres.sh start DIR   → installs PostgreSQL from Debian if missing, starts a
#                                     cluster in DIR on a free port, prints its admin URL
#   scripts/postgres.sh stop DIR    → stops it and removes DIR
set -euo pipefail

cmd=${1:?start|stop}; dir=${2:?directory}

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

case "$cmd" in
start)
    if [ -z "$(find_bin)" ] || [ ! -x "$(find_bin)/initdb" ]; then
        echo "installing PostgreSQL from Debian packages..." >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    bin=$(find_bin)
    mkdir -p "$dir"
    chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
        -l "$dir/log" -w start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    bin=$(find_bin)
    [ -d "$dir/data" ] && runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
