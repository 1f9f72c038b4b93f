#!/usr/bin/env bash
# Set everything up that the tests need (PostGIS, Chromium, the test extras) and run the whole suite.
# Extra arguments go to pytest, e.g. ./test.sh -k tiles
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh test
# In parallel: pytest-xdist workers sharing one throwaway cluster (tests/conftest.py). A -n given here
# wins (./test.sh -n0 runs serially, in one process); -p no:xdist runs without the plugin.
PARALLEL=(-n 4 --dist load)
for arg in "$@"; do case "$arg" in *no:xdist) PARALLEL=() ;; esac; done
exec .venv/bin/python -m pytest "${PARALLEL[@]}" "$@"
