#!/usr/bin/env bash
# Set everything up and run gridwatch on the Gansu demo at http://127.0.0.1:8050 (see README).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh run
exec .venv/bin/gridwatch up "$@"
