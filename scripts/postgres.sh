#!/usr/bin/env bash
# A private, throwaway PostgreSQL server for the tests and benchmarks: Debian's package, its own
# data folder, port and socket folder, fsync off. Prints the DATABASE_URL to use.
# Usage: bash scripts/postgres.sh start DIR [PORT] | bash scripts/postgres.sh stop DIR
set -euo pipefail
action=${1:?start or stop}
dir=${2:?a folder for the server}
port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "PostgreSQL's server is not installed (apt-get install postgresql)" >&2
  exit 1
fi
# initdb and the server refuse to run as root: they run as the package's postgres user.
as_owner=()
if [ "$(id -u)" = 0 ]; then
  as_owner=(runuser -u postgres --)
fi
case "$action" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${as_owner[@]}" "$bin/initdb" -A trust --no-sync -U postgres -E UTF8 --locale=C.UTF-8 \
      -D "$dir/data" >"$dir/initdb.log"
  fi
  "${as_owner[@]}" "$bin/pg_ctl" -w -D "$dir/data" -l "$dir/server.log" start \
    -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -k $dir -p $port -c listen_addresses=''" >/dev/null
  echo "postgresql://postgres@/postgres?host=$dir&port=$port"
  ;;
stop)
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  ;;
*)
  echo "start or stop" >&2
  exit 2
  ;;
esac
