#!/usr/bin/env bash
# Install the bot (and, with "dev", its development tools) into .venv at the versions in
# constraints.txt. It does the work only when pyproject.toml or constraints.txt changed since the
# last install, so a restart is quick and works offline. Usage: bash scripts/install.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "dev" ] && extras="[dev]"
stamp=".venv/.installed"
sources=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
wanted="$extras $sources"
# A development install also serves a plain one.
if [ -x .venv/bin/loyalty-bot ] && [ -f "$stamp" ] \
  && { grep -qxF "$wanted" "$stamp" || { [ -z "$extras" ] && grep -qxF "[dev] $sources" "$stamp"; }; }; then
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "loyalty-bot needs Python 3.11 or newer as python3; found: $(python3 --version 2>&1)" >&2
    exit 1
  fi
  if ! python3 -m venv .venv; then
    rm -rf .venv  # half made, without pip: the next attempt starts again
    echo "python3 cannot make a virtual environment; on Debian or Ubuntu:" \
      "sudo apt install python3-venv" >&2
    exit 1
  fi
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".$extras"
echo "$wanted" >> "$stamp"
