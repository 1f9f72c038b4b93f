"""Servers for the API tests.

- :class:`InProcessServer`: the app of ``create_app(url)`` served by uvicorn in a thread of the
  test process, on a free port. Real HTTP through the real ASGI app, without starting a process
  (no interpreter start, no imports, no app build per server): what most API tests need.
- :func:`start_server`: ``gridwatch serve`` in a subprocess, for tests that need a process of its
  own (many clients dropping connections, kill/restart) and for the dashboard in a browser: Dash
  hands its page callbacks to the first app built in a process, so only one app per process can
  serve pages.
- :class:`ApiWorld`: a module's shared database (tiny hierarchy + departments) and its server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tests.conftest import ROOT, TEMPLATE, GiveUp, Server, clone_database, drop_database, free_port, wait_until


def create_app(database_url: str):
    """The server assembly's ``create_app`` (gridwatch.server; dashboard.server before it moved)."""
    try:
        from gridwatch.server import create_app as build
    except ModuleNotFoundError as exc:
        if exc.name != "gridwatch.server":
            raise
        from dashboard.server import create_app as build
    return build(database_url)


class InProcessServer:
    """``create_app(url)`` on uvicorn in a daemon thread; ``env`` is set in os.environ while it runs.

    Settings are read per request (gridwatch.config.get), so ``env`` applies to this server; it is
    restored on :meth:`stop`. Same ``.url`` / ``.stop()`` as the subprocess :class:`Server`.
    """

    def __init__(self, database_url: str, env: dict | None = None):
        import uvicorn

        self._saved_env = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            self.app = create_app(database_url)
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(("127.0.0.1", 0))
            port = self._socket.getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                    timeout_graceful_shutdown=2, lifespan="on")
            self._uvicorn = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [self._socket]},
                                            name=f"api-server-{port}", daemon=True)
            self._thread.start()
            wait_until(self._ready, timeout=30, interval=0.02, message=f"in-process server on port {port} to start")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if not self._thread.is_alive():
            raise GiveUp("the in-process server thread ended before it started serving")
        return self._uvicorn.started

    def stop(self) -> None:
        uv = getattr(self, "_uvicorn", None)
        if uv is not None:
            uv.should_exit = True
            self._thread.join(15)
        if getattr(self, "_socket", None) is not None:
            self._socket.close()
        app = getattr(self, "app", None)
        if app is not None:
            app.state.listener.stop()
            app.state.pool.close()
            self.app = None
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env = {}


def start_server(database_url: str, env: dict | None = None) -> Server:
    """``gridwatch serve`` in a subprocess on a free port, answering /healthz."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="gw-api-")) / f"server-{port}.log"
    environment = {**os.environ, "DATABASE_URL": database_url, "GRIDWATCH_PORT": str(port), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "gridwatch.cli", "serve", "--port", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=environment, cwd=ROOT)
    server = Server(f"http://127.0.0.1:{port}", proc, log)

    def healthy():
        if proc.poll() is not None:
            raise GiveUp(f"server exited with {proc.returncode}:\n{log.read_text()}")
        with urllib.request.urlopen(server.url + "/healthz", timeout=2) as r:
            return r.status == 200

    try:
        wait_until(healthy, timeout=60, interval=0.2, message=f"server on port {port} to answer /healthz")
    except BaseException:
        server.stop()
        raise
    return server


class ApiWorld:
    """A database with the tiny hierarchy and a few departments, served over real HTTP.

    In-process by default; ``process=True`` runs ``gridwatch serve`` in a subprocess instead.
    """

    def __init__(self, cluster, env: dict | None = None, *, process: bool = False):
        from tests.factories import make_department, make_tiny_gansu

        self.cluster = cluster
        self.name = clone_database(cluster, TEMPLATE)
        self.db_url = cluster.url(self.name)
        self.server = None
        try:
            with psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row) as conn:
                self.codes = make_tiny_gansu(conn)
                self.departments = {
                    "justice": make_department(conn, "620702100", "justice", "新墩镇司法所"),
                    "water": make_department(conn, "620702", "water", "甘州区水务局"),
                    "power": make_department(conn, "620702100", "power", "新墩供电所"),
                }
            self.server = start_server(self.db_url, env) if process else InProcessServer(self.db_url, env)
        except BaseException:
            drop_database(cluster, self.name)
            raise
        self.url = self.server.url

    def connect(self):
        return psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row)

    def count(self, table: str) -> int:
        with self.connect() as conn:
            return conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))).fetchone()["n"]

    def close(self):
        self.server.stop()
        drop_database(self.cluster, self.name)
        if isinstance(self.server, Server):
            shutil.rmtree(self.server.log.parent, ignore_errors=True)
