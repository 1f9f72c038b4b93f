"""Many screens at once: open pages with live updates while cases arrive, on this machine (127.0.0.1).

An asyncio client (no threads per page) plays N open pages against real ``gridwatch serve``
processes. The mix: of every ten pages one is a wall, three are workbenches and six are county
pages (N = 10: 1 + 3 + 6; the counties taken in turn). Each page holds one server-sent-events stream
as assets/gridwatch.js opens it (``/api/v1/live?region=<county>`` on a county page, by its path;
``?mine=true`` on ``/workbench``, which the server scopes to the signed-in operator's county; the
unscoped stream on ``/wall``, the province) and, when the
stream says data changed, makes the requests its browser then makes, in parallel as the browser does:

- a **county page** (``/region/<county>``, signed in as a province operator): its own Dash callbacks
  (its view and its case register, bodies as dashboard/pages/region.py's callbacks post them) and
  the vector tiles whose version changed;
- a **wall** (``/wall``, the province; signed in as a kiosk account of role ``wall``): the ``/wall``
  page's own server callbacks that run on a live change — ``load`` (``shell-versions`` → the data,
  the panels, the map's figure or patch and the takeover, in one answer) — and, as soon as the map's
  figure (or its patch) arrives, the tiles of each map layer whose URL changed,
  in the view the browser fits to the prefecture on tour (a 1100×800 panel; each wall's tour stands
  at a different prefecture; the tour's own timer is not played);
- a **workbench** (``/workbench``, signed in as an operator *of its county*, bench/identity.py, so
  row-level security limits its queue): the page's ``load`` (``shell-versions`` → the queue and the
  notifications, drawn in the same answer).

Walls and workbenches are played from the served app itself: at the start of each scenario the
client fetches ``/_dash-dependencies``, ``/_dash-layout`` and each page's layout from Dash's page
router (``_pages_content``, with that page's account) once, and builds every callback body (output,
inputs, state, changedPropIds, the values of the page's components) from them, following the chain
of server callbacks as the renderer does (clientside callbacks make no request and are not played).
When a wall opens, its callbacks run once (the map drawn whole); county pages and workbenches make
no request until their first change. Meanwhile one writer posts ``RATE`` cases a second (signed in as
a province operator) at random grids of the province.

Per scenario (N pages; one process, then four workers with a replica and Redis):

- p50/p95 of the time from the POST that commits a case to the moment an open page concerned by it
  holds the refreshed data (includes the write itself), per kind: its county page, the workbenches of
  its county, every wall;
- errors (failed requests, refused streams, updates never seen), server CPU per open page, requests
  per refresh of each kind, the workbenches' queue length (non-zero: row-level security lets them
  see their county's cases);
- the largest N that holds (county p95 ≤ 1 s, workbench p95 ≤ 1 s, wall p95 ≤ 2 s, no error) on this
  machine: a ramp of N up to the first N that fails, then bisection between the last N held and
  that one until they are within ``REFINE`` (10 %) of each other, each shape bounded by
  ``SHAPE_BUDGET`` seconds. One scenario per N decides held or not, so on a noisy machine the figure
  carries that noise.

Every latency row is a ratio to the POST round trip of the same run. Progress lines (which shape,
which N and why, the time elapsed) are printed as it runs.

Also: ``/healthz`` with 200 open live streams vs with none. Every scenario is bounded in time
(``SECONDS``). The client runs on the same two cores as the servers: the capacities are a floor.

The workbench's stream follows its user (``?mine=true``): a workbench hears only of its county's
cases. ``GRIDWATCH_BENCH_WORKBENCH_UNSCOPED=1`` plays the province-wide stream the page held before
(every workbench woken by every case of the province), for comparison.

``GRIDWATCH_BENCH_LOAD_QUICK=1``: a short check (under a minute): fewer seeded cases, one process,
N = 10 only, 8 s, no four-worker shape.
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

QUICK = os.environ.get("GRIDWATCH_BENCH_LOAD_QUICK", "") not in ("", "0")   # a short check: one shape, one N
# The workbench's stream as gridwatch.js opens it on /workbench: the user's own scope (?mine=true, an
# operator of one county). =1 plays the province-wide stream instead (what the page held before).
WORKBENCH_UNSCOPED = os.environ.get("GRIDWATCH_BENCH_WORKBENCH_UNSCOPED", "") not in ("", "0")
RATE = 5.0                    # cases per second, random over the province
SECONDS = 8.0 if QUICK else 15.0   # each scenario's measured window
SETTLE = 3.0                  # pages open and settle before the window
ONE_PROCESS = (10,) if QUICK else (10, 25, 50, 100, 200, 400)
FOUR_WORKERS = (10, 25, 50, 100, 200, 400)
P95_LIMIT = 1.0               # a county page: its own county's case shows within a second (p95)
WORKBENCH_P95_LIMIT = 1.0     # a workbench: a case of its operator's county is in the queue within a second (p95)
WALL_P95_LIMIT = 2.0          # a wall hears of every case and refreshes at most once a second (coalesced)
REFINE = 0.10                 # after the ramp, bisect until the last N held and the first failed are within 10 %
SHAPE_BUDGET = 200.0          # seconds one shape's ramp and refinement may take (each N is a bounded scenario)
STREAMS = 50 if QUICK else 200
SEED_CASES = 2_000 if QUICK else 20_000
TILE_LAYERS = ("case_counts", "cases")
WALL_MAP = (1100, 800)        # the wall's map panel in pixels (dashboard/pages/wall.py draws for this size)
MIX = "of every ten pages one a wall, three workbenches, six county pages"
HEADERS: dict = {}            # the bench operator's bearer token (bench/identity.py), set by run()
WALL_HEADERS: dict = {}       # the walls' kiosk account (role wall, the province), set by run()
COUNTY_OPERATORS: dict = {}   # {county code: bearer header of an operator of that county}, set by run()


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

async def _sse(host: str, port: int, path: str, headers: dict | None = None):
    """(reader, writer, status) of a server-sent-events request."""
    reader, writer = await asyncio.open_connection(host, port)
    auth = "".join(f"{k}: {v}\r\n" for k, v in (HEADERS if headers is None else headers).items())
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
    """One open page: ``kind`` is "county" (``/region/<code>``), "workbench" (``/workbench`` of an
    operator of county ``code``) or "wall" (``/wall``); ``headers`` its account's bearer token."""

    def __init__(self, kind: str, code: str, tiles: list[tuple[int, int, int]] | None = None,
                 headers: dict | None = None, tour: int = 0):
        self.kind, self.code, self.tiles, self.tour = kind, code, tiles or [], tour
        self.headers = dict(HEADERS if headers is None else headers)
        self.history: list[tuple[int, float]] = []     # (cases version loaded, when the refresh finished)
        self.requests = 0
        self.tile_requests = 0
        self.rows: list[int] = []                       # a workbench's queue length after each refresh
        self.values: dict = {}                          # a Dash page's component properties ("id.prop" → value)
        self.sources: dict[str, str] = {}               # a wall map's tile URL template per layer, as last drawn

    def concerns(self, county: str) -> bool:
        if self.kind == "wall":
            return True
        if self.kind == "workbench":                    # the operator's own county (row-level security)
            return county == self.code
        return county.startswith(self.code) or self.code.startswith(county)


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


# -- Dash pages played from the served app's own layout and callback graph ------------------------

def _component_values(tree, out: dict, ids: set) -> None:
    """Every component's properties in a Dash layout (JSON), as "id.prop" → value; string ids only."""
    if isinstance(tree, list):
        for node in tree:
            _component_values(node, out, ids)
        return
    if not isinstance(tree, dict):
        return
    props = tree.get("props")
    if isinstance(props, dict):
        cid = props.get("id")
        if isinstance(cid, str):
            ids.add(cid)
            for prop, value in props.items():
                if prop not in ("id", "children"):
                    out[f"{cid}.{prop}"] = value
        for value in props.values():
            if isinstance(value, (dict, list)):
                _component_values(value, out, ids)
    else:
        for value in tree.values():
            if isinstance(value, (dict, list)):
                _component_values(value, out, ids)


def _outputs(spec: str) -> list[tuple[str, str]]:
    """("id", "property") of a dependency's ``output`` (one, or several as ``..a.p...b.q..``)."""
    parts = spec[2:-2].split("...") if spec.startswith("..") and spec.endswith("..") else [spec]
    return [tuple(part.rsplit(".", 1)) for part in parts]


class DashPage:
    """A page as the browser holds it: its components' properties (the shell's layout from
    ``/_dash-layout`` and the page's own, as Dash's page router returns it for its path) and the
    server-side callbacks of ``/_dash-dependencies`` whose outputs and inputs are all on it."""

    def __init__(self, path: str, values: dict, ids: set, deps: list[dict]):
        self.path, self.values = path, values
        self.callbacks = []
        for dep in deps:
            if dep.get("clientside_function"):        # runs in the browser: no request
                continue
            outs = [i for i, _ in _outputs(dep["output"])]
            ins = [d["id"] for d in dep["inputs"]] + [d["id"] for d in dep.get("state", [])]
            if any(not isinstance(i, str) or i.startswith("{") or i not in ids for i in outs + ins):
                continue
            self.callbacks.append(dep)

    def triggered(self, changed: set) -> list[dict]:
        return [d for d in self.callbacks if any(f"{i['id']}.{i['property']}" in changed for i in d["inputs"])]

    @staticmethod
    def body(dep: dict, values: dict, changed: set) -> dict:
        """The request body Dash's renderer posts to ``/_dash-update-component`` for ``dep``."""
        outs = [{"id": i, "property": p} for i, p in _outputs(dep["output"])]

        def props(items):
            return [{"id": d["id"], "property": d["property"], "value": values.get(f"{d['id']}.{d['property']}")}
                    for d in items]

        return {"output": dep["output"], "outputs": outs if dep["output"].startswith("..") else outs[0],
                "inputs": props(dep["inputs"]), "state": props(dep.get("state", [])),
                "changedPropIds": [f"{d['id']}.{d['property']}" for d in dep["inputs"]
                                   if f"{d['id']}.{d['property']}" in changed]}


async def _open_site(client, paths: dict[str, dict]) -> dict[str, DashPage]:
    """{path: DashPage}: the callback graph and the shell's layout once, then each page's layout as
    Dash's page router serves it (``_pages_content``), fetched with that page's account."""
    deps = (await client.get("/_dash-dependencies")).raise_for_status().json()
    shell = (await client.get("/_dash-layout")).raise_for_status().json()
    router = next(d for d in deps if "_pages_content.children" in d["output"])
    out = {}
    for path, headers in paths.items():
        values: dict = {}
        ids: set = set()
        _component_values(shell, values, ids)
        values["_pages_location.pathname"], values["_pages_location.search"] = path, ""
        r = await client.post("/_dash-update-component", headers=headers,
                              json=DashPage.body(router, values, {"_pages_location.pathname"}))
        r.raise_for_status()
        _component_values(r.json()["response"]["_pages_content"]["children"], values, ids)
        page = out[path] = DashPage(path, values, ids, deps)
        if not page.triggered({"shell-versions.data"}):
            raise RuntimeError(f"{path}: no server callback of the page listens to shell-versions "
                               f"(the account may not open it); callbacks on it: {[d['output'] for d in page.callbacks]}")
    return out


def _tile_sources(tree, out: dict) -> None:
    """{layer: (URL template, minzoom, maxzoom)} of the map layers in a figure or a figure patch."""
    if isinstance(tree, list):
        for node in tree:
            _tile_sources(node, out)
    elif isinstance(tree, dict):
        source = tree.get("source")
        if isinstance(source, list) and source and isinstance(source[0], str) and "/tiles/" in source[0]:
            name = source[0].split("/tiles/", 1)[1].split("/", 1)[0]
            out[name] = (source[0], float(tree.get("minzoom", 0)), float(tree.get("maxzoom", 24)))
        for value in tree.values():
            if isinstance(value, (dict, list)):
                _tile_sources(value, out)


def _merc(lat: float) -> float:
    lat = max(min(lat, 85.0), -85.0)
    return math.log(math.tan(math.pi / 4 + lat * math.pi / 360))


def _view_tiles(bbox, width: int = WALL_MAP[0], height: int = WALL_MAP[1]) -> tuple[float, list[tuple[int, int, int]]]:
    """(zoom, 512-px tiles in view) of a map fitted to ``bbox`` as the wall's browser fits it
    (assets/gridwatch.js ``mapFigure``: the panel less 120 px for the colour bar, padding 0.1)."""
    b = [float(v) for v in bbox]
    dlon, dy = max(b[2] - b[0], 1e-6), max(_merc(b[3]) - _merc(b[1]), 1e-8)
    zx = math.log2((width - 120) * 360 / (512 * dlon))
    zy = math.log2(height * 2 * math.pi / (512 * dy))
    zoom = max(0.0, min(zx, zy, 18.0) - 0.1)
    lon = (b[0] + b[2]) / 2
    my = (_merc(b[1]) + _merc(b[3])) / 2
    world = 512 * 2 ** zoom
    cx, cy = (lon + 180) / 360 * world, (1 - my / math.pi) / 2 * world
    z = int(math.floor(zoom))
    size = 512 * 2 ** (zoom - z)
    last = (1 << z) - 1
    xs = range(max(0, int((cx - width / 2) // size)), min(last, int((cx + width / 2) // size)) + 1)
    ys = range(max(0, int((cy - height / 2) // size)), min(last, int((cy + height / 2) // size)) + 1)
    return zoom, [(z, x, y) for x in xs for y in ys]


async def _dash_refresh(page: Page, site: DashPage, client, versions: dict, stats) -> bool:
    """What a Dash page's browser does when ``shell-versions`` changes: the server callbacks that
    listen to it, then those listening to what they returned (in parallel within each step, as the
    renderer sends them), and a map's tiles whose URL changed as soon as its figure arrives.
    True when every request answered 200 (or 204: nothing to update)."""
    values = page.values
    values["shell-versions.data"] = versions
    changed = {"shell-versions.data"}
    ok = True

    async def call(dep: dict, fired: set) -> set:
        nonlocal ok
        r = await client.post("/_dash-update-component", json=DashPage.body(dep, values, fired), headers=page.headers)
        page.requests += 1
        if r.status_code == 204:
            return set()
        if r.status_code != 200:
            stats["errors"] += 1
            ok = False
            return set()
        answer = r.json().get("response", {})
        out = set()
        for cid, props in answer.items():
            for prop, value in props.items():
                values[f"{cid}.{prop}"] = value
                out.add(f"{cid}.{prop}")
        if page.kind == "wall" and "wall-figure.data" in out:       # the map: tiles whose URL changed
            await _wall_tiles(page, client, answer, stats)
        return out

    for _ in range(6):                # the pages' chains are two or three steps deep
        deps = site.triggered(changed)
        if not deps:
            break
        results = await asyncio.gather(*(call(d, changed) for d in deps))
        changed = set().union(*results)
    return ok


async def _wall_tiles(page: Page, client, answer: dict, stats) -> None:
    found: dict = {}
    _tile_sources(answer, found)
    data = page.values.get("wall-data.data") or {}
    bbox = (data.get("current") or {}).get("bbox") or data.get("province_bbox")
    if not found or not bbox:
        return
    zoom, tiles = _view_tiles(bbox)
    calls = []
    for name, (template, lo, hi) in found.items():
        if page.sources.get(name) == template or not lo <= zoom < hi:
            continue                      # same URL: the browser keeps the tiles it has
        page.sources[name] = template
        calls += [client.get(template.format(z=z, x=x, y=y), headers=page.headers) for z, x, y in tiles]
    answers = await asyncio.gather(*calls)
    page.requests += len(answers)
    page.tile_requests += len(answers)
    bad = sum(1 for r in answers if r.status_code not in (200, 204))
    if bad:
        stats["errors"] += bad


async def _page(page: Page, base: str, client, layers_by_name, stats, stop: asyncio.Event, sites: dict):
    from layers.render import versions_of

    u = urlparse(base)
    if page.kind == "county":                         # as gridwatch.js: the region in the path
        path = f"/api/v1/live?region={page.code}"
    elif page.kind == "workbench" and not WORKBENCH_UNSCOPED:
        path = "/api/v1/live?mine=true"               # the operator's own scope (its county), from its token
    else:
        path = "/api/v1/live"
    site = sites.get({"wall": "/wall", "workbench": "/workbench"}.get(page.kind, ""))
    if site is not None:              # a Dash page of its own: its components' properties, its account's view
        page.values = dict(sites[site.path].values)
        if page.kind == "wall":
            page.values["wall-tour.n_intervals"] = page.tour or None
    try:
        reader, writer, status = await _sse(u.hostname, u.port, path, page.headers)
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
                if page.kind == "wall":      # the wall opens: its callbacks run once, drawing the map whole
                    try:
                        await _dash_refresh(page, site, client, data, stats)
                    except Exception:  # noqa: BLE001 - counted
                        stats["errors"] += 1
                continue
            try:        # what the page asks for after a push, in parallel as a browser does
                if page.kind == "county":      # the region page's own callbacks: its view, its case register; its tiles
                    calls = [client.post("/_dash-update-component", json=body, headers=page.headers)
                             for body in (_view_call(page.code, data), _register_call(page.code, data))]
                    calls += [client.get(f"/tiles/{name}/{z}/{x}/{y}.pbf", headers=page.headers,
                                         params={"v": versions_of(data, layers_by_name[name])})
                              for name in TILE_LAYERS for z, x, y in page.tiles]
                    answers = await asyncio.gather(*calls)
                    page.requests += len(answers)
                    bad = sum(1 for r in answers if r.status_code != 200)
                    if bad:
                        stats["errors"] += bad
                        continue
                elif not await _dash_refresh(page, site, client, data, stats):   # a wall, a workbench
                    continue
                if page.kind == "workbench":
                    page.rows.append(len(page.values.get("workbench-data.data") or []))
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
        paths = {}
        for p in pages:               # each Dash page's layout, fetched once with an account that may open it
            if p.kind in ("wall", "workbench"):
                paths.setdefault("/" + p.kind, p.headers)
        sites = await _open_site(client, paths)
        tasks = [asyncio.create_task(_page(p, base, client, layers_by_name, stats, stop, sites)) for p in pages]
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
    latencies: dict[str, list[float]] = {k: [] for k in KINDS}
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
           "post_p95": posts[int(0.95 * (len(posts) - 1))],
           "mix": {k: sum(1 for p in pages if p.kind == k) for k in KINDS},
           "requests_by_kind": {k: sum(p.requests for p in pages if p.kind == k) for k in KINDS},
           "refreshes_by_kind": {k: sum(len(p.history) for p in pages if p.kind == k) for k in KINDS},
           "wall_tiles": sum(p.tile_requests for p in pages if p.kind == "wall"),
           "queue_rows": statistics.mean([x for p in pages for x in p.rows] or [0])}
    for kind, values in latencies.items():
        values.sort()
        out[f"{kind}_samples"] = len(values)
        out[f"{kind}_p50"] = statistics.median(values) if values else float("nan")
        out[f"{kind}_p95"] = values[int(0.95 * (len(values) - 1))] if values else float("nan")
    return out


KINDS = ("county", "workbench", "wall")
LIMITS = {"county": P95_LIMIT, "workbench": WORKBENCH_P95_LIMIT, "wall": WALL_P95_LIMIT}


def _pages(n: int, counties: list[dict]) -> list[Page]:
    """The mix: of every ten pages one a wall (``/wall``, the province, its tour spread over the
    prefectures), three workbenches (``/workbench`` of an operator of a county) and six county pages
    (``/region/<county>``), the counties taken in turn."""
    out = []
    for i in range(n):
        c = counties[i % len(counties)]
        if i % 10 == 0:
            out.append(Page("wall", "62", headers=WALL_HEADERS or HEADERS, tour=i // 10))
        elif i % 10 in (3, 6, 9):
            out.append(Page("workbench", c["code"], headers=COUNTY_OPERATORS.get(c["code"], HEADERS)))
        else:
            out.append(Page("county", c["code"], [_tile_of(c["lon"], c["lat"], 9)]))
    return out


def _measure(served: Served, database_url: str, counties, points, n: int) -> dict:
    """One scenario of ``n`` open pages against ``served``: its figures and whether it held."""
    cpu0, t0 = served.cpu(), time.perf_counter()
    res = asyncio.run(_scenario(served.url, database_url, _pages(n, counties), points, SECONDS))
    res["cpu_per_page"] = (served.cpu() - cpu0) / (time.perf_counter() - t0) / n
    res["loadavg"] = os.getloadavg()[0]
    ok = all(res[f"{k}_samples"] == 0 or res[f"{k}_p95"] <= LIMITS[k] for k in KINDS)
    res["held"] = res["errors"] == 0 and sum(res[f"{k}_samples"] for k in KINDS) > 0 and ok
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
        kinds = "  ".join(f"{k} p50 {res[f'{k}_p50'] * 1000:5.0f} p95 {res[f'{k}_p95'] * 1000:5.0f} ms (n={res[f'{k}_samples']})"
                          for k in KINDS)
        per = ", ".join(f"{k} {res['requests_by_kind'][k] / max(res['refreshes_by_kind'][k], 1):.1f}" for k in KINDS)
        print(f"    [{label}] N={n:>4}: requests a refresh: {per} (wall tiles {res['wall_tiles']}); "
              f"workbench queue {res['queue_rows']:.0f} rows", flush=True)
        print(f"    [{label}] N={n:>4}: {kinds}  errors {res['errors']} (missed {res['missed']})  cases {res['cases']}  "
              f"requests {res['requests']}  CPU/page {res['cpu_per_page'] * 100:.2f}%  load {res['loadavg']:.1f}  "
              f"{'held' if res['held'] else 'NOT held'}", flush=True)
        return res

    held, failed = 0, None
    for n in steps:
        if measure(n, "ramp")["held"]:
            held = n
        else:
            failed = n
            break
    refined = False
    while not QUICK and failed is not None and failed - held > max(1.0, REFINE * max(held, 1)):
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

    from bench.identity import auth_header, operator_token, scoped_tokens

    out: list[dict] = []
    started = time.perf_counter()
    print(f"  seeding {SEED_CASES:,} cases … elapsed {_elapsed(started)}", flush=True)
    counties, posts = _seed(database_url)
    HEADERS.clear()
    HEADERS.update(auth_header(operator_token(database_url)))
    WALL_HEADERS.clear()            # a wall signs in as a kiosk account (role wall) of the province
    WALL_HEADERS.update(auth_header(scoped_tokens(database_url, "wall", ["62"])["62"]))
    COUNTY_OPERATORS.clear()        # a workbench: an operator of its county (row-level security to that county)
    COUNTY_OPERATORS.update({code: auth_header(token) for code, token in
                             scoped_tokens(database_url, "operator", [c["code"] for c in counties]).items()})

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

    # 2. four workers, a streaming replica for reads, Redis for the shared caches (not in the quick check)
    shape4: dict = {"runs": [], "held": 0, "failed": None, "refined": False, "best": None, "worst": None}
    if not QUICK:
        print(f"  four workers + replica + Redis: starting … elapsed {_elapsed(started)}", flush=True)
        root = Path(tempfile.mkdtemp(prefix="gw-load-replica-", dir="/tmp"))
        os.chmod(root, 0o755)
        replica = ReplicaCluster(root, free_port()).attach(_Primary(urlparse(database_url).port))
        redis = None
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
        if QUICK and not shape["runs"]:
            continue
        for r in shape["runs"]:
            mix = ", ".join(f"{r['mix'][k]} {k}" for k in KINDS)
            tail = (f"N = {r['n']} open pages ({mix}; {MIX}); errors {r['errors']}; {r['cases']} cases at {RATE:g}/s; "
                    f"{r['requests']} page requests; server CPU {r['cpu_per_page'] * 100:.2f}% of a core per page; "
                    f"machine load average {r['loadavg']:.1f} on {os.cpu_count()} cores; {'held' if r['held'] else 'not held'}")
            for kind, what, also in (
                    ("county", "county page, commit → updated", "its view, its case register and its tiles"),
                    ("workbench", "workbench, commit → queue reloaded",
                     "the /workbench page's own callbacks, as an operator of the case's county; its stream "
                     + ("province-wide (GRIDWATCH_BENCH_WORKBENCH_UNSCOPED=1, as the page was before ?mine=true)"
                        if WORKBENCH_UNSCOPED else "its user's own scope (?mine=true) as the page opens it: "
                                                   "it hears of its county's cases only")),
                    ("wall", "wall, commit → updated",
                     "the /wall page's own callbacks and the map tiles whose URL changed; at most one refresh a second")):
                out.append(_row(f"load {label}, N={r['n']} pages: {what} (p95)", r[f"{kind}_p95"],
                                "POST /api/v1/cases round trip, same run (p95)", r["post_p95"], r[f"{kind}_samples"],
                                f"{kind} p50 {ms(r[f'{kind}_p50'])} p95 {ms(r[f'{kind}_p95'])} (limit {LIMITS[kind]:g} s; "
                                f"{also}); " + tail))
        top, failed = shape["best"], shape["worst"]
        steps = ONE_PROCESS if label == "one process" else FOUR_WORKERS
        how = (f"ramp {', '.join(str(n) for n in steps)} to the first N that failed, then bisection"
               + ("" if shape["refined"] else " (nothing to refine)"))
        limits = ", ".join(f"{k} p95 ≤ {LIMITS[k]:g} s" for k in KINDS)
        out.append(_row(f"load {label}: largest N held", top["county_p95"] if top else float("nan"),
                        "POST /api/v1/cases round trip, same run (p95)", top["post_p95"] if top else float("nan"),
                        shape["held"],
                        f"N = {shape['held']} open pages ({MIX}) held: {limits}, no error"
                        + (f"; N = {failed['n']} did not ("
                           + ", ".join(f"{k} p95 {ms(failed[f'{k}_p95'])}" for k in KINDS)
                           + f", errors {failed['errors']})" if failed else "; the largest N tried")
                        + f"; {how}; {len(shape['runs'])} scenarios of {SECONDS:g} s; the figure is the county p95 "
                          f"at that N"))
    print(f"  load bench done in {_elapsed(started)}", flush=True)
    return out
