"""Small helpers shared by the dashboard pages."""

from __future__ import annotations

import asyncio
import functools

import dash

from gridwatch.replica import read_transaction

__all__ = ["db_callback", "pool", "system_pool", "listener", "jsonable", "read", "cache", "duplicates"]


def db_callback(fn):
    """Run a blocking (database) callback body in a worker thread, off the server's event loop.

    Dash on FastAPI awaits coroutine callbacks; this keeps one slow query from stalling tiles or
    other users. Use it under ``@dash.callback``. The thread inherits the request's context, so
    every ``transaction(pool())`` in the body runs with the signed-in user's credential (row-level
    security applies their scope); ``dashboard.session.principal()`` says who that is.
    """

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    return wrapper


def pool():
    """The server's connection pool (opened by create_app)."""
    return dash.get_app().server.state.pool


def system_pool():
    """The owner's small pool, for system work a page may start on behalf of an authorised user
    (running the alert rules now): bypasses row-level security. Check ``session.can(...)`` first and
    open it with ``transaction(system_pool(), credential="")``."""
    state = dash.get_app().server.state
    return getattr(state, "owner_pool", None) or state.pool


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


def duplicates(outputs) -> list:
    """The same outputs with ``allow_duplicate=True``: for a callback that redraws what a page's
    ``load`` callback also draws (``load`` answers with everything in one round trip)."""
    return [dash.Output(o.component_id, o.component_property, allow_duplicate=True) for o in outputs]
