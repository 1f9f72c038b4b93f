"""Reads from a hot-standby replica; writes, LISTEN and a user's own fresh reads from the primary.

Two parts:

- **Read routing** (``GRIDWATCH_READ_URL``). :func:`install_read_routing` gives the app a second
  pool on the replica. Tiles, aggregates, walls and exports ask :func:`reader` for their pool and
  get the replica, except right after the user wrote: a write through the server (any API call
  that is not a GET, or a page action that calls :func:`mark_written`) sets the ``gw_wrote``
  cookie, and for ``GRIDWATCH_FRESH_WRITE_SECONDS`` that user's reads go to the primary, so they
  see what they just did. A page refreshed by a pushed change passes the versions it was told
  about (:func:`read_transaction` ``want=``): if the replica has not replayed them yet the read
  waits briefly, then falls back to the primary, so a push never paints stale data.
- **A replica beside the embedded cluster** (``gridwatch db replica start|stop|status``): a
  streaming hot standby made with ``pg_basebackup -R -X stream`` in ``<data dir>/replica`` on
  ``GRIDWATCH_REPLICA_PORT``, for trials and tests. Production replicas are the DBA's.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.conninfo

from gridwatch import config
from gridwatch.cluster import Cluster, ClusterError
from gridwatch.db import embedded_cluster, open_pool, transaction

__all__ = ["install_read_routing", "reader", "read_transaction", "mark_written", "ReplicaCluster", "embedded_replica",
           "COOKIE"]

COOKIE = "gw_wrote"
WAIT_SECONDS = 1.0            # how long a read waits for the replica to replay a pushed version
_PRIMARY = contextvars.ContextVar("gridwatch_read_primary", default=False)
_WROTE = contextvars.ContextVar("gridwatch_wrote", default=None)
_SAFE = {"GET", "HEAD", "OPTIONS"}


def _fresh_seconds() -> float:
    return float(config.get("GRIDWATCH_FRESH_WRITE_SECONDS"))


def mark_written() -> None:
    """Say that this request wrote: the response sets the read-your-writes cookie."""
    box = _WROTE.get()
    if box is not None:
        box["wrote"] = True


class ReadRouting:
    """ASGI middleware: reads of a user who just wrote go to the primary; writes set the cookie."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        now = time.time()
        fresh = False
        for name, value in scope.get("headers", []):
            if name == b"cookie" and COOKIE.encode() in value:
                for part in value.decode("latin-1").split(";"):
                    key, _, stamp = part.strip().partition("=")
                    if key == COOKIE:
                        try:
                            fresh = now - float(stamp) / 1000.0 < _fresh_seconds()
                        except ValueError:
                            fresh = False
        box = {"wrote": scope["method"] not in _SAFE and not scope["path"].startswith("/_dash-")}
        token_p, token_w = _PRIMARY.set(fresh), _WROTE.set(box)

        async def send_with_cookie(message):
            if message["type"] == "http.response.start" and box["wrote"] and message["status"] < 400:
                cookie = f"{COOKIE}={int(time.time() * 1000)}; Max-Age={int(_fresh_seconds()) + 1}; Path=/; SameSite=Lax"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            _PRIMARY.reset(token_p)
            _WROTE.reset(token_w)


def install_read_routing(server) -> None:
    """Open the replica pool when GRIDWATCH_READ_URL is set and route reads (see module doc)."""
    url = config.get("GRIDWATCH_READ_URL")
    server.state.read_pool = open_pool(read_url_as_app(url, server), name="gridwatch-read") if url else None
    server.state.read_stats = {"replica": 0, "primary": 0, "waited": 0, "fallback": 0}
    server.add_middleware(ReadRouting)


def read_url_as_app(read_url: str, server) -> str:
    """The replica's URL as the role the primary pool uses (the app role: row-level security holds on
    the replica too), with that role's password when it has one."""
    primary = getattr(server.state, "pool", None)
    conninfo = getattr(primary, "conninfo", None)
    if not conninfo:
        return read_url
    app = psycopg.conninfo.conninfo_to_dict(conninfo)
    params = psycopg.conninfo.conninfo_to_dict(read_url)
    for key in ("user", "password"):
        if app.get(key):
            params[key] = app[key]
        else:
            params.pop(key, None) if key == "password" else None
    return psycopg.conninfo.make_conninfo(**params)


def reader(state):
    """The pool a read should use now: the replica, unless there is none or this user just wrote."""
    replica = getattr(state, "read_pool", None)
    stats = getattr(state, "read_stats", None)
    if replica is None or _PRIMARY.get():
        if stats is not None:
            stats["primary"] += 1
        return state.pool
    if stats is not None:
        stats["replica"] += 1
    return replica


@contextlib.contextmanager
def read_transaction(state, want: dict | None = None) -> Iterator[psycopg.Connection]:
    """A read-only transaction on :func:`reader`'s pool that has seen at least the versions ``want``.

    ``want`` is {table: version} (e.g. what a push said); on a replica that has not replayed them
    yet, the read waits up to a second for it, then reads the primary instead.
    """
    pool = reader(state)
    tables = {k: int(v) for k, v in (want or {}).items() if not k.startswith("_") and isinstance(v, (int, float))}
    if pool is state.pool or not tables:
        with transaction(pool, readonly=True) as conn:
            yield conn
        return
    deadline = time.monotonic() + WAIT_SECONDS
    waited = False
    while True:
        with pool.connection() as conn:
            rows = conn.execute("SELECT name, version FROM data_version WHERE name = ANY(%s)", (list(tables),)).fetchall()
            conn.rollback()
        have = {(r["name"] if isinstance(r, dict) else r[0]): (r["version"] if isinstance(r, dict) else r[1]) for r in rows}
        if all(have.get(t, 0) >= v for t, v in tables.items()):
            break
        if time.monotonic() > deadline:
            state.read_stats["fallback"] += 1
            pool = state.pool
            break
        waited = True
        time.sleep(0.02)
    if waited:
        state.read_stats["waited"] += 1
    with transaction(pool, readonly=True) as conn:
        yield conn


class ReplicaCluster(Cluster):
    """A streaming hot standby of ``primary`` in its own folder and port (pg_basebackup -R -X stream)."""

    primary: Cluster | None = None

    def attach(self, primary: Cluster) -> "ReplicaCluster":
        self.primary = primary
        return self

    def init(self) -> None:
        """Copy the primary (base backup with its WAL, standby.signal and primary_conninfo written)."""
        self._prepare_dirs()
        if self.initialized():
            return
        if self.primary is None or not self.primary.running():
            raise ClusterError("the primary is not running: start it first (gridwatch db start)")
        self._run(self._bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "gridwatch",
                  "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast", timeout=600)

    def _ensure_database(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
                    if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
                    raise ClusterError(f"{self.pgdata} runs but is not a standby")
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def status(self) -> dict:
        out = super().status()
        out["primary_port"] = self.primary.port if self.primary else None
        if out["running"]:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
                    row = conn.execute(
                        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
                        "COALESCE(EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)").fetchone()
                out.update(standby=row[0], replay_lsn=row[1], replay_age_seconds=float(row[2]))
            except psycopg.Error as exc:
                out["error"] = str(exc).strip().splitlines()[0]
        return out


def embedded_replica(primary: Cluster | None = None) -> ReplicaCluster:
    """The replica of the embedded cluster: ``<data dir>/replica`` on GRIDWATCH_REPLICA_PORT."""
    primary = primary or embedded_cluster()
    port = int(config.get("GRIDWATCH_REPLICA_PORT"))
    return ReplicaCluster(Path(primary.root) / "replica", port, bindir=primary.bindir, fast=primary.fast).attach(primary)


def run_cli(action: str, as_json: bool = False) -> int:
    """``gridwatch db replica start|stop|status``."""
    if os.environ.get("DATABASE_URL"):
        print("DATABASE_URL is set: replicas of an external server are set up by its administrator; "
              "point GRIDWATCH_READ_URL at one.")
        return 0
    replica = embedded_replica()
    if action == "start":
        what = replica.start()
        print(f"replica {what}: {replica.url()} (streaming from port {replica.primary.port}; data in {replica.pgdata})")
        print(f"use it for reads: GRIDWATCH_READ_URL={replica.url()}")
        return 0
    if action == "stop":
        print(f"replica: {replica.stop()}")
        return 0
    status = replica.status()
    if as_json:
        print(json.dumps(status))
    else:
        state = "running" if status["running"] else ("stopped" if status["initialized"] else "not created yet")
        extra = f"; replay {status.get('replay_lsn')}" if status.get("replay_lsn") else ""
        print(f"replica {state}; data {status['data_dir']}; port {status['port']}{extra}")
    return 0 if status["running"] else 3
