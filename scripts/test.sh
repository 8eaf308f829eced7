#!/usr/bin/env bash
# Install the bot with its development tools into .venv when needed, start a throwaway
# PostgreSQL server for the tests that run on both engines (unless TEST_DATABASE_URL names one),
# then run the whole test suite and the linters. Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
if [ -z "${TEST_DATABASE_URL:-}" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  server=$(mktemp -d /tmp/loyalty-pg.XXXXXX)
  trap 'bash scripts/postgres.sh stop "$server"; rm -rf "$server"' EXIT
  TEST_DATABASE_URL=$(bash scripts/postgres.sh start "$server" "$((20000 + RANDOM % 20000))")
  export TEST_DATABASE_URL
fi
.venv/bin/python -m pytest "$@"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
