"""Live path: one LISTEN per server process, fanned out to every open page and stream.

Writers bump ``data_version`` once per statement and send one
``pg_notify('gridwatch', {table, version, regions})`` (etl/migrations/0005 and 0090): the regions
are the county-level codes the statement touched (``null``: anything). Each worker process runs
one :class:`LiveHub`: an asyncio task holding one LISTEN connection to the *primary* (never
through a transaction-pooling pgbouncer, never a replica), keeping the newest versions in memory
and waking the :class:`Subscription` of every open stream whose region the change touches. A
stream is a coroutine, not a thread: thousands cost memory, not threads; ``GRIDWATCH_LIVE_MAX``
caps them per process (:class:`LiveFull` → 503).

The hub reconnects by itself after an outage and re-reads every version when it does, so a missed
notification never leaves a page stale: every subscriber is told (``status``) and refreshes.

:class:`VersionListener` is the older blocking form (a thread), kept for scripts and the bench.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import psycopg
from psycopg import sql

__all__ = ["LiveHub", "LiveFull", "Subscription", "VersionListener", "read_versions", "touches", "parse_note"]


def read_versions(conn) -> dict[str, int]:
    """{table: version} straight from the database (sync connection)."""
    rows = conn.execute("SELECT name, version FROM data_version").fetchall()
    return {(r["name"] if isinstance(r, dict) else r[0]): (r["version"] if isinstance(r, dict) else r[1]) for r in rows}


def touches(regions: list[str] | None, scope: str) -> bool:
    """Does a change to ``regions`` (None: unknown, anything) concern a page scoped to ``scope``?

    A scope is a region code ('' = everything). A change in county 620702 concerns 62, 6207,
    620702 and every township, village and grid below it; not 620902.

    >>> touches(["620702"], "6207"), touches(["620702"], "620702100200001"), touches(["620902"], "6207")
    (True, True, False)
    >>> touches(None, "620702"), touches(["620702"], "")
    (True, True)
    """
    if not scope or regions is None:
        return True
    return any(r.startswith(scope) or scope.startswith(r) for r in regions)


def parse_note(payload: str) -> tuple[str, int | None, list[str] | None]:
    """(table, version, regions) of a notification payload; raises ValueError when malformed."""
    data = json.loads(payload)
    if not isinstance(data, dict) or not isinstance(data.get("table"), str):
        raise ValueError(f"not a data-version notification: {payload[:80]!r}")
    version = data.get("version")
    regions = data.get("regions")
    if regions is not None and not (isinstance(regions, list) and all(isinstance(r, str) for r in regions)):
        regions = None
    return data["table"], (int(version) if version is not None else None), regions


class LiveFull(RuntimeError):
    """This process already serves ``GRIDWATCH_LIVE_MAX`` live streams."""


class Subscription:
    """One open stream's mailbox: the tables changed in its regions since it last looked.

    ``scopes`` are region codes (a change touching any of them counts; none: everything). Changes
    accumulate (a burst is one wake-up); ``status`` is set when the hub lost or regained the database.
    """

    def __init__(self, hub: "LiveHub", scopes: tuple[str, ...]):
        self.hub, self.scopes = hub, scopes
        self.tables: set[str] = set()
        self.status = False
        self._wake = asyncio.Event()

    def offer(self, table: str, regions: list[str] | None) -> None:
        if not self.scopes or any(touches(regions, scope) for scope in self.scopes):
            self.tables.add(table)
            self._wake.set()

    def alert(self) -> None:
        self.status = True
        self._wake.set()

    async def wait(self, timeout: float) -> bool:
        """True when something arrived within ``timeout`` seconds."""
        if not self._wake.is_set():
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                return False
        return True

    def take(self) -> tuple[set[str], bool]:
        """The changed tables and whether the status changed; empties the mailbox."""
        tables, status = self.tables, self.status
        self.tables, self.status = set(), False
        self._wake.clear()
        return tables, status

    def close(self) -> None:
        self.hub._subs.discard(self)


class LiveHub:
    """The process's one LISTEN (asyncio): ``versions``, ``connected`` and fan-out to subscribers.

    Start it from the server's event loop (``await hub.start()``, a startup hook); ``stop()`` may be
    called from any thread.
    """

    def __init__(self, url: str, channel: str = "gridwatch", max_subscribers: int | None = None):
        self.url, self.channel = url, channel
        self.max_subscribers = max_subscribers
        self.versions: dict[str, int] = {}
        self.connected = False
        self.last_error: str | None = None
        self.notifications = 0
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def start(self) -> "LiveHub":
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="gridwatch-listen")
        return self

    def stop(self) -> None:
        if self._task is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: nothing to report
                pass

    def subscribe(self, scope: str | tuple[str, ...] = "") -> Subscription:
        """A mailbox for changes touching ``scope``: one region code, several (a user's scope), or
        everything ('' or ())."""
        if self.max_subscribers is not None and len(self._subs) >= self.max_subscribers:
            raise LiveFull(f"this server process already serves {len(self._subs)} live streams (GRIDWATCH_LIVE_MAX)")
        scopes = tuple(c for c in ((scope,) if isinstance(scope, str) else scope) if c)
        sub = Subscription(self, scopes)
        self._subs.add(sub)
        return sub

    def _publish(self, table: str, version: int | None, regions: list[str] | None) -> None:
        self.notifications += 1
        if version is not None:
            self.versions = {**self.versions, table: max(version, self.versions.get(table, 0))}
        for sub in list(self._subs):
            sub.offer(table, regions)

    def _status(self) -> None:
        for sub in list(self._subs):
            sub.alert()

    async def _read_versions(self, conn: psycopg.AsyncConnection) -> dict[str, int]:
        cur = await conn.execute("SELECT name, version FROM data_version")
        return {name: version for name, version in await cur.fetchall()}

    async def _run(self) -> None:
        backoff, was_connected = 0.5, None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=5, application_name="gridwatch-listen") as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.versions = await self._read_versions(conn)
                    self.connected, self.last_error, backoff = True, None, 0.5
                    if was_connected is False:
                        self._status()          # back after an outage: everyone refreshes
                    was_connected = True
                    while True:
                        async for note in conn.notifies(timeout=10.0):
                            try:
                                self._publish(*parse_note(note.payload))
                            except (ValueError, TypeError):
                                self.versions = await self._read_versions(conn)
                                self._publish("*", None, None)
                        await conn.execute("SELECT 1")   # quiet for 10 s: is the connection still there?
            except asyncio.CancelledError:
                self.connected = False
                raise
            except (psycopg.Error, OSError) as exc:
                if self.connected or was_connected is None:
                    self.connected = False
                    self._status()
                was_connected = False
                text = str(exc).strip()
                self.last_error = text.splitlines()[0] if text else type(exc).__name__
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


class VersionListener:
    """Blocking form (a thread): LISTEN gridwatch on the primary; ``versions`` is always the newest seen."""

    def __init__(self, url: str, channel: str = "gridwatch"):
        self.url = url
        self.channel = channel
        self.versions: dict[str, int] = {}
        self.connected = False
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="gridwatch-listen", daemon=True)

    def start(self) -> "VersionListener":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait_for_change(self, seen: dict[str, int], timeout: float) -> dict[str, int]:
        """Block until versions differ from ``seen`` or ``timeout`` passes; return the versions."""
        with self._changed:
            self._changed.wait_for(lambda: self.versions != seen or self._stop.is_set(), timeout=timeout)
            return dict(self.versions)

    def _publish(self, versions: dict[str, int]) -> None:
        with self._changed:
            self.versions = versions
            self._changed.notify_all()

    def _loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                     application_name="gridwatch-listen") as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._publish(read_versions(conn))
                    self.connected, self.last_error, backoff = True, None, 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            try:
                                table, version, _ = parse_note(note.payload)
                                merged = dict(self.versions)
                                if version is not None:
                                    merged[table] = max(version, merged.get(table, 0))
                                self._publish(merged)
                            except (ValueError, KeyError, TypeError):
                                self._publish(read_versions(conn))
            except psycopg.Error as exc:
                self.connected = False
                self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
