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
    import uvicorn

    from dashboard.server import create_app

    app = create_app(args.database_url)
    print(f"gridwatch dashboard on http://{args.host}:{args.port}/  (API docs: /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
