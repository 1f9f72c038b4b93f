"""Many screens at once: open pages with live updates while cases arrive, on this machine (127.0.0.1).

An asyncio client (no threads per page) plays N open pages against real ``gridwatch serve``
processes, each page as the dashboard does it: one server-sent-events stream for its region
(``/api/v1/live?region=…``, the wall: everything) and, when the stream says its data changed, the
requests the page then makes, in parallel as a browser does — the region page's own Dash callbacks
(its view; for a county page also its case register) and the vector tiles whose version changed.
A wall is modelled as the province's drill-down view (the wall page's own callbacks were being
reworked while this was written). Meanwhile one writer posts ``RATE`` cases a second (signed in as
a province operator, bench/identity.py) at random grids of the province.

Per scenario (N pages; one process, then four workers with a replica and Redis):

- p50/p95 of the time from the POST that commits a case to the moment an open page concerned by
  it (its county page, every wall) holds the refreshed data (includes the write itself);
- errors (failed requests, refused streams, updates never seen), server CPU per open page;
- the largest N that holds (county p95 ≤ 1 s, wall p95 ≤ 2 s, no error) on this machine: a ramp of N
  up to the first N that fails, then bisection between the last N held and that one until they are
  within ``REFINE`` (10 %) of each other, each shape bounded by ``SHAPE_BUDGET`` seconds. One
  scenario per N decides held or not, so on a noisy machine the figure carries that noise.

Progress lines (which shape, which N and why, the time elapsed) are printed as it runs.

Also: ``/healthz`` with 200 open live streams vs with none; requests an idle page makes (none:
measured by counting, no timer). Every scenario is bounded in time (``SECONDS``). The client runs
on the same two cores as the servers: the capacities are a floor.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from psycopg.rows import dict_row

__all__ = ["run"]

RATE = 5.0                    # cases per second, random over the province
SECONDS = 15.0                # each scenario's measured window
SETTLE = 3.0                  # pages open and settle before the window
ONE_PROCESS = (10, 25, 50, 100, 200, 400)
FOUR_WORKERS = (10, 25, 50, 100, 200, 400)
P95_LIMIT = 1.0               # a county page: its own county's case shows within a second (p95)
WALL_P95_LIMIT = 2.0          # a wall hears of every case and refreshes at most once a second (coalesced)
REFINE = 0.10                 # after the ramp, bisect until the last N held and the first failed are within 10 %
SHAPE_BUDGET = 200.0          # seconds one shape's ramp and refinement may take (each N is a bounded scenario)
STREAMS = 200
SEED_CASES = 20_000
TILE_LAYERS = ("case_counts", "cases")
HEADERS: dict = {}            # the bench operator's bearer token (bench/identity.py), set by run()


def _row(name, seconds, baseline, baseline_seconds, n, note):
    return {"name": name, "seconds": seconds, "baseline": baseline, "baseline_seconds": baseline_seconds,
            "ratio": seconds / baseline_seconds if baseline_seconds else float("nan"), "n": n, "note": note}


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    return z, int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


# -- servers ------------------------------------------------------------------------------------

class Served:
    """``gridwatch serve`` in a subprocess (optionally several workers), with its CPU time."""

    def __init__(self, database_url: str, env: dict | None = None, workers: int = 1):
        from gridwatch.cluster import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkdtemp(prefix="gw-load-")) / "server.log"
        environment = {**os.environ, "DATABASE_URL": database_url, "GRIDWATCH_WORKERS": str(workers),
                       "GRIDWATCH_LIVE_MAX": "5000", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "gridwatch.cli", "serve", "--port", str(self.port)],
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=environment)
        deadline = time.monotonic() + 120
        import urllib.request

        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200 and json.loads(r.read())["live"]["listening"]:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not come up in 120 s")
            time.sleep(0.2)
        if workers > 1:                          # every worker up and listening
            deadline = time.monotonic() + 60
            while len(self._tree()) < workers + 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.0)

    def _tree(self):
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu(self) -> float:
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except Exception:  # noqa: BLE001 - a process that just ended
                pass
        return total

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.log.parent, ignore_errors=True)


# -- the client ---------------------------------------------------------------------------------

async def _sse(host: str, port: int, path: str):
    """(reader, writer, status) of a server-sent-events request."""
    reader, writer = await asyncio.open_connection(host, port)
    auth = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n{auth}\r\n".encode())
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    return reader, writer, status


async def _events(reader):
    """(event, data) pairs from a chunked SSE body."""
    kind = None
    while True:
        line = await reader.readline()
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text.startswith("event:"):
            kind = text[6:].strip()
        elif text.startswith("data:"):
            yield kind, json.loads(text[5:])


class Page:
    def __init__(self, kind: str, code: str, tiles: list[tuple[int, int, int]]):
        self.kind, self.code, self.tiles = kind, code, tiles
        self.history: list[tuple[int, float]] = []     # (cases version loaded, when the refresh finished)
        self.requests = 0

    def concerns(self, county: str) -> bool:
        return self.kind == "wall" or county.startswith(self.code) or self.code.startswith(county)


def _view_call(code: str, versions: dict) -> dict:
    """The region page's ``load`` callback (dashboard/pages/region.py) as the browser posts it."""
    live = {t: versions.get(t, 0) for t in ("cases", "hazard", "centre", "region", "checkin", "township_coverage")}
    return {"output": "..region-data.data...region-error.children...region-error.hidden...region-retry.disabled..",
            "outputs": [{"id": "region-data", "property": "data"}, {"id": "region-error", "property": "children"},
                        {"id": "region-error", "property": "hidden"}, {"id": "region-retry", "property": "disabled"}],
            "inputs": [{"id": "region-code", "property": "data", "value": code},
                       {"id": "region-live", "property": "data", "value": live},
                       {"id": "region-retry", "property": "n_intervals", "value": None}],
            "changedPropIds": ["region-live.data"],
            "state": [{"id": "shell-versions", "property": "data", "value": versions},
                      {"id": "shell-lang", "property": "data", "value": "zh"}]}


def _register_call(code: str, versions: dict) -> dict:
    """The region page's case register callback, fired when the cases version changed."""
    return {"output": "region-cases.children", "outputs": {"id": "region-cases", "property": "children"},
            "inputs": [{"id": "region-code", "property": "data", "value": code},
                       {"id": "region-case-search", "property": "value", "value": None},
                       {"id": "region-cases-live", "property": "data", "value": {"cases": versions.get("cases", 0)}},
                       {"id": "shell-lang", "property": "data", "value": "zh"}],
            "changedPropIds": ["region-cases-live.data"],
            "state": [{"id": "shell-versions", "property": "data", "value": versions}]}


async def _page(page: Page, base: str, client, layers_by_name, stats, stop: asyncio.Event):
    from layers.render import versions_of

    u = urlparse(base)
    path = "/api/v1/live" + (f"?region={page.code}" if page.kind != "wall" else "")
    try:
        reader, writer, status = await _sse(u.hostname, u.port, path)
    except OSError:
        stats["errors"] += 1
        return
    if status != 200:
        stats["errors"] += 1
        stats["refused"] += 1
        writer.close()
        return
    first = True
    try:
        async for kind, data in _events(reader):     # until cancelled: changes sent before the stop still count
            if kind != "version":
                continue
            if first:
                first = False
                continue
            try:        # what the page asks for after a push, in parallel as a browser does: its data, the changed tiles
                if page.kind == "county":      # the region page's own callbacks: its view, its case register
                    calls = [client.post("/_dash-update-component", json=body)
                             for body in (_view_call(page.code, data), _register_call(page.code, data))]
                else:                           # a wall: the province's view (the drill-down page of 62)
                    calls = [client.post("/_dash-update-component", json=_view_call(page.code, data))]
                calls += [client.get(f"/tiles/{name}/{z}/{x}/{y}.pbf", params={"v": versions_of(data, layers_by_name[name])})
                          for name in TILE_LAYERS for z, x, y in page.tiles]
                answers = await asyncio.gather(*calls)
                page.requests += len(answers)
                bad = sum(1 for r in answers if r.status_code != 200)
                if bad:
                    stats["errors"] += bad
                    continue
                page.history.append((int(data.get("cases", 0)), time.perf_counter()))
            except Exception:  # noqa: BLE001 - counted: the page failed to refresh
                stats["errors"] += 1
    except (OSError, asyncio.IncompleteReadError):
        if not stop.is_set():
            stats["errors"] += 1
    finally:
        writer.close()


async def _writer(base: str, database_url: str, points: list[dict], sent: list, stop: asyncio.Event, stats):
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30, headers=HEADERS) as client, \
            await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        k = 0
        start = time.perf_counter()
        while not stop.is_set():
            item = points[k % len(points)]
            t_send = time.perf_counter()
            try:
                r = await client.post("/api/v1/cases", json={**item, "title": f"load {k}"})
                if r.status_code != 201:
                    stats["errors"] += 1
                else:
                    cur = await conn.execute("SELECT version FROM data_version WHERE name = 'cases'")
                    version = (await cur.fetchone())[0]
                    county = r.json().get("county_code") or r.json().get("prefecture_code") or ""
                    sent.append((county, version, t_send))
                    stats.setdefault("post", []).append(time.perf_counter() - t_send)
            except Exception:  # noqa: BLE001
                stats["errors"] += 1
            k += 1
            next_at = start + k / RATE
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def _scenario(base: str, database_url: str, pages: list[Page], points, seconds: float) -> dict:
    import httpx

    import layers

    layers_by_name = {layer.name: layer for layer in layers.LAYERS}
    stats = {"errors": 0, "refused": 0}
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits, headers=HEADERS) as client:
        tasks = [asyncio.create_task(_page(p, base, client, layers_by_name, stats, stop)) for p in pages]
        await asyncio.sleep(SETTLE)
        sent: list = []
        w = asyncio.create_task(_writer(base, database_url, points, sent, stop, stats))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.sleep(4.0)           # the last changes reach the pages (bursts are coalesced per second)
        w.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(w, *tasks, return_exceptions=True)
    latencies: dict[str, list[float]] = {"county": [], "wall": []}
    missed = 0
    cutoff = max((t for _, _, t in sent), default=0) - 2.0
    for county, version, t_send in sent:
        if t_send > cutoff:
            continue
        for p in pages:
            if not p.concerns(county):
                continue
            done = next((when for v, when in p.history if v >= version), None)
            if done is None:
                missed += 1
            else:
                latencies[p.kind].append(max(done - t_send, 0.0))
    posts = sorted(stats.get("post", [])) or [float("nan")]
    out = {"n": len(pages), "cases": len(sent), "missed": missed, "errors": stats["errors"] + missed,
           "refused": stats["refused"], "requests": sum(p.requests for p in pages),
           "post_p95": posts[int(0.95 * (len(posts) - 1))]}
    for kind, values in latencies.items():
        values.sort()
        out[f"{kind}_samples"] = len(values)
        out[f"{kind}_p50"] = statistics.median(values) if values else float("nan")
        out[f"{kind}_p95"] = values[int(0.95 * (len(values) - 1))] if values else float("nan")
    return out


def _pages(n: int, counties: list[dict]) -> list[Page]:
    """One wall per ten pages, the rest county pages spread over the counties."""
    out = []
    for i in range(n):
        if i % 10 == 0:
            out.append(Page("wall", "62", [_tile_of(103.8, 36.06, 6)]))
        else:
            c = counties[i % len(counties)]
            out.append(Page("county", c["code"], [_tile_of(c["lon"], c["lat"], 9)]))
    return out


def _measure(served: Served, database_url: str, counties, points, n: int) -> dict:
    """One scenario of ``n`` open pages against ``served``: its figures and whether it held."""
    cpu0, t0 = served.cpu(), time.perf_counter()
    res = asyncio.run(_scenario(served.url, database_url, _pages(n, counties), points, SECONDS))
    res["cpu_per_page"] = (served.cpu() - cpu0) / (time.perf_counter() - t0) / n
    res["loadavg"] = os.getloadavg()[0]
    county_ok = res["county_samples"] == 0 or res["county_p95"] <= P95_LIMIT
    wall_ok = res["wall_samples"] == 0 or res["wall_p95"] <= WALL_P95_LIMIT
    res["held"] = res["errors"] == 0 and res["county_samples"] + res["wall_samples"] > 0 and county_ok and wall_ok
    return res


def _elapsed(since: float) -> str:
    s = int(time.perf_counter() - since)
    return f"{s // 60}m{s % 60:02d}s"


def _search(served: Served, database_url: str, counties, points, steps, label: str, started: float) -> dict:
    """The largest N that holds: the ramp ``steps`` up to the first N that fails, then bisection
    between the last N held and that one until they are within ``REFINE`` of each other (or the
    shape's time, ``SHAPE_BUDGET``, is spent). Returns {"runs": [...], "held": N or 0, "failed": N or None,
    "refined": bool}. Each N is one bounded scenario; progress goes to stdout as it runs."""
    shape_start = time.perf_counter()
    runs: dict[int, dict] = {}

    def measure(n: int, why: str) -> dict:
        print(f"    [{label}] N={n} ({why}) … elapsed {_elapsed(started)}", flush=True)
        res = runs[n] = _measure(served, database_url, counties, points, n)
        print(f"    [{label}] N={n:>4}: county p50 {res['county_p50'] * 1000:6.0f} p95 {res['county_p95'] * 1000:6.0f} ms "
              f"(n={res['county_samples']})  wall p50 {res['wall_p50'] * 1000:6.0f} p95 {res['wall_p95'] * 1000:6.0f} ms "
              f"(n={res['wall_samples']})  errors {res['errors']} (missed {res['missed']})  cases {res['cases']}  "
              f"CPU/page {res['cpu_per_page'] * 100:.2f}%  load {res['loadavg']:.1f}  {'held' if res['held'] else 'NOT held'}",
              flush=True)
        return res

    held, failed = 0, None
    for n in steps:
        if measure(n, "ramp")["held"]:
            held = n
        else:
            failed = n
            break
    refined = False
    while failed is not None and failed - held > max(1.0, REFINE * max(held, 1)):
        if time.perf_counter() - shape_start > SHAPE_BUDGET:
            print(f"    [{label}] refinement stopped: this shape's {SHAPE_BUDGET:.0f} s are spent "
                  f"(held {held}, failed {failed})", flush=True)
            break
        mid = (held + failed) // 2
        if mid in (held, failed):
            break
        refined = True
        if measure(mid, f"refining between {held} and {failed}")["held"]:
            held = mid
        else:
            failed = mid
    return {"runs": [runs[n] for n in sorted(runs)], "held": held, "failed": failed, "refined": refined,
            "best": runs.get(held), "worst": runs.get(failed) if failed is not None else None}


# -- 200 open streams vs /healthz -----------------------------------------------------------------

async def _healthz_times(base: str, n: int) -> list[float]:
    import httpx

    out = []
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=HEADERS) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            r = await client.get("/healthz")
            assert r.status_code == 200
            out.append(time.perf_counter() - t0)
    return out


async def _with_streams(base: str, streams: int) -> tuple[list[float], int]:
    u = urlparse(base)
    opened = []
    for _ in range(streams):
        reader, writer, status = await _sse(u.hostname, u.port, "/api/v1/live")
        opened.append((writer, status))        # never read again: a slow or stuck client
    await asyncio.sleep(1.0)
    times = await _healthz_times(base, 30)
    ok = sum(1 for _, s in opened if s == 200)
    for writer, _ in opened:
        writer.close()
    return times, ok


# -- setup ----------------------------------------------------------------------------------------

def _seed(database_url: str) -> tuple[list[dict], list[dict]]:
    """Cases in the last 30 days (so aggregates have work), counties with a label point, POST bodies."""
    from bench.intake import _points
    from gridwatch.db import open_pool, transaction
    from gridwatch.intake import create_cases

    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        items = _points(conn, SEED_CASES + 2_000, 11)
        counties = conn.execute("""SELECT code, ST_X(label_point) AS lon, ST_Y(label_point) AS lat FROM region
                                   WHERE level = 'county' ORDER BY code""").fetchall()
    pool = open_pool(database_url, max_size=2, name="bench-load-seed")
    try:
        for b in range(0, SEED_CASES, 5_000):
            with transaction(pool) as conn:
                create_cases(conn, items[b:b + 5_000])
    finally:
        pool.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE cases")
    rng = random.Random(5)
    posts = items[SEED_CASES:]
    rng.shuffle(posts)
    return counties, posts


class _Redis:
    """A throwaway redis-server on a free port (Debian's redis-server)."""

    def __init__(self):
        from gridwatch.cluster import free_port

        self.dir = Path(tempfile.mkdtemp(prefix="gw-load-redis-"))
        port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.url = f"redis://127.0.0.1:{port}/0"
        import redis

        deadline = time.monotonic() + 15
        while True:
            try:
                if redis.Redis.from_url(self.url).ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class _Primary:
    """Enough of a Cluster for ReplicaCluster.attach: the bench's primary on ``port``."""

    def __init__(self, port: int):
        self.port = port

    def running(self) -> bool:
        return True


def run(database_url: str) -> list[dict]:
    from gridwatch.cluster import free_port
    from gridwatch.replica import ReplicaCluster

    from bench.identity import auth_header, operator_token

    out: list[dict] = []
    started = time.perf_counter()
    print(f"  seeding {SEED_CASES:,} cases … elapsed {_elapsed(started)}", flush=True)
    counties, posts = _seed(database_url)
    HEADERS.clear()
    HEADERS.update(auth_header(operator_token(database_url)))

    # 1. one process
    print(f"  one process: starting … elapsed {_elapsed(started)}", flush=True)
    one = Served(database_url)
    try:
        print(f"    /healthz with none, then with {STREAMS} open live streams … elapsed {_elapsed(started)}", flush=True)
        idle = asyncio.run(_healthz_times(one.url, 30))
        loaded, ok = asyncio.run(_with_streams(one.url, STREAMS))
        out.append(_row(f"/healthz with {STREAMS} open live streams (median)", statistics.median(loaded),
                        "/healthz with none (median)", statistics.median(idle), 30,
                        f"{ok}/{STREAMS} streams accepted; max {max(loaded) * 1000:.0f} ms (was 13 s with 45 threaded streams)"))
        shape1 = _search(one, database_url, counties, posts, ONE_PROCESS, "one process", started)
    finally:
        one.stop()

    # 2. four workers, a streaming replica for reads, Redis for the shared caches
    print(f"  four workers + replica + Redis: starting … elapsed {_elapsed(started)}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="gw-load-replica-", dir="/tmp"))
    os.chmod(root, 0o755)
    replica = ReplicaCluster(root, free_port()).attach(_Primary(urlparse(database_url).port))
    redis = None
    shape4: dict = {"runs": [], "held": 0, "failed": None, "refined": False, "best": None, "worst": None}
    try:
        replica.start()
        redis = _Redis()
        read_url = replica.url(urlparse(database_url).path.lstrip("/"))
        four = Served(database_url, env={"GRIDWATCH_READ_URL": read_url, "GRIDWATCH_REDIS_URL": redis.url,
                                         "GRIDWATCH_POOL_SIZE": "6"}, workers=4)
        try:
            shape4 = _search(four, database_url, counties, posts, FOUR_WORKERS, "4 workers", started)
        finally:
            four.stop()
    finally:
        if redis is not None:
            redis.stop()
        replica.stop()
        shutil.rmtree(root, ignore_errors=True)

    def ms(x):
        return "—" if x != x else f"{x * 1000:.0f} ms"

    for label, shape in (("one process", shape1), ("4 workers + replica + Redis", shape4)):
        for r in shape["runs"]:
            out.append(_row(f"load {label}, N={r['n']} pages: county page, commit → updated (p95)", r["county_p95"],
                            "POST /api/v1/cases round trip, same run (p95)", r["post_p95"], r["county_samples"],
                            f"county p50 {ms(r['county_p50'])}; walls p50 {ms(r['wall_p50'])} p95 {ms(r['wall_p95'])} "
                            f"(n={r['wall_samples']}, at most one refresh a second); errors {r['errors']}; "
                            f"{r['cases']} cases at {RATE:g}/s; server CPU {r['cpu_per_page'] * 100:.2f}% of a core per page; "
                            f"machine load average {r['loadavg']:.1f} on {os.cpu_count()} cores; "
                            f"{'held' if r['held'] else 'not held'}"))
        top, failed = shape["best"], shape["worst"]
        how = (f"ramp {', '.join(str(n) for n in (ONE_PROCESS if label == 'one process' else FOUR_WORKERS))} to the "
               f"first N that failed, then bisection" + ("" if shape["refined"] else " (nothing to refine)"))
        out.append(_row(f"load {label}: largest N held", top["county_p95"] if top else float("nan"),
                        "POST /api/v1/cases round trip, same run (p95)", top["post_p95"] if top else float("nan"),
                        shape["held"],
                        f"N = {shape['held']} open pages (one in ten a wall) held: county p95 ≤ {P95_LIMIT:g} s, "
                        f"wall p95 ≤ {WALL_P95_LIMIT:g} s, no error"
                        + (f"; N = {failed['n']} did not (county p95 {ms(failed['county_p95'])}, wall p95 "
                           f"{ms(failed['wall_p95'])}, errors {failed['errors']})" if failed else "; the largest N tried")
                        + f"; {how}; {len(shape['runs'])} scenarios of {SECONDS:g} s"))
    print(f"  load bench done in {_elapsed(started)}", flush=True)
    return out
