"""Serve the dashboard, vector tiles, JSON API (OpenAPI at /docs) and live updates.

One ASGI process (uvicorn): Dash pages on FastAPI, /tiles/…, /api/v1/…, /open311/v2/…, /healthz.
"""

from __future__ import annotations

import argparse

from gridwatch import config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=config.get("GRIDWATCH_HOST"), help="listen address (default %(default)s)")
    p.add_argument("--port", type=int, default=int(config.get("GRIDWATCH_PORT")), help="port (default %(default)s)")
    p.add_argument("--database-url", default=None, help="override DATABASE_URL / the embedded cluster")


def run(args: argparse.Namespace) -> int:
    import uvicorn  # heavy: the web stack loads only when serving, so other commands start fast

    from gridwatch.server import create_app  # heavy: Dash, FastAPI and every page load only when serving

    if not _migrations_unchanged(args.database_url):
        return 1
    app = create_app(args.database_url)
    print(f"gridwatch dashboard on http://{args.host}:{args.port}/  (API docs: /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _migrations_unchanged(url: str | None) -> bool:
    """False (and says which file and what to do) when an applied migration's file has changed.

    A database that is not reachable yet passes: the pages say so and retry until it is.
    """
    import psycopg

    from etl.migrate import MigrationError, verify
    from gridwatch import db

    try:
        with psycopg.connect(url or db.database_url(), connect_timeout=5) as conn:
            verify(conn)
    except MigrationError as exc:
        print(f"gridwatch serve: {exc}", flush=True)
        return False
    except psycopg.OperationalError:
        pass
    return True
