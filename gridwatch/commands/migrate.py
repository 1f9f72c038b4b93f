"""Apply the numbered SQL migrations (etl/migrations/NNNN-name.sql) not applied yet.

Each migration runs in its own transaction and is recorded in the schema_migration ledger;
running again applies nothing. A failing migration is rolled back and named with its statement.
"""

from __future__ import annotations

import argparse

import psycopg

from etl.migrate import MigrationError, applied, migrate
from gridwatch import db
from gridwatch.cluster import ensure_postgis


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", action="store_true", help="list applied migrations and exit")


def run(args: argparse.Namespace) -> int:
    url = db.database_url()
    ensure_postgis(url)
    with psycopg.connect(url) as conn:
        if args.list:
            for number, name in applied(conn).items():
                print(f"{number:04d} {name}")
            return 0
        try:
            done = migrate(conn, progress=lambda name: print(f"applied {name}"))
        except MigrationError as exc:
            print(f"gridwatch migrate: {exc}")
            return 1
    print(f"{len(done)} migration(s) applied" if done else "database schema is up to date")
    return 0
