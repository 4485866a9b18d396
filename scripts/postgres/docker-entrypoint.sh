#!/bin/sh
# The official postgres image's interface on Debian's own packages: POSTGRES_PASSWORD
# (required on first start), POSTGRES_USER (default postgres), POSTGRES_DB (default the
# user's name) and PGDATA; `postgres [options]` runs the server, anything else runs as is.
set -eu
[ "${1:-postgres}" = postgres ] || exec "$@"
[ $# -eq 0 ] || shift
bin=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?is required: the password of $user}"
  secret=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$secret"
  chown postgres "$secret"
  as_postgres "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$secret" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$secret"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\";" | as_postgres "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "database $db of $user initialised in $PGDATA"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
  "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
