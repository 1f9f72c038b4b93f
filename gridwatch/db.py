"""Where gridwatch talks to PostgreSQL: the URL, the pool, and the one place a transaction opens.

Every read and write goes through :func:`transaction` so that a user's region scope (for the
row-level security that comes later) is set in exactly one place, per transaction.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from gridwatch import config

__all__ = ["database_url", "app_database_url", "app_url_for", "embedded_cluster", "open_pool", "transaction", "load_sql", "versions", "execute", "fetch_all",
           "bind_credential", "unbind_credential", "current_credential"]

# The secret (session id or bearer token) of the request being served, bound once per request by
# the server's identity middleware (gridwatch.api.auth). transaction() opens with it when no
# credential is passed, so every transaction a request causes runs under that user's scope —
# including those in Dash callbacks and worker threads (asyncio.to_thread and Starlette's thread
# pool copy the context). Outside a request (CLI, ETL, the alert runner) it is None.
_CREDENTIAL: contextvars.ContextVar[str | None] = contextvars.ContextVar("gridwatch_credential", default=None)


def bind_credential(secret: str | None) -> contextvars.Token:
    """Make ``secret`` the credential of transactions opened in this context; returns the reset token."""
    return _CREDENTIAL.set(secret if isinstance(secret, str) and 0 < len(secret) <= 512 else None)


def unbind_credential(token: contextvars.Token) -> None:
    _CREDENTIAL.reset(token)


def current_credential() -> str | None:
    """The credential bound to the current request (None outside one or when anonymous)."""
    return _CREDENTIAL.get()


def embedded_cluster():
    """The project's own cluster (used when DATABASE_URL is unset)."""
    from gridwatch.cluster import Cluster

    return Cluster(config.data_dir(), int(config.get("GRIDWATCH_PG_PORT")))


def database_url() -> str:
    """DATABASE_URL when set, else the embedded cluster's URL (which may not be running yet)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return embedded_cluster().url()


def app_database_url() -> str:
    """URL of the app role ``gridwatch_app`` (no BYPASSRLS, owns nothing): GRIDWATCH_APP_DATABASE_URL,
    else the embedded cluster's (127.0.0.1 is trusted there, so no password). With DATABASE_URL set
    and no app URL given, raises ValueError saying what to set."""
    url = os.environ.get("GRIDWATCH_APP_DATABASE_URL")
    if url:
        return url
    if os.environ.get("DATABASE_URL"):
        raise ValueError("DATABASE_URL is set: give the app role's URL in GRIDWATCH_APP_DATABASE_URL "
                         "(postgresql://gridwatch_app:PASSWORD@host:port/db; the DBA sets the password with ALTER ROLE).")
    return embedded_cluster().url().replace("postgresql://gridwatch@", "postgresql://gridwatch_app@", 1)


def app_url_for(owner_url: str) -> str:
    """The app role's URL for a server given the owner's ``owner_url``: GRIDWATCH_APP_DATABASE_URL
    when set, else the same server and database as user ``gridwatch_app`` without a password (the
    embedded and test clusters trust 127.0.0.1; elsewhere set GRIDWATCH_APP_DATABASE_URL)."""
    url = os.environ.get("GRIDWATCH_APP_DATABASE_URL")
    if url:
        return url
    params = psycopg.conninfo.conninfo_to_dict(owner_url)
    params.pop("password", None)
    params["user"] = "gridwatch_app"
    return psycopg.conninfo.make_conninfo(**params)


def open_pool(url: str | None = None, *, min_size: int = 1, max_size: int | None = None, name: str = "gridwatch") -> ConnectionPool:
    """Open a connection pool; the caller closes it (use it as a context manager)."""
    size = max_size or int(config.get("GRIDWATCH_POOL_SIZE"))
    pool = ConnectionPool(
        url or database_url(),
        min_size=min(min_size, size),
        max_size=size,
        kwargs={"autocommit": False, "row_factory": dict_row, "application_name": name,
                # behind pgbouncer's transaction pooling a server-side prepared statement may land on another backend
                **({"prepare_threshold": None} if config.get("GRIDWATCH_PGBOUNCER") == "on" else {})},
        open=False,
        reconnect_timeout=5,
        timeout=10,
        check=ConnectionPool.check_connection,  # never hand out a connection the server has dropped
    )
    pool.open(wait=False)
    return pool


@contextlib.contextmanager
def transaction(source: ConnectionPool | psycopg.Connection, *, region_scope: str | None = None, user_id: int | None = None,
                department_id: int | None = None, readonly: bool = False, credential: str | None = None) -> Iterator[psycopg.Connection]:
    """A connection inside one transaction: commit on success, roll back on any error.

    ``source`` is a pool or an open connection. ``region_scope`` (region code prefixes, comma
    separated), ``user_id`` and ``department_id`` are set as ``gridwatch.region_scope`` /
    ``gridwatch.user_id`` / ``gridwatch.department_id`` for this transaction only (SET LOCAL).

    Connected as the app role, row-level security counts them only inside a grant: pass
    ``credential`` (the caller's session id or bearer token) and the database itself sets the
    user's scope (``gridwatch_open``); ``region_scope`` may then only narrow it. See
    docs/ARCHITECTURE.md, "Identity and region scope".

    With ``credential`` None, the credential bound to the current request (:func:`bind_credential`)
    is used, so request paths never open a transaction without their user's scope.
    """
    if credential is None:
        credential = _CREDENTIAL.get()
    if isinstance(source, ConnectionPool):
        with source.connection() as conn:
            with _tx(conn, region_scope, readonly, user_id, department_id, credential):
                yield conn
    else:
        with _tx(source, region_scope, readonly, user_id, department_id, credential):
            yield source


@contextlib.contextmanager
def _tx(conn: psycopg.Connection, region_scope: str | None, readonly: bool, user_id: int | None = None,
        department_id: int | None = None, credential: str | None = None) -> Iterator[None]:
    with conn.transaction():
        if readonly:
            conn.execute("SET TRANSACTION READ ONLY")
        if credential is not None:
            conn.execute("SELECT 1 FROM gridwatch_open(%s)", (credential,))   # sets scope, user, department
            if region_scope is not None:
                conn.execute("SELECT set_config('gridwatch.region_scope', %s, true)", (region_scope,))  # may only narrow
        else:
            conn.execute(
                "SELECT set_config('gridwatch.region_scope', %s, true), set_config('gridwatch.user_id', %s, true),"
                " set_config('gridwatch.department_id', %s, true)",
                (region_scope or "", "" if user_id is None else str(int(user_id)),
                 "" if department_id is None else str(int(department_id))),
            )
        yield


def execute(conn: psycopg.Connection, query, params=None) -> psycopg.Cursor:
    """Execute ``query`` on a dict-row cursor (rows are dicts whatever the connection's row factory).

    The one dict-row idiom of the project: pooled connections already return dicts; this also
    holds for a connection a caller opened without ``row_factory=dict_row``.
    """
    return conn.cursor(row_factory=dict_row).execute(query, params)


def fetch_all(conn: psycopg.Connection, query, params=None) -> list[dict]:
    """All rows of ``query`` as dicts."""
    return execute(conn, query, params).fetchall()


_SQL_CACHE: dict[Path, str] = {}


def load_sql(package_dir: Path | str, name: str) -> str:
    """Text of ``<package_dir>/sql/<name>.sql`` (cached after the first read)."""
    path = Path(package_dir) / "sql" / f"{name}.sql"
    if path not in _SQL_CACHE:
        _SQL_CACHE[path] = path.read_text(encoding="utf-8")
    return _SQL_CACHE[path]


def versions(conn: psycopg.Connection) -> dict[str, str]:
    """PostgreSQL and PostGIS versions of the server behind ``conn``."""
    row = conn.execute("SELECT current_setting('server_version') AS pg, postgis_lib_version() AS postgis").fetchone()
    if isinstance(row, dict):
        return {"postgresql": row["pg"], "postgis": row["postgis"]}
    return {"postgresql": row[0], "postgis": row[1]}
