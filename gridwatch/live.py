"""Live path: one LISTEN connection per server process keeps the latest data versions.

Writers bump ``data_version`` once per statement and ``pg_notify('gridwatch', {table, version})``
(see etl/migrations/0005-data-version.sql). The listener reconnects by itself after an outage and
re-reads every version when it does, so a missed notification never leaves the view stale.
"""

from __future__ import annotations

import json
import threading
import time

import psycopg

__all__ = ["VersionListener", "read_versions"]


def read_versions(conn: psycopg.Connection) -> dict[str, int]:
    """{table: version} straight from the database."""
    rows = conn.execute("SELECT name, version FROM data_version").fetchall()
    return {(r["name"] if isinstance(r, dict) else r[0]): (r["version"] if isinstance(r, dict) else r[1]) for r in rows}


class VersionListener:
    """Background thread: LISTEN gridwatch on the primary; ``versions`` is always the newest seen."""

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
                    conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel)))
                    self._publish(read_versions(conn))
                    self.connected, self.last_error, backoff = True, None, 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            try:
                                payload = json.loads(note.payload)
                                merged = dict(self.versions)
                                if payload["version"] is not None:
                                    merged[payload["table"]] = max(int(payload["version"]), merged.get(payload["table"], 0))
                                self._publish(merged)
                            except (ValueError, KeyError, TypeError):
                                self._publish(read_versions(conn))
            except psycopg.Error as exc:
                self.connected = False
                self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
