"""Vector-tile speed: each tile served over HTTP vs the bare ST_AsMVT SQL's own time, same run.

For each layer and a spread of zooms over dense parts of the province (centred on grids that hold
cases), the tile is fetched from a real server (uvicorn in a thread, ``GET /tiles/…pbf`` without
If-None-Match, so every request renders) and, as the baseline, the same composed query
(``layers.render.tile_query``) is executed directly on a psycopg connection. The ratio shows what
the endpoint adds to its SQL (version lookup, ETag, FastAPI, HTTP); the design target is ≤ 1.3×.

Peer, same run, same tables: grid tiles z11–z14 against tipg (a Python OGC tile server, the
``bench`` extra: ``pip install -e .[bench]``) serving ``public.region`` filtered to grids from the
same ``geom_3857`` column, medians over the same tiles; a missing tipg is said, not hidden.

``run(database_url)`` inserts open cases and hazards into that database (use a throwaway copy:
``gridwatch bench`` gives each module its own). It needs the region hierarchy loaded.
"""

from __future__ import annotations

import http.client
import math
import socket
import statistics
import threading
import time

import psycopg
from psycopg.rows import dict_row

__all__ = ["run"]

CASES = 50_000
HAZARDS = 3_000
REPEAT = 15
ZOOMS = (5, 7, 9, 11, 12, 14)


def _row(name, seconds, baseline, baseline_seconds, n, note):
    return {"name": name, "seconds": seconds, "baseline": baseline, "baseline_seconds": baseline_seconds,
            "ratio": seconds / baseline_seconds if baseline_seconds else float("nan"), "n": n, "note": note}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    return z, int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


def _seed(conn) -> list[tuple[float, float]]:
    """Open cases and hazards inside 500 random grids; returns 5 grid label points to centre tiles on."""
    conn.execute("""INSERT INTO category (code, family, name_zh, name_en, department_kind, time_limit_hours)
                    VALUES ('bench', 'dispute', '基准', 'Benchmark', 'justice', 72) ON CONFLICT DO NOTHING""")
    conn.execute("""
        WITH g AS (SELECT code, geom FROM region WHERE level = 'grid' ORDER BY md5(code) LIMIT 500),
             p AS (SELECT g.code, (ST_Dump(ST_GeneratePoints(g.geom, %(per)s, 7))).geom AS geom FROM g)
        INSERT INTO cases (category_code, family, title, state, grade, geom, grid_code, village_code, township_code,
                           county_code, prefecture_code, deadline, reported_at)
        SELECT 'bench', 'dispute', 'bench', 'reported', (ARRAY['red','orange','yellow'])[1 + (row_number() OVER ()) %% 3],
               p.geom, p.code, left(p.code, 12), left(p.code, 9), left(p.code, 6), left(p.code, 4),
               now() + interval '1 day' - (row_number() OVER ()) %% 5 * interval '1 day', now() - interval '2 days'
        FROM p""", {"per": CASES // 500})
    conn.execute("""
        WITH g AS (SELECT code, geom FROM region WHERE level = 'grid' ORDER BY md5(code) LIMIT 500),
             p AS (SELECT g.code, (ST_Dump(ST_GeneratePoints(g.geom, %(per)s, 11))).geom AS geom FROM g)
        INSERT INTO hazard (kind, title, grade, geom, grid_code, village_code, township_code, county_code, prefecture_code)
        SELECT 'power_line', 'bench', 'yellow', ST_MakeLine(p.geom, ST_Translate(p.geom, 0.002, 0.001)), p.code,
               left(p.code, 12), left(p.code, 9), left(p.code, 6), left(p.code, 4)
        FROM p""", {"per": HAZARDS // 500})
    conn.commit()
    rows = conn.execute("""SELECT ST_X(label_point) AS lon, ST_Y(label_point) AS lat FROM region
                           WHERE level = 'grid' ORDER BY md5(code) LIMIT 5""").fetchall()
    return [(r["lon"], r["lat"]) for r in rows]


def _against_tipg(database_url: str, centres, client, headers: dict) -> list[dict]:
    """Grid tiles z11–z14: ours (HTTP) vs tipg's on the same table, each median over the same tiles."""
    import importlib.util
    import os
    import subprocess
    import sys
    from urllib.parse import quote

    if importlib.util.find_spec("tipg") is None:
        print("  tipg is not installed (pip install -e .[bench]): no peer comparison", flush=True)
        return []
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "TIPG_DB_SCHEMAS": '["public"]', "TIPG_DB_TABLES": '["public.region"]'}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    peer = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    rows = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                peer.request("GET", "/collections")
                r = peer.getresponse()
                r.read()
                if r.status == 200:
                    break
            except OSError:
                peer.close()
                peer = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if time.monotonic() > deadline or proc.poll() is not None:
                print("  tipg did not start: no peer comparison", flush=True)
                return []
            time.sleep(0.3)
        query = "geom-column=geom_3857&properties=code,name,source&filter=" + quote("level='grid'")
        for z in (11, 12, 13, 14):
            tiles = [_tile_of(lon, lat, z) for lon, lat in centres]
            ours, theirs = [], []
            for _ in range(REPEAT):
                for zz, x, y in tiles:
                    t0 = time.perf_counter()
                    client.request("GET", f"/tiles/grids/{zz}/{x}/{y}.pbf", headers=headers)
                    r = client.getresponse()
                    r.read()
                    ours.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    peer.request("GET", f"/collections/public.region/tiles/WebMercatorQuad/{zz}/{x}/{y}?{query}")
                    r = peer.getresponse()
                    body = r.read()
                    assert r.status == 200, (r.status, body[:200])
                    theirs.append(time.perf_counter() - t0)
            rows.append(_row(f"tile grids z{z} (HTTP, median) vs peer", statistics.median(ours),
                             "tipg, same table and filter (median)", statistics.median(theirs), len(ours),
                             "peer: tipg 1.x on uvicorn, one process each"))
    finally:
        peer.close()
        proc.terminate()
        proc.wait(10)
    return rows


def run(database_url: str) -> list[dict]:
    import uvicorn

    import layers
    from gridwatch.server import create_app
    from layers.render import tile_query

    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        centres = _seed(conn)

    port = _free_port()
    app = create_app(database_url)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    from bench.identity import auth_header, operator_token

    headers = auth_header(operator_token(database_url))   # signed in: row-level security shows the cases
    out: list[dict] = []
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # keep-alive, like a browser
    try:
        with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn:
            conn.execute("SET jit = off")  # as the endpoint runs its tiles (layers.render.render_tile)
            conn.execute("VACUUM ANALYZE cases")  # visibility map: index-only counts, as in a settled database
            conn.execute("VACUUM ANALYZE hazard")
            for layer in layers.LAYERS:
                zooms = [z for z in ZOOMS if layer.shows_at(z)]
                for z in zooms:
                    tiles = [_tile_of(lon, lat, z) for lon, lat in centres]
                    query = tile_query(layer)
                    bare, served, size = [], [], 0
                    for _ in range(REPEAT):
                        for zz, x, y in tiles:
                            t0 = time.perf_counter()
                            row = conn.execute(query, {"z": zz, "x": x, "y": y, "layer": layer.name}).fetchone()
                            bare.append(time.perf_counter() - t0)
                            size = max(size, len(row["tile"] or b""))
                            t0 = time.perf_counter()
                            client.request("GET", f"/tiles/{layer.name}/{zz}/{x}/{y}.pbf", headers=headers)
                            response = client.getresponse()
                            response.read()
                            assert response.status == 200, response.status
                            served.append(time.perf_counter() - t0)
                    out.append(_row(f"tile {layer.name} z{z} (HTTP, median)", statistics.median(served),
                                    "the tile's bare SQL (median)", statistics.median(bare), len(served),
                                    f"largest tile {size:,} bytes; {CASES:,} open cases, {HAZARDS:,} line hazards"))
        out.extend(_against_tipg(database_url, centres, client, headers))
    finally:
        client.close()
        server.should_exit = True
        thread.join(10)
    return out
