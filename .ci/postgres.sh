#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests of `nnscratch tune --storage postgresql+psycopg://`
# (tests/test_tune.py reads NNSCRATCH_TEST_POSTGRES_URL; without it those tests skip and say so).
#
#   export NNSCRATCH_TEST_POSTGRES_URL="$(.ci/postgres.sh start)"   # installs, starts, prints URL
#   .ci/postgres.sh stop                                             # stops it, deletes its files
#
# Debian's `postgresql` package; the cluster lives in a temporary folder, listens on 127.0.0.1
# only, on a non-default port, and runs as the `postgres` user (the server refuses root). Trust
# authentication is fine for a server that only this machine can reach and that lives minutes.
set -euo pipefail

PORT="${NNSCRATCH_PG_PORT:-54329}"
DIR="${NNSCRATCH_PG_DIR:-/tmp/nnscratch-ci-postgres}"
DB=nnscratch_test

as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }

bin_dir() {
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$found" ]; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
        else
            echo "postgres.sh: install Debian's postgresql package first (as root)" >&2
            exit 1
        fi
        found="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    echo "$found"
}

case "${1:-}" in
start)
    # On a failure, show what initdb and the server said (stdout carries only the URL).
    trap 'echo "postgres.sh: start failed; its logs:" >&2; cat "$DIR"/*.log >&2 || true' ERR
    BIN="$(bin_dir)"
    as_postgres "$BIN/pg_ctl -D '$DIR/data' stop -m immediate" >/dev/null 2>&1 || true
    rm -rf "$DIR"
    mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
    as_postgres "$BIN/initdb -D '$DIR/data' -U postgres --auth=trust -E UTF8" > "$DIR/initdb.log"
    as_postgres "$BIN/pg_ctl -D '$DIR/data' -l '$DIR/server.log' -w -t 60 \
        -o \"-c listen_addresses=127.0.0.1 -p $PORT -k '$DIR'\" start" > /dev/null
    as_postgres "$BIN/createdb -h 127.0.0.1 -p $PORT -U postgres $DB"
    echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
    ;;
stop)
    BIN="$(bin_dir)"
    as_postgres "$BIN/pg_ctl -D '$DIR/data' stop -m fast" > /dev/null 2>&1 || true
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
