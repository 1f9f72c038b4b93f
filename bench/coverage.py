"""Coverage benchmarks: the full Gansu recompute, a county what-if and the k best sites.

Each figure has a naive baseline measured in the same run:

- grid distances for one prefecture, set-based (KNN on the GiST index, one statement) vs a Python
  loop sending one query per grid that orders every centre by its ellipsoidal distance;
- a what-if in one county (delta: only the townships the new centre's reach touches) vs the same
  what-if computed by recomputing the whole province with the new centre (no reuse of stored rows);
- the full recompute (every grid and township, gaps included) vs the per-grid loop over one
  prefecture scaled by nothing: both are reported with their own n.

``run(database_url)`` expects the Gansu hierarchy loaded; it generates the demo centres first.
"""

from __future__ import annotations

import statistics
import time

import psycopg
from psycopg.rows import dict_row

__all__ = ["run"]

NAIVE_NEAREST = """
    SELECT c.id, ST_Distance(c.geom::geography, g.label_point::geography) AS m
    FROM centre c, region g
    WHERE g.code = %s AND c.scenario IS NULL AND c.status IN ('established', 'entity') AND c.level = ANY(%s)
    ORDER BY ST_Distance(c.geom::geography, g.label_point::geography) LIMIT 1"""


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _row(name, seconds, baseline, baseline_seconds, n, note=""):
    return {"name": name, "seconds": seconds, "baseline": baseline, "baseline_seconds": baseline_seconds,
            "ratio": seconds / baseline_seconds if baseline_seconds else float("nan"), "n": n, "note": note}


def run(database_url: str) -> list[dict]:
    from etl.centres import load_demo
    from gridwatch import coverage
    from gridwatch.coverage import Hypothetical, _params, _rows, _sql, _x

    out: list[dict] = []
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn:
        load_demo(conn, recompute=False)
        n_grids = conn.execute("SELECT count(*) AS n FROM region WHERE level = 'grid'").fetchone()["n"]
        n_centres = conn.execute("SELECT count(*) AS n FROM centre WHERE scenario IS NULL").fetchone()["n"]

        full_s, stats = _timed(lambda: coverage.recompute(conn))
        # the prefecture with the most grids
        pref = conn.execute(
            "SELECT left(code, 4) AS p, count(*) AS n FROM region WHERE level = 'grid' GROUP BY 1 ORDER BY 2 DESC LIMIT 1").fetchone()
        grids = [r["code"] for r in conn.execute(
            "SELECT code FROM region WHERE level = 'grid' AND code LIKE %s ORDER BY code", (pref["p"] + "%",)).fetchall()]
        th = coverage.stored_thresholds(conn)[0]
        p = _params(pref["p"] + "%", th, None, [])
        set_s, rows = _timed(lambda: _rows(_x(conn, _sql("coverage-grids"), p)), repeat=3)
        by_code = {r["grid_code"]: r for r in rows}

        def naive():
            got = []
            for code in grids:
                tw = conn.execute(NAIVE_NEAREST, (code, ["township", "village"])).fetchone()
                co = conn.execute(NAIVE_NEAREST, (code, ["county", "prefecture", "province"])).fetchone()
                got.append((code, tw and tw["id"], co and co["id"]))
            return got

        naive_s, naive_rows = _timed(naive)
        agree = sum(1 for code, tw, co in naive_rows
                    if (tw, co) == (by_code[code]["township_centre_id"], by_code[code]["county_centre_id"]))
        out.append(_row(f"grid distances, prefecture {pref['p']} (set-based, KNN)", set_s,
                        "per-grid Python loop, unindexed nearest", naive_s, len(grids),
                        f"{agree}/{len(grids)} grids pick the same nearest centres"))
        out.append(_row("full Gansu recompute (grids + township gaps)", full_s,
                        f"per-grid loop over prefecture {pref['p']} only", naive_s, n_grids,
                        f"{stats['grids']} grids, {stats['townships']} townships, {n_centres} centres; "
                        f"baseline covers {len(grids)} grids (distances only, no gaps)"))

        # what-if: one county, a township centre at the label point of its grid farthest from any centre
        far = conn.execute(
            """SELECT g.code, ST_X(r.label_point) AS lon, ST_Y(r.label_point) AS lat, left(g.grid_code, 6) AS county
               FROM grid_coverage g JOIN region r ON r.code = g.grid_code
               WHERE left(g.grid_code, 6) IN (SELECT code FROM region WHERE level = 'county')
               ORDER BY g.township_m DESC NULLS LAST LIMIT 1""".replace("g.code", "g.grid_code AS code")).fetchone()
        point = [Hypothetical(far["lon"], far["lat"], "township")]
        delta_s, ev = _timed(lambda: coverage.evaluate(conn, far["county"], extra=point), repeat=5)
        base = coverage.evaluate(conn, far["county"])
        other = coverage.Thresholds(th.township_m + 1e-6, th.county_m)   # not the stored thresholds: nothing reused

        def province_recompute():
            return coverage.evaluate(conn, "62", extra=point, thresholds=other)

        full_whatif_s, _ = _timed(province_recompute)
        out.append(_row(f"what-if in county {far['county']} (delta)", delta_s,
                        "what-if by recomputing the province", full_whatif_s, 1,
                        f"recomputed {ev.recomputed_townships} township(s); grids within reach "
                        f"{base.figures['any']['grids']} → {ev.figures['any']['grids']}, gap "
                        f"{base.figures['gap_km2']:.0f} → {ev.figures['gap_km2']:.0f} km²"))
        map_s, ev_map = _timed(lambda: coverage.evaluate(conn, far["county"], extra=point, with_gaps=True, with_grids=True), repeat=3)
        out.append(_row(f"what-if in county {far['county']} with gaps and grids (the page's read)", map_s,
                        "what-if by recomputing the province", full_whatif_s, len(ev_map.grids), ""))
        k_s, sites = _timed(lambda: coverage.suggest_sites(conn, far["county"], 3), repeat=3)
        out.append(_row(f"3 best sites in county {far['county']}", k_s, "what-if by recomputing the province", full_whatif_s,
                        3, f"gains {[round(s['gain'], 1) for s in sites]} km²"))
    return out


if __name__ == "__main__":  # pragma: no cover - handy for a one-off run against DATABASE_URL
    import json
    import sys

    from gridwatch.db import database_url

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else database_url()), indent=2, ensure_ascii=False))
