#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the store tests, and print the URL to use.
# Usage: eval "$(bash .ci/start-postgres.sh)"   (exports RK_TEST_POSTGRES_URL; RK_PG_STARTED=1 when this call
# started the server, so the caller stops it after with .ci/stop-postgres.sh; a server already running is left)
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGDATA=${RK_PGDATA:-/tmp/rewardkit-pg}
PORT=${RK_PGPORT:-55432}
if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  rm -rf "$PGDATA"
  install -d -o postgres -g postgres "$PGDATA"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
    -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  echo "export RK_PG_STARTED=1"
fi
echo "export RK_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
