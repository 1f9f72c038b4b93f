"""Serve the dashboard, vector tiles, JSON API (OpenAPI at /docs) and live updates.

One ASGI app (uvicorn): Dash pages on FastAPI, /tiles/…, /api/v1/…, /open311/v2/…, /healthz.
``--workers N`` runs N identical processes behind the one port (uvicorn builds the app in each from
the factory ``gridwatch.server:create_app``); each has its own LISTEN and pool, and shares tiles and
aggregates through Redis when GRIDWATCH_REDIS_URL is set. A worker that dies is replaced.
"""

from __future__ import annotations

import argparse
import os
import socket

import psycopg

from etl.migrate import MigrationError, verify
from gridwatch import config, db


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=config.get("GRIDWATCH_HOST"), help="listen address (default %(default)s)")
    p.add_argument("--port", type=int, default=int(config.get("GRIDWATCH_PORT")), help="port (default %(default)s)")
    p.add_argument("--database-url", default=None, help="override DATABASE_URL / the embedded cluster")
    p.add_argument("--workers", type=int, default=int(config.get("GRIDWATCH_WORKERS")),
                   help="worker processes behind the port (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    import uvicorn  # heavy: the web stack loads only when serving, so other commands start fast

    from gridwatch.server import create_app  # heavy: Dash, FastAPI and every page load only when serving

    if not _migrations_unchanged(args.database_url):
        return 1
    if args.workers < 1:
        print(f"gridwatch serve: --workers {args.workers} is not a number of processes: use 1 or more", flush=True)
        return 2
    print(f"gridwatch dashboard on http://{args.host}:{args.port}/  (API docs: /docs)"
          + (f", {args.workers} workers" if args.workers > 1 else ""), flush=True)
    if args.workers > 1:
        if args.database_url:
            os.environ["DATABASE_URL"] = args.database_url   # the workers build their app from the environment
        from uvicorn.supervisors import Multiprocess  # heavy: part of the web stack above

        config = uvicorn.Config("gridwatch.server:create_app", factory=True, workers=args.workers, host=args.host,
                                port=args.port, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
        Multiprocess(config, sockets=[tcp_listener(config.bind_socket())]).run()
        return 0
    app = create_app(args.database_url)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    return 0


def tcp_listener(sock: socket.socket) -> socket.socket:
    """``sock`` re-opened with its protocol named as TCP, so the connections it accepts get TCP_NODELAY.

    uvicorn binds the listening socket that ``--workers N`` share as ``socket(AF_INET, SOCK_STREAM)``:
    protocol 0, so asyncio does not turn on TCP_NODELAY for the connections the workers accept, and
    the second write of each response waits for the client's delayed ACK (about 40 ms a request,
    measured: 44 ms with two workers against 3.6 ms with one).
    """
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock


def _migrations_unchanged(url: str | None) -> bool:
    """False (and says which file and what to do) when an applied migration's file has changed.

    A database that is not reachable yet passes: the pages say so and retry until it is.
    """
    try:
        with psycopg.connect(url or db.database_url(), connect_timeout=5) as conn:
            verify(conn)
    except MigrationError as exc:
        print(f"gridwatch serve: {exc}", flush=True)
        return False
    except psycopg.OperationalError:
        pass
    return True
