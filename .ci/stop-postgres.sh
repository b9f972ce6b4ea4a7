#!/usr/bin/env bash
# Stop the throwaway PostgreSQL server .ci/start-postgres.sh started (same RK_PGDATA) and remove its data.
# Usage: bash .ci/stop-postgres.sh
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGDATA=${RK_PGDATA:-/tmp/rewardkit-pg}
if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
rm -rf "$PGDATA"
