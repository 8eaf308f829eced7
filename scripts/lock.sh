#!/usr/bin/env bash
# Refresh constraints.txt, the exact versions every install uses (scripts/run.sh, scripts/test.sh,
# CI): a fresh environment gets the newest versions pyproject.toml allows, and they are written
# down. Run it after changing dependencies, run the tests, and commit both files together.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install --quiet --upgrade pip
"$scratch/venv/bin/python" -m pip install --quiet ".[dev]"
{
  echo "# Exact versions for every install; refresh with: bash scripts/lock.sh"
  "$scratch/venv/bin/python" -m pip freeze --exclude loyalty-bot
} > constraints.txt
echo "constraints.txt refreshed: $(grep -vc '^#' constraints.txt) packages"
