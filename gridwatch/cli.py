"""The ``gridwatch`` command: one entry point, one subcommand per job.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
``COMMANDS`` lists them. Modules are imported when the parser is built (every command reaches the
database, so psycopg is imported here at the top), and none of them loads data at import time.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import psycopg

from gridwatch.cluster import ClusterError, redact
from gridwatch.db import database_url

__all__ = ["COMMANDS", "add_subcommands", "build_parser", "main"]

# (command words, module, one-line help). Adding a command = one module + one line + a README row.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("db", "gridwatch.commands.db", "Manage the embedded PostgreSQL/PostGIS cluster: start | stop | status | url."),
    ("migrate", "gridwatch.commands.migrate", "Apply the numbered SQL migrations that are not applied yet."),
    ("etl", "gridwatch.commands.etl", "Load data: the Gansu hierarchy, your own boundaries, the demo history."),
    ("up", "gridwatch.commands.up", "Everything the README's run command does: database, migrations, Gansu demo, simulator, dashboard."),
    ("bench", "bench.run", "Run the benchmarks against a throwaway cluster; each figure is a ratio to a same-run baseline."),
    ("serve", "gridwatch.commands.serve", "Serve the dashboard, tiles, JSON API and live updates at http://127.0.0.1:8050."),
    ("simulate", "gridwatch.simulate", "Send live demo traffic through the API: new cases, lifecycles progressing, daily check-ins."),
    ("alerts", "gridwatch.commands.alerts", "Early warnings: run the alert rules (deadline, red, spike, hotspot, repeats, silent grids, …) or list alerts."),
    ("coverage", "gridwatch.commands.coverage", "Coverage of the centres: recompute the stored figures and gaps, or show a region's coverage."),
    ("service", "gridwatch.commands.service", "Run gridwatch as a service: write the systemd units, logrotate file and settings (install --prefix DIR)."),
    ("health", "gridwatch.commands.health", "Health check for monitoring: ask the server's /healthz; exit 0 ok, 1 degraded, 2 unreachable."),
    ("users", "gridwatch.commands.users", "Accounts: add (with a role and region), list, disable, enable, reset-password."),
    ("tokens", "gridwatch.commands.tokens", "Bearer tokens for API clients, the wall's kiosk and Open311: create (printed once), list, revoke."),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridwatch",
        description=(
            "gridwatch — grid-management dashboard for comprehensive social-governance centres (综治中心). "
            "Without DATABASE_URL it runs its own PostgreSQL+PostGIS cluster in .gridwatch/ of the checkout."
        ),
        epilog="Settings come from environment variables; see the README's Configuration table.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_subcommands(sub, COMMANDS, "_run")
    return parser


def add_subcommands(sub, table: tuple[tuple[str, str, str], ...], run_key: str) -> None:
    """One subparser per (word, module, help) row: the module's docstring is its description, its
    ``add_arguments(p)`` its options, and ``args.<run_key>`` its ``run`` (also `gridwatch etl WHAT`)."""
    for name, module, help_text in table:
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(**{run_key: mod.run})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ClusterError as exc:
        print(f"gridwatch: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        print(
            f"gridwatch: cannot reach the database at {redact(database_url())}: {str(exc).strip()}\n"
            "  Start the embedded one with `gridwatch db start`, or set DATABASE_URL to a running PostGIS.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
