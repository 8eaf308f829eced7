#!/usr/bin/env bash
# Install the bot into .venv (created if missing) and start it with the settings in .env.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/loyalty-bot "$@"
