#!/usr/bin/env bash
# Install the bot into .venv when needed (see scripts/install.sh) and start it with the settings
# in .env; arguments go to loyalty-bot (e.g. `bash scripts/run.sh check-config`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/loyalty-bot "$@"
