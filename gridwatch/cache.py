"""Caches of tiles and aggregates, shared by all worker processes when Redis is configured.

Keys name their data exactly: a tile is (layer, data version, z, x, y), an aggregate is (what,
region, the versions of the tables it reads). A key never needs invalidating: a change in the data
makes a new version and so a new key, and old keys expire. So the cache is safe with several
workers and a replica, as long as the versions in a key are read in the same transaction as the
data (see :func:`cached_json`).

``GRIDWATCH_REDIS_URL`` set: one Redis for all workers (a tile rendered by one worker is a hit in
every other). Unset: a small least-recently-used cache in each process. A Redis that cannot be
reached is a miss, never an error: the request is answered from the database.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from gridwatch import config

__all__ = ["LocalCache", "RedisCache", "open_cache", "cache_key", "cached_json", "DEFAULT_TTL"]

DEFAULT_TTL = 600          # seconds: keys are versioned, so this only bounds memory
PREFIX = "gw:"


def cache_key(*parts: Any) -> str:
    """A cache key from its parts.

    >>> cache_key("tile", "cases", "12-3", 8, 200, 97)
    'gw:tile|cases|12-3|8|200|97'
    """
    return PREFIX + "|".join(str(p) for p in parts)


class LocalCache:
    """In-process LRU cache of bytes, bounded in total bytes; thread-safe."""

    kind = "local"

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None or item[0] < time.monotonic():
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[1]

    def set(self, key: str, value: bytes, ttl: int = DEFAULT_TTL) -> None:
        if len(value) > self.max_bytes // 8:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._data[key] = (time.monotonic() + ttl, value)
            self._bytes += len(value)
            while self._bytes > self.max_bytes and self._data:
                _, (_, dropped) = self._data.popitem(last=False)
                self._bytes -= len(dropped)

    def stats(self) -> dict:
        return {"kind": self.kind, "hits": self.hits, "misses": self.misses, "entries": len(self._data)}


class RedisCache:
    """The same interface on Redis: shared by every worker process (and every server)."""

    kind = "redis"

    def __init__(self, url: str):
        # optional dependency: redis is needed only when GRIDWATCH_CACHE_URL points at a Redis server
        import redis

        self.url = url
        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._errors = (redis.RedisError, OSError)
        self.hits = self.misses = self.errors = 0

    def get(self, key: str) -> bytes | None:
        try:
            value = self._redis.get(key)
        except self._errors:
            self.errors += 1
            return None
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def set(self, key: str, value: bytes, ttl: int = DEFAULT_TTL) -> None:
        try:
            self._redis.set(key, value, ex=ttl)
        except self._errors:
            self.errors += 1

    def stats(self) -> dict:
        return {"kind": self.kind, "hits": self.hits, "misses": self.misses, "errors": self.errors}


def open_cache(redis_url: str | None = None) -> LocalCache | RedisCache:
    """Redis when ``redis_url`` (or GRIDWATCH_REDIS_URL) is set, else a local LRU cache."""
    url = redis_url if redis_url is not None else config.get("GRIDWATCH_REDIS_URL")
    return RedisCache(url) if url else LocalCache()


def cached_json(cache, key: str, compute: Callable[[], Any], ttl: int = DEFAULT_TTL) -> Any:
    """``compute()``'s JSON-ready value, from ``cache`` under ``key`` when there."""
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return json.loads(hit)
    value = compute()
    if cache is not None:
        cache.set(key, json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode(), ttl)
    return value
