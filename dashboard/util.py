"""Small helpers shared by the dashboard pages."""

from __future__ import annotations

import asyncio
import functools

import dash

from gridwatch.replica import read_transaction

__all__ = ["db_callback", "pool", "listener", "jsonable", "read", "cache"]


def db_callback(fn):
    """Run a blocking (database) callback body in a worker thread, off the server's event loop.

    Dash on FastAPI awaits coroutine callbacks; this keeps one slow query from stalling tiles or
    other users. Use it under ``@dash.callback``.
    """

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    return wrapper


def pool():
    """The server's connection pool (opened by create_app)."""
    return dash.get_app().server.state.pool


def listener():
    """The server's data-version listener."""
    return dash.get_app().server.state.listener


def read(want: dict | None = None):
    """A read-only transaction for a view: on the replica when GRIDWATCH_READ_URL is set (the
    primary right after this user wrote), having seen at least the versions ``want`` a push named."""
    return read_transaction(dash.get_app().server.state, want)


def cache():
    """The server's tile and aggregate cache (Redis shared by the workers, or local)."""
    return getattr(dash.get_app().server.state, "cache", None)


def jsonable(value):
    """``value`` with dates and times as ISO strings, ready for a dcc.Store (recursively)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
