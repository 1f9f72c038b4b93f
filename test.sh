#!/usr/bin/env bash
# Set everything up that the tests need (PostGIS, Chromium, the test extras) and run the whole suite.
# Extra arguments go to pytest, e.g. ./test.sh -k tiles
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh test
exec .venv/bin/python -m pytest "$@"
