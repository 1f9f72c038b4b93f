"""Set up and run the Gansu demo: database, migrations, hierarchy, demo history, simulator, dashboard.

Every step is idempotent: a second run reuses the running database, applies no migration twice,
skips the loads already done, and is quick.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from gridwatch import config
from gridwatch.config import data_dir
from gridwatch.cli import main


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-simulator", action="store_true", help="do not start the live simulator")
    p.add_argument("--port", type=int, default=int(config.get("GRIDWATCH_PORT")), help="dashboard port (default %(default)s)")


def _step(argv: list[str]) -> None:
    print(f"==> gridwatch {' '.join(argv)}", flush=True)
    code = main(argv)
    if code:
        raise SystemExit(code)


# The demo, in order; every step is idempotent (ledgers, upserts), so a re-run is quick.
STEPS: tuple[tuple[str, ...], ...] = (
    ("migrate",),
    ("etl", "gansu"),
    ("etl", "demo"),
    ("etl", "centres", "--demo"),
    ("etl", "stats"),
    ("alerts", "run"),
    ("users", "demo"),
)


def _simulator_tokens() -> dict[str, str]:
    """The demo tokens the simulator needs (written by `gridwatch users demo`), as its environment."""
    store = data_dir() / "demo-accounts.json"
    saved = json.loads(store.read_text(encoding="utf-8")) if store.exists() else {}
    out = {}
    if saved.get("simulator", {}).get("token"):
        out["GRIDWATCH_SIM_TOKEN"] = saved["simulator"]["token"]
    if saved.get("open311", {}).get("token"):
        out["GRIDWATCH_SIM_OPEN311_KEY"] = saved["open311"]["token"]
    return out


def run(args: argparse.Namespace) -> int:
    if not os.environ.get("DATABASE_URL"):
        _step(["db", "start"])
    for step in STEPS:
        _step(list(step))
    background = [["alerts", "run", "--every", "60"]]
    if not args.no_simulator:
        background.append(["simulate", "--api", f"http://127.0.0.1:{args.port}", "--wait"])
    children = []
    env = {**os.environ, **_simulator_tokens()}   # the simulator acts as the demo account 'simulator'
    for argv in background:
        print(f"==> gridwatch {' '.join(argv)} (background)", flush=True)
        children.append(subprocess.Popen([sys.executable, "-m", "gridwatch.cli", *argv], env=env))
    try:
        _step(["serve", "--port", str(args.port)])
    finally:
        for child in children:
            child.terminate()
    return 0
