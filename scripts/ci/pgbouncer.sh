#!/usr/bin/env bash
# Start or stop a PgBouncer in transaction pooling mode (how Supabase's pooler on :6543 behaves)
# in front of the local PostgreSQL, for CI and the load benchmark. Everything lives in one state
# directory; nothing outside it is touched.
#
#   scripts/ci/pgbouncer.sh start   # prints the state directory; listens on 127.0.0.1:$PGBOUNCER_PORT
#   scripts/ci/pgbouncer.sh stop
#
# Environment: PGBOUNCER_PORT (6543), PGBOUNCER_DIR (/tmp/driftwarden-pgbouncer-$PGBOUNCER_PORT),
# PGBOUNCER_POOL_SIZE (20 server connections per database and user), PG_HOST (127.0.0.1), PG_PORT (5432).
set -euo pipefail

port="${PGBOUNCER_PORT:-6543}"
dir="${PGBOUNCER_DIR:-/tmp/driftwarden-pgbouncer-${port}}"
pool_size="${PGBOUNCER_POOL_SIZE:-20}"
pg_host="${PG_HOST:-127.0.0.1}"
pg_port="${PG_PORT:-5432}"

die() { echo "pgbouncer.sh: $*" >&2; exit 1; }

binary() {
  command -v pgbouncer 2>/dev/null || { test -x /usr/sbin/pgbouncer && echo /usr/sbin/pgbouncer; } || return 1
}

install_if_missing() {
  binary >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "pgbouncer is not installed (apt-get install -y pgbouncer)"
  echo "pgbouncer.sh: installing pgbouncer" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
}

write_config() {
  mkdir -p "$dir"
  # trust: no password check, but the user must be listed in the auth file.
  printf '"postgres" ""\n' >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=${pg_host} port=${pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${dir}/userlist.txt
pool_mode = transaction
server_reset_query =
default_pool_size = ${pool_size}
max_client_conn = 400
ignore_startup_parameters = extra_float_digits,options
admin_users = postgres
logfile = ${dir}/pgbouncer.log
pidfile = ${dir}/pgbouncer.pid
INI
}

start() {
  install_if_missing
  if [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
    die "already running (pid $(cat "$dir/pgbouncer.pid")); stop it first"
  fi
  write_config
  local run_as=()
  if [ "$(id -u)" = 0 ]; then  # pgbouncer refuses to run as root: drop to the postgres user
    chown -R postgres: "$dir"
    run_as=(-u postgres)
  fi
  "$(binary)" -d "${run_as[@]}" "$dir/pgbouncer.ini"
  for _ in $(seq 1 50); do
    pg_isready -h 127.0.0.1 -p "$port" -q && { echo "$dir"; return 0; }
    sleep 0.2
  done
  cat "$dir/pgbouncer.log" >&2 || true
  die "did not start on 127.0.0.1:${port}"
}

stop() {
  [ -f "$dir/pgbouncer.pid" ] || return 0
  local pid
  pid="$(cat "$dir/pgbouncer.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/pgbouncer.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 start|stop" ;;
esac
