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

import contextlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from gridwatch import config

__all__ = ["LocalCache", "RedisCache", "open_cache", "cache_key", "cached_json", "single_flight", "get_json",
           "put_json", "DEFAULT_TTL", "FLIGHT_WAIT"]

DEFAULT_TTL = 600          # seconds: keys are versioned, so this only bounds memory
FLIGHT_WAIT = 5.0          # seconds an asker waits for another's computation of the same key, then computes itself
PREFIX = "gw:"
LOCK = "gw-lock:"          # Redis: who is computing a key (never a cached value)


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
        self.flights = _Flights()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None or item[0] < time.monotonic():
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[1]

    def claim(self, key: str, seconds: float) -> str | None:
        """Across processes there is nobody to tell: the process's own lock per key is the claim."""
        return "local"

    def wait_for(self, key: str, seconds: float) -> bytes | None:
        return None

    def release(self, key: str, token: str | None) -> None:
        pass

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
        return {"kind": self.kind, "hits": self.hits, "misses": self.misses, "entries": len(self._data),
                **self.flights.stats()}


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
        self.flights = _Flights()
        self._release = self._redis.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0")

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

    def claim(self, key: str, seconds: float) -> str | None:
        """A token when this process may compute ``key`` (no other worker is), else None. A Redis
        that cannot be reached lets everyone compute (as without a cache)."""
        token = secrets.token_hex(8)
        try:
            ok = self._redis.set(LOCK + key, token, nx=True, px=max(1, int(seconds * 1000)))
        except self._errors:
            self.errors += 1
            return token
        return token if ok else None

    def wait_for(self, key: str, seconds: float) -> bytes | None:
        """The value another worker is computing, polled until it is there, the worker gave up
        (its lock is gone) or ``seconds`` passed; None: compute it yourself."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                value, lock = self._redis.mget([key, LOCK + key])
            except self._errors:
                self.errors += 1
                return None
            if value is not None:
                self.hits += 1
                return value
            if lock is None:
                return None
            time.sleep(0.02)
        return None

    def release(self, key: str, token: str | None) -> None:
        if token is None:
            return
        try:
            self._release(keys=[LOCK + key], args=[token])
        except self._errors:
            self.errors += 1

    def stats(self) -> dict:
        return {"kind": self.kind, "hits": self.hits, "misses": self.misses, "errors": self.errors,
                **self.flights.stats()}


def open_cache(redis_url: str | None = None) -> LocalCache | RedisCache:
    """Redis when ``redis_url`` (or GRIDWATCH_REDIS_URL) is set, else a local LRU cache."""
    url = redis_url if redis_url is not None else config.get("GRIDWATCH_REDIS_URL")
    return RedisCache(url) if url else LocalCache()


class _Flights:
    """One lock per key being computed in this process (created on demand, dropped when unused)."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}          # key → [lock, users]
        self.led = self.shared = self.gave_up = 0

    @contextlib.contextmanager
    def hold(self, key: str, seconds: float) -> Iterator[bool]:
        """Hold ``key``'s lock (True), or give up after ``seconds`` (False)."""
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        got = entry[0].acquire(timeout=seconds)
        try:
            yield got
        finally:
            if got:
                entry[0].release()
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0 and self._locks.get(key) is entry:
                    del self._locks[key]

    def stats(self) -> dict:
        return {"flights_led": self.led, "flights_shared": self.shared, "flights_gave_up": self.gave_up}


@contextlib.contextmanager
def single_flight(cache, key: str | None, wait: float = FLIGHT_WAIT) -> Iterator[bytes | None]:
    """Around the computation of a value the caller just missed in ``cache``: yields the value when
    another asker (a thread of this process, or another worker through Redis) computed it meanwhile,
    else None — then compute it and ``cache.set`` it before leaving the block, while later askers wait.

    ``cache`` or ``key`` None: no coordination (yields None). Waits at most about ``wait`` seconds,
    then yields None (compute it yourself) so a stuck or failed computation delays others only that long.
    """
    if cache is None or key is None:
        yield None
        return
    flights = cache.flights
    started = time.monotonic()
    with flights.hold(key, wait) as held:
        if held:
            hit = cache.get(key)        # computed by the thread we waited for?
            if hit is not None:
                flights.shared += 1
                yield hit
                return
        token = cache.claim(key, wait) if held else None
        if held and token is None:     # another worker computes it: wait for its answer
            hit = cache.wait_for(key, max(0.0, wait - (time.monotonic() - started)))
            if hit is not None:
                flights.shared += 1
                yield hit
                return
        if held:
            flights.led += 1
        else:
            flights.gave_up += 1
        try:
            yield None
        finally:
            cache.release(key, token)


def get_json(cache, key: str | None) -> Any:
    """The JSON value under ``key`` (None when absent, or without a cache or key)."""
    hit = cache.get(key) if cache is not None and key is not None else None
    return None if hit is None else json.loads(hit)


def put_json(cache, key: str, value: Any, ttl: int = DEFAULT_TTL) -> None:
    if cache is not None:
        cache.set(key, json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode(), ttl)


def cached_json(cache, key: str, compute: Callable[[], Any], ttl: int = DEFAULT_TTL, wait: float = FLIGHT_WAIT) -> Any:
    """``compute()``'s JSON-ready value, from ``cache`` under ``key`` when there; askers of the same
    missing key at the same time share one computation (:func:`single_flight`)."""
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return json.loads(hit)
    with single_flight(cache, key, wait) as hit:
        if hit is not None:
            return json.loads(hit)
        value = compute()
        put_json(cache, key, value, ttl)
        return value
