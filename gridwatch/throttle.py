"""Heavy work through a bounded queue, with a per-user rate: a few slow requests cannot take every connection.

Coverage recomputes, what-if scenarios, site searches and exports each hold a database connection
for seconds. Unbounded, nine of them took all eight connections of a server process and /healthz
waited with everybody else. :class:`Throttle` keeps, per server process:

- at most ``GRIDWATCH_HEAVY_WORKERS`` heavy requests running and ``GRIDWATCH_HEAVY_QUEUE`` waiting;
  one more is refused at once (:class:`Busy`, 503 with Retry-After) instead of queueing without end;
- a token bucket per user (``GRIDWATCH_HEAVY_PER_MINUTE`` tokens a minute, bursts of
  ``GRIDWATCH_HEAVY_BURST``): over it, :class:`RateLimited` (429 with Retry-After). With
  ``GRIDWATCH_REDIS_URL`` the buckets live in Redis, shared by every worker process (one atomic
  Lua script per take); otherwise in the process. A Redis that cannot be reached falls back to the
  local bucket, never to an error.

The HTTP face (:mod:`gridwatch.api.hardening`) decides which requests are heavy and renders the errors.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from contextlib import asynccontextmanager

from gridwatch import config

__all__ = ["Throttle", "Busy", "RateLimited", "TokenBuckets"]


class Busy(Exception):
    """The heavy queue is full (503)."""

    retry_after = 5


class RateLimited(Exception):
    """This user asked for heavy work too often (429); ``retry_after`` in whole seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


_LUA = """
local t = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, at = tonumber(t[1]) or burst, tonumber(t[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local ok = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {ok, tostring(tokens)}
"""


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens a second, at most ``burst``.

    >>> b = TokenBuckets(rate=1.0, burst=2, redis_url="")
    >>> b.take("u", now=0.0), b.take("u", now=0.0), b.take("u", now=0.0)
    (0, 0, 1)
    >>> b.take("u", now=1.0)
    0
    """

    def __init__(self, rate: float, burst: int, redis_url: str | None = None):
        self.rate, self.burst = rate, burst
        self._local: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._redis = None
        url = config.get("GRIDWATCH_REDIS_URL") if redis_url is None else redis_url
        if url:
            try:
                import redis  # the optional shared backend; only when configured

                self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
                self._script = self._redis.register_script(_LUA)
            except Exception:  # noqa: BLE001 - Redis is an optimisation, never a failure
                self._redis = None

    def take(self, key: str, now: float | None = None) -> int:
        """Take one token for ``key``: 0 when granted, else the seconds to wait."""
        if self._redis is not None and now is None:
            try:
                ok, tokens = self._script(keys=["gw:rate:" + key], args=[self.rate, self.burst, time.time()])
                return 0 if int(ok) else max(1, math.ceil((1 - float(tokens)) / self.rate))
            except Exception:  # noqa: BLE001 - unreachable Redis: the local bucket answers
                pass
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._local.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._local[key] = (tokens - 1, now)
                return 0
            self._local[key] = (tokens, now)
            if len(self._local) > 10000:          # bound memory: forget the oldest entries
                for old in list(self._local)[:1000]:
                    del self._local[old]
            return max(1, math.ceil((1 - tokens) / self.rate))


class Throttle:
    """A bounded queue of heavy work in one event loop, plus per-user buckets.

    ``async with throttle.slot(user): ...`` runs the block when a slot is free; it raises
    :class:`RateLimited` or :class:`Busy` at once instead of waiting without bound.
    """

    def __init__(self, workers: int | None = None, queue: int | None = None, per_minute: float | None = None,
                 burst: int | None = None, redis_url: str | None = None):
        self.workers = int(workers or config.get("GRIDWATCH_HEAVY_WORKERS"))
        self.queue = int(config.get("GRIDWATCH_HEAVY_QUEUE") if queue is None else queue)
        per_minute = float(per_minute or config.get("GRIDWATCH_HEAVY_PER_MINUTE"))
        self.buckets = TokenBuckets(per_minute / 60.0, int(burst or config.get("GRIDWATCH_HEAVY_BURST")), redis_url)
        self._sem: asyncio.Semaphore | None = None
        self.running = self.waiting = 0

    @asynccontextmanager
    async def slot(self, user: str):
        wait = self.buckets.take(user)
        if wait:
            raise RateLimited(wait)
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.workers)
        if self.running >= self.workers and self.waiting >= self.queue:
            raise Busy()
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._sem.release()
