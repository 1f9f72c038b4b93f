"""Run gridwatch as a service: write the systemd units, the logrotate file and the settings file.

  gridwatch service install [--prefix DIR] [--user USER] [--no-db] [--print]

Writes, with this checkout's paths filled in (templates in deploy/):
  PREFIX/etc/systemd/system/gridwatch-db.service      the embedded PostgreSQL in the foreground (Type=notify)
  PREFIX/etc/systemd/system/gridwatch-server.service  `gridwatch migrate`, then `gridwatch serve`
  PREFIX/etc/systemd/system/gridwatch-alerts.service  `gridwatch alerts run --every 60`
  PREFIX/etc/logrotate.d/gridwatch                    rotates the cluster's postgres.log (pg_ctl starts)
  PREFIX/etc/gridwatch/gridwatch.env                  the settings (kept if it exists)
The default prefix is / (as root). Then: systemctl daemon-reload && systemctl enable --now
gridwatch-db gridwatch-server gridwatch-alerts. Logs: journalctl -u gridwatch-server.
With DATABASE_URL in the settings file, install with --no-db (no embedded cluster unit).
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
from pathlib import Path

from gridwatch import config, db

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ("gridwatch-db.service", "gridwatch-server.service", "gridwatch-alerts.service")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["install"], help="what to do")
    p.add_argument("--prefix", default="/", help="root to write under (default /; e.g. a staging folder)")
    p.add_argument("--user", default=None, help="user the server and alert runner run as (default: the current user)")
    p.add_argument("--no-db", action="store_true", help="no embedded cluster unit (DATABASE_URL names an external PostGIS)")
    p.add_argument("--print", dest="print_only", action="store_true", help="print the rendered files instead of writing them")


def gridwatch_command() -> str:
    """How a unit runs this gridwatch: the venv's console script, else this Python with -m."""
    script = Path(sys.executable).parent / "gridwatch"
    if script.exists():
        return str(script)
    return f"{sys.executable} -m gridwatch.cli"


def render(prefix: Path, *, user: str | None = None, no_db: bool = False) -> dict[Path, str]:
    """{path under prefix: content} of every file to write."""
    cluster = db.embedded_cluster()
    env_file = prefix / "etc" / "gridwatch" / "gridwatch.env"
    pg_user = cluster.run_as or getpass.getuser()
    # systemd expands %-specifiers in command lines: the archive command's %f/%p are written %%f/%%p
    postgres = " ".join(shlex.quote(a) for a in cluster.server_command()).replace("%", "%%")
    values = {
        "@ROOT@": str(ROOT),
        "@GRIDWATCH@": gridwatch_command(),
        "@ENV_FILE@": str(Path("/") / env_file.relative_to(prefix)),
        "@PG_USER@": pg_user,
        "@RUN_USER@": user or getpass.getuser(),
        "@POSTGRES_COMMAND@": postgres,
        "@DB_UNIT@": "" if no_db else "gridwatch-db.service",
        "@DATA_DIR@": str(cluster.root),
        "@PG_PORT@": str(cluster.port),
    }

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    out: dict[Path, str] = {}
    for unit in UNITS:
        if no_db and unit == "gridwatch-db.service":
            continue
        out[prefix / "etc" / "systemd" / "system" / unit] = fill((DEPLOY / "systemd" / unit).read_text(encoding="utf-8"))
    out[prefix / "etc" / "logrotate.d" / "gridwatch"] = fill((DEPLOY / "logrotate" / "gridwatch").read_text(encoding="utf-8"))
    out[env_file] = fill((DEPLOY / "gridwatch.env").read_text(encoding="utf-8"))
    return out


def run(args: argparse.Namespace) -> int:
    prefix = Path(args.prefix).resolve()
    files = render(prefix, user=args.user, no_db=args.no_db)
    for path, text in files.items():
        if args.print_only:
            print(f"# ---- {path}\n{text}")
            continue
        if path.name == "gridwatch.env" and path.exists():
            print(f"kept {path} (it exists)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o644)
        print(f"wrote {path}")
    if not args.print_only:
        names = " ".join(u.removesuffix(".service") for u in UNITS if not (args.no_db and u == "gridwatch-db.service"))
        print(f"next: systemctl daemon-reload && systemctl enable --now {names}\n"
              f"      watch it with `gridwatch health` (exit 0 ok, 1 degraded, 2 unreachable); "
              f"logs: journalctl -u gridwatch-server")
    return 0
