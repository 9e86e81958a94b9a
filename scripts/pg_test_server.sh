#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the test suite and print its URL.
#   usage: eval "$(bash scripts/pg_test_server.sh)"   # sets LRSEARCH_TEST_POSTGRES
# Needs Debian's postgresql package (installed by .ci/run). Data lives in $PGROOT (default /tmp/lrsearch-pg);
# trust authentication on loopback only. Stop it with: pg_ctl -D "$PGROOT/data" stop
set -euo pipefail
PGROOT=${PGROOT:-/tmp/lrsearch-pg}
PORT=${PGPORT:-55432}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$BIN" ] || { echo "postgresql is not installed (apt-get install postgresql)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$PGROOT"
[ "$(id -u)" = 0 ] && chown postgres "$PGROOT"
if [ ! -f "$PGROOT/data/PG_VERSION" ]; then
  as_pg "$BIN/initdb" -D "$PGROOT/data" -A trust -U postgres >"$PGROOT/initdb.log" 2>&1
fi
if ! as_pg "$BIN/pg_ctl" -D "$PGROOT/data" status >/dev/null 2>&1; then
  as_pg "$BIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w \
    -o "-p $PORT -k $PGROOT -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
fi
as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "select 1 from pg_database where datname='lrsearch'" \
  | grep -q 1 || as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres lrsearch
echo "export LRSEARCH_TEST_POSTGRES=postgresql+psycopg://postgres@127.0.0.1:$PORT/lrsearch"
