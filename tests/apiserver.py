"""A module-scoped real server for the API tests: its own database (tiny hierarchy + departments)
and `gridwatch serve` in a subprocess, so a whole test module shares one startup."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from tests.conftest import ROOT, TEMPLATE, GiveUp, Server, clone_database, drop_database, free_port, wait_until


def start_server(database_url: str, env: dict | None = None) -> Server:
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
    """A database with the tiny hierarchy and a few departments, served over real HTTP."""

    def __init__(self, cluster, env: dict | None = None):
        from tests.factories import make_department, make_tiny_gansu

        self.cluster = cluster
        self.name = clone_database(cluster, TEMPLATE)
        self.db_url = cluster.url(self.name)
        with psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row) as conn:
            self.codes = make_tiny_gansu(conn)
            self.departments = {
                "justice": make_department(conn, "620702100", "justice", "新墩镇司法所"),
                "water": make_department(conn, "620702", "water", "甘州区水务局"),
                "power": make_department(conn, "620702100", "power", "新墩供电所"),
            }
        self.server = start_server(self.db_url, env)
        self.url = self.server.url

    def connect(self):
        return psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row)

    def count(self, table: str) -> int:
        from psycopg import sql

        with self.connect() as conn:
            return conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))).fetchone()["n"]

    def close(self):
        import shutil

        self.server.stop()
        drop_database(self.cluster, self.name)
        shutil.rmtree(self.server.log.parent, ignore_errors=True)
