#!/bin/bash
# A hot standby: the first start copies the primary (pg_basebackup -R writes the standby's
# connection and standby.signal), every start then streams from it.
set -euo pipefail
export PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h postgres-primary -U cgt; do sleep 1; done
  pg_basebackup -h postgres-primary -U replicator -D "$PGDATA" -R -X stream -S standby_1 -P
  chmod 700 "$PGDATA"
fi
exec postgres -c hot_standby=on
