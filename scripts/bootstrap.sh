#!/usr/bin/env bash
# Install what gridwatch needs on a Debian/Ubuntu machine, idempotently.
#   scripts/bootstrap.sh run    system PostgreSQL + PostGIS, the virtualenv, the project
#   scripts/bootstrap.sh test   the same, plus Chromium/chromedriver/CJK fonts and the test extras
# A second run installs nothing and takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-run}"
VENV="${GRIDWATCH_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'gridwatch bootstrap: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "no $PYTHON on PATH: install Python 3.11 (apt-get install python3 python3-venv)."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PYTHON" -V) is too old: gridwatch needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)."

# --- system packages -------------------------------------------------------------------------
pg_major() {
  local have
  have=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sed -E 's#.*/postgresql/([0-9]+)/bin#\1#' | sort -n | tail -1)
  if [ -n "$have" ]; then echo "$have"; return; fi
  if command -v apt-cache >/dev/null; then
    apt-cache depends postgresql 2>/dev/null | sed -nE 's/.*Depends: postgresql-([0-9]+)$/\1/p' | head -1
  fi
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if [ -z "${DATABASE_URL:-}" ] || [ "$MODE" = test ]; then
  PGV="$(pg_major)"; PGV="${PGV:-15}"
  NEED=(postgresql-"$PGV" postgresql-"$PGV"-postgis-3)
else
  NEED=()
fi
"$PYTHON" -c 'import ensurepip' 2>/dev/null || NEED+=(python3-venv)
if [ "$MODE" = test ]; then NEED+=(chromium chromium-driver fonts-noto-cjk redis-server pgbouncer); fi

MISSING=()
if command -v dpkg-query >/dev/null; then
  for p in "${NEED[@]}"; do installed "$p" || MISSING+=("$p"); done
fi
if [ "${#MISSING[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"
  else die "these system packages are missing and I am neither root nor allowed to sudo: ${MISSING[*]}
  Ask an administrator to run:  apt-get install -y --no-install-recommends ${MISSING[*]}
  (or install PostgreSQL+PostGIS with conda: conda env create -f environment.yml)"
  fi
  say "apt-get install ${MISSING[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
fi

# --- virtualenv and the project --------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
EXTRAS=""; [ "$MODE" = test ] && EXTRAS="[test]"
STAMP="$VENV/.gridwatch-$MODE"
WANT="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || ! "$VENV/bin/python" -c 'import gridwatch' 2>/dev/null; then
  say "pip install -e .$EXTRAS (first time: about a minute)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".$EXTRAS"
  echo "$WANT" > "$STAMP"
fi
say "ready ($("$VENV/bin/python" -V), $MODE)"
