"""The API fuzz of tests/test_fuzz_api.py: operations from the app's own /openapi.json, split into
shards that xdist workers run side by side, each request sent through the real ASGI app.

Why the ASGI app and not the in-process HTTP server: measured on this machine, every request to
the uvicorn server of tests/apiserver.py waits about 40 ms between the response headers and its
body (TCP delayed ACK: its listening socket is made with protocol 0, so asyncio does not set
TCP_NODELAY on the connections it accepts), which was two thirds of the fuzz's time. The same app
answers through ``httpx.ASGITransport`` in 1-5 ms.

A :class:`Fuzzer` holds one database (an :class:`~tests.apiserver.ApiWorld`), an event loop of its
own running in a thread of its own (Playwright's sync API, once a browser test ran in this process,
keeps a loop marked running in the test thread, where ``run_until_complete`` then refuses to run)
and an owner connection for the row counts. :meth:`Fuzzer.run_shard` sends a shard's share of
generated requests and returns what it saw; nothing here asserts, the test does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time
import traceback
import zlib

import httpx
import psycopg
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from psycopg import sql
from schemathesis import GenerationMode

from tests.conftest import AUTH

# the live stream never ends by design (tests/test_live_stream.py covers its refusals and cap)
STREAMS = ("/api/v1/live",)
# operations that compute (coverage, exports, tiles, statistics): fewer examples each
HEAVY = ("/api/v1/coverage/", "/export/", "/sites", "/gaps", "/tiles/", "/api/v1/stats/", "/api/v1/kpi/", "children.geojson")
FLOOR = 20                      # valid requests every operation gets at least (if it has that many)
HEAVY_FLOOR = 16                # the same for heavy operations, which get no more
NEGATIVE = 6                    # invalid requests per operation where the schema leaves something to break
REQUEST_TIMEOUT = 60.0          # seconds for one request, whatever the app does
MAX_ROUNDS = 12                 # top-up rounds of a shard whose operations run out of distinct examples
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# tables a refused request may legitimately write: none so far
LEGITIMATE_ON_REFUSAL: tuple[str, ...] = ()
SENDABLE = ("params", "headers", "json", "data", "content", "files", "cookies")


def key_of(operation) -> str:
    return f"{operation.method.upper()} {operation.path}"


def is_heavy(operation) -> bool:
    return any(h in operation.path for h in HEAVY)


def has_inputs(operation) -> bool:
    """Whether anything of the request is generated (else there is one request to send)."""
    return any(len(part) for part in (operation.path_parameters, operation.query, operation.headers,
                                      operation.cookies, operation.body))


def partition(operations: list, shards: int) -> list[list]:
    """A stable split of ``operations`` into ``shards`` lists of about equal cost.

    Heavy operations first, then those with nothing to generate, then the rest (which take the
    top-up), each group in order of a checksum of "METHOD path" (stable across runs and processes,
    unlike ``hash``), dealt round-robin as one sequence, so shards differ by at most one of each kind.
    """
    ordered = sorted(operations, key=lambda op: (0 if is_heavy(op) else 1 if not has_inputs(op) else 2,
                                                 zlib.crc32(key_of(op).encode()), key_of(op)))
    return [ordered[i::shards] for i in range(shards)]


@dataclasses.dataclass
class ShardResult:
    sent: int = 0
    by_operation: dict = dataclasses.field(default_factory=dict)
    statuses: dict = dataclasses.field(default_factory=dict)
    failures: list = dataclasses.field(default_factory=list)
    unsendable: int = 0
    refused_writes_checked: int = 0
    seconds: float = 0.0
    timings: list = dataclasses.field(default_factory=list)


class Fuzzer:
    """Generated requests to ``world``'s app with the test operator's token."""

    def __init__(self, world):
        self.world = world
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="fuzzer-loop", daemon=True)
        self._loop_thread.start()
        self.errors: list[str] = []         # the app's unhandled exceptions, last one last
        app = world.server.app

        async def recorded(scope, receive, send):
            try:
                await app(scope, receive, send)
            except Exception:
                self.errors.append(traceback.format_exc(limit=-8))
                raise

        # raise_app_exceptions=False: an unhandled error comes back as the app's own 500
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=recorded, raise_app_exceptions=False),
                                        base_url=world.url, timeout=REQUEST_TIMEOUT)
        self.owner = psycopg.connect(world.db_url, autocommit=True)
        spec = self._send("GET", "/openapi.json", headers=AUTH)
        spec.raise_for_status()
        self.schema = schemathesis.openapi.from_dict(spec.json())
        self.operations = [op for op in (r.ok() for r in self.schema.get_all_operations()) if op.path not in STREAMS]
        self.tables = self._write_tables()
        self._strategies: dict = {}
        self._known: tuple | None = None    # the row counts right now, when the last request was a refused write
        self._counts = sql.SQL("SELECT ARRAY[{}]").format(sql.SQL(", ").join(
            sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(t)) for t in self.tables))

    def _write_tables(self) -> list[str]:
        """Every table the server's role may add rows to or delete rows from (one count each)."""
        rows = self.owner.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
            " AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridwatch_app')"
            " AND (has_table_privilege('gridwatch_app', c.oid, 'INSERT') OR has_table_privilege('gridwatch_app', c.oid, 'DELETE'))"
            " ORDER BY 1").fetchall()
        return [r[0] for r in rows if r[0] not in LEGITIMATE_ON_REFUSAL]

    def counts(self) -> tuple:
        return tuple(self.owner.execute(self._counts).fetchone()[0])

    def _send(self, method: str, url: str, **kw) -> httpx.Response:
        self._known = None      # counts known from before this request are stale once it is sent
        return self._run(self.client.request(method, url, **kw))

    def _run(self, coroutine):
        """Run ``coroutine`` on the fuzzer's loop (its own thread) and wait for its answer."""
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, REQUEST_TIMEOUT), self.loop)
        return future.result(REQUEST_TIMEOUT + 5)

    def close(self) -> None:
        try:
            self._run(self.client.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._loop_thread.join(10)
            self.loop.close()
            self.owner.close()

    # -- one shard -------------------------------------------------------------------------------
    def run_shard(self, operations: list, quota: int, log=print) -> ShardResult:
        """Send at least ``quota`` generated requests over ``operations``, cheapest where it is cheap.

        First every operation gets its floor: FLOOR valid requests (HEAVY_FLOOR for heavy ones) and
        NEGATIVE invalid ones where the schema leaves something to break; what each request cost
        (generation and answer) is measured meanwhile. The rest of the quota then goes to the
        operations that have more distinct examples to give, in inverse proportion to that cost,
        with a new seed per round, until the quota is met (or every operation ran dry).
        """
        result = ShardResult(by_operation={key_of(op): 0 for op in operations})
        started = time.monotonic()
        cost, open_ops = {}, []
        for op in operations:
            floor = HEAVY_FLOOR if is_heavy(op) else FLOOR
            t0, before = time.monotonic(), result.sent
            got = self._run_operation(op, GenerationMode.POSITIVE, floor, 0, result)
            self._run_operation(op, GenerationMode.NEGATIVE, NEGATIVE, 0, result)
            spent, n = time.monotonic() - t0, result.sent - before
            result.timings.append((spent, n, key_of(op)))
            cost[key_of(op)] = spent / max(n, 1)
            if got >= floor * 0.9 and not is_heavy(op):
                open_ops.append(op)                # not run dry: may give more
        for rnd in range(1, MAX_ROUNDS + 1):
            missing = quota - result.sent
            if missing <= 0 or not open_ops:
                break
            weights = {key_of(op): 1.0 / max(cost[key_of(op)], 1e-4) for op in open_ops}
            total = sum(weights.values())
            log(f"  round {rnd}: {missing} more over {len(open_ops)} operations")
            still_open = []
            for op in open_ops:
                asked = math.ceil(missing * 1.02 * weights[key_of(op)] / total)
                t0, before = time.monotonic(), result.sent
                got = self._run_operation(op, GenerationMode.POSITIVE, asked, rnd, result)
                result.timings.append((time.monotonic() - t0, result.sent - before, key_of(op)))
                if got >= asked * 0.9:
                    still_open.append(op)
                if result.sent >= quota:
                    break
            open_ops = still_open
        result.seconds = time.monotonic() - started
        return result

    def _run_operation(self, op, mode: GenerationMode, examples: int, rnd: int, result: ShardResult) -> int:
        """Up to ``examples`` requests of ``mode`` (fewer when the input space is smaller); how many were sent."""
        write = op.method.upper() in WRITE_METHODS
        key = key_of(op)
        sent_before = result.sent
        strategy = self._strategies.get((key, mode))
        if strategy is None:
            strategy = self._strategies[(key, mode)] = op.as_strategy(generation_mode=mode)

        @settings(max_examples=examples, deadline=None, database=None, derandomize=rnd == 0, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), print_blob=False)
        @given(case=strategy)
        def fuzz(case):
            request = self._request(case)
            if request is None:
                result.unsendable += 1
                return
            before = (self._known if self._known is not None else self.counts()) if write else None
            errors = len(self.errors)
            try:
                response = self._send(*request[:2], **request[2])
            except (TypeError, ValueError, UnicodeEncodeError, httpx.InvalidURL, httpx.LocalProtocolError):
                result.unsendable += 1                  # not sendable over HTTP at all
                return
            except Exception as e:  # noqa: BLE001 - the app itself blew up: a finding, not a crash of the fuzz
                result.sent += 1
                result.by_operation[key] += 1
                result.failures.append((key, request[1], request[2], "exception", repr(e)[:300]))
                return
            result.sent += 1
            result.by_operation[key] += 1
            result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                raised = self.errors[-1][-1500:] if len(self.errors) > errors else response.text[:300]
                result.failures.append((key, request[1], request[2], response.status_code, raised))
            elif write and response.status_code >= 400:
                result.refused_writes_checked += 1
                after = self._known = self.counts()        # also the counts before the next request
                if after != before:
                    changed = {t: (b, a) for t, b, a in zip(self.tables, before, after) if a != b}
                    result.failures.append((key, request[1], request[2], "partial write", response.status_code, changed))

        if rnd:
            fuzz = seed(rnd)(fuzz)
        try:
            fuzz()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            # nothing to make invalid (no parameters, no body): its valid requests are all there is
        return result.sent - sent_before

    def _request(self, case) -> tuple[str, str, dict] | None:
        """(method, url, httpx keywords) of a generated case with the token, or None if unsendable."""
        kwargs = case.as_transport_kwargs(base_url=self.world.url)
        kw = {k: v for k, v in kwargs.items() if k in SENDABLE and v is not None}
        headers = {str(k): str(v) for k, v in (kw.pop("headers", None) or {}).items()}
        cookies = kw.pop("cookies", None)
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        headers.update(AUTH)
        if isinstance(kw.get("data"), (bytes, str)):
            kw["content"] = kw.pop("data")
        return kwargs["method"].upper(), kwargs["url"], {"headers": headers, **kw}
