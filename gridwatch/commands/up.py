"""Set up and run the Gansu demo: database, migrations, hierarchy, demo history, simulator, dashboard.

Every step is idempotent: a second run reuses the running database, applies no migration twice,
skips the loads already done, and is quick.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from gridwatch import config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-simulator", action="store_true", help="do not start the live simulator")
    p.add_argument("--port", type=int, default=int(config.get("GRIDWATCH_PORT")), help="dashboard port (default %(default)s)")


def _step(argv: list[str]) -> None:
    from gridwatch.cli import main

    print(f"==> gridwatch {' '.join(argv)}", flush=True)
    code = main(argv)
    if code:
        raise SystemExit(code)


def run(args: argparse.Namespace) -> int:
    from gridwatch.cli import COMMANDS

    known = {name for name, _, _ in COMMANDS}
    if not os.environ.get("DATABASE_URL"):
        _step(["db", "start"])
    _step(["migrate"])
    _step(["etl", "gansu"])
    if "demo" in _etl_words():
        _step(["etl", "demo"])
    if "centres" in _etl_words():
        _step(["etl", "centres", "--demo"])
    if "stats" in _etl_words():
        _step(["etl", "stats"])
    if "alerts" in known:
        _step(["alerts", "run"])
    sim = None
    if "simulate" in known and not args.no_simulator:
        url = f"http://127.0.0.1:{args.port}"
        print(f"==> gridwatch simulate --api {url} (background)", flush=True)
        sim = subprocess.Popen([sys.executable, "-m", "gridwatch.cli", "simulate", "--api", url, "--wait"])
    try:
        _step(["serve", "--port", str(args.port)])
    finally:
        if sim is not None:
            sim.terminate()
    return 0


def _etl_words() -> set[str]:
    from gridwatch.commands.etl import ETL_COMMANDS

    return {name for name, _, _ in ETL_COMMANDS}
