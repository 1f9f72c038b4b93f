"""Travel times over a road network: minutes from every grid to its nearest centre of each tier."""

from __future__ import annotations

import time
from typing import Sequence

from gridwatch.coverage.reach import COUNTY_TIER, LOCK_KEY, TOWNSHIP_TIER, _rows, _x
from gridwatch.db import transaction

__all__ = ["ACCESS_KMH", "TRAVEL_MINUTES", "has_roads", "recompute_travel", "travel_figures"]

ACCESS_KMH = 15.0               # speed off the roads (to and from the nearest road vertex)
TRAVEL_MINUTES = (15, 30, 60)   # thresholds the travel figures are reported for


def has_roads(conn) -> bool:
    return _x(conn, "SELECT EXISTS (SELECT 1 FROM road) AS x").fetchone()["x"]


def recompute_travel(conn, *, access_kmh: float | None = None) -> dict | None:
    """Minutes over the roads from every grid to its nearest township-tier and county-tier centre.

    Reads the roads, builds the graph and runs one Dijkstra per tier (geo/coverage.py, scipy);
    writes ``grid_travel`` in one transaction. Without roads, empties it and returns None. What-ifs
    are not timed over the roads (their figures are straight-line).
    """
    # heavy numeric libraries (numpy, shapely, scipy via geo.coverage) load only when timing the roads
    import numpy as np
    import shapely   # (same reason)

    from geo.coverage import road_graph, travel_minutes   # scipy's graph search: heavy, only for timing the roads

    started = time.perf_counter()
    with transaction(conn) as c:
        _x(c, "SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        _x(c, "DELETE FROM grid_travel")
        if not has_roads(c):
            _x(c, "UPDATE coverage_params SET travel_computed_at = NULL, access_kmh = NULL")
            return None
        kmh = float(access_kmh or ACCESS_KMH)
        roads = _rows(_x(c, "SELECT ST_AsBinary(geom) AS wkb, speed_kmh FROM road ORDER BY id"))
        graph = road_graph(shapely.from_wkb([bytes(r["wkb"]) for r in roads]), [r["speed_kmh"] for r in roads])
        grids = _rows(_x(c, "SELECT code, ST_X(label_point) AS lon, ST_Y(label_point) AS lat FROM region WHERE level = 'grid' ORDER BY code"))
        centres = _rows(_x(c, """SELECT level, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM centre
                                 WHERE scenario IS NULL AND status IN ('established', 'entity')"""))
        xy = np.array([(g["lon"], g["lat"]) for g in grids], dtype=float).reshape(-1, 2)
        out = {}
        for tier, levels in (("township", TOWNSHIP_TIER), ("county", COUNTY_TIER)):
            src = np.array([(r["lon"], r["lat"]) for r in centres if r["level"] in levels], dtype=float).reshape(-1, 2)
            minutes = travel_minutes(graph, src, xy, access_kmh=kmh)
            out[tier] = [None if not np.isfinite(m) else float(m) for m in minutes]
        _x(c, """INSERT INTO grid_travel (grid_code, township_minutes, county_minutes)
                 SELECT * FROM unnest(%s::text[], %s::float8[], %s::float8[])""",
           ([g["code"] for g in grids], out["township"], out["county"]))
        _x(c, "UPDATE coverage_params SET travel_computed_at = now(), access_kmh = %s", (kmh,))
    return {"grids": len(grids), "roads": len(roads), "nodes": int(len(graph.nodes)), "access_kmh": kmh,
            "seconds": time.perf_counter() - started}


def travel_figures(conn, code: str, minutes: Sequence[int] = TRAVEL_MINUTES) -> dict | None:
    """Travel-time figures of a region's grids over the roads; None when no road network is loaded."""
    row = _x(conn, """
        SELECT count(*) AS grids,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY township_minutes) AS township_median,
               max(township_minutes) AS township_max,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY county_minutes) AS county_median,
               max(county_minutes) AS county_max,
               array_agg(township_minutes) FILTER (WHERE township_minutes IS NOT NULL) AS tw,
               array_agg(county_minutes) FILTER (WHERE county_minutes IS NOT NULL) AS co
        FROM grid_travel WHERE grid_code LIKE %s""", (code + "%",)).fetchone()
    if not row or not row["grids"]:
        return None
    shares = _x(conn, """
        SELECT m, avg((township_minutes <= m)::int) AS township, avg((county_minutes <= m)::int) AS county
        FROM grid_travel, unnest(%s::int[]) AS m WHERE grid_code LIKE %s GROUP BY m ORDER BY m""",
        (list(minutes), code + "%")).fetchall()
    params = _x(conn, "SELECT access_kmh, travel_computed_at FROM coverage_params").fetchone() or {}
    return {
        "grids": row["grids"], "access_kmh": params.get("access_kmh"),
        "township": {"median_minutes": row["township_median"], "max_minutes": row["township_max"],
                     "grid_share_within": {str(s["m"]): float(s["township"]) for s in shares}},
        "county": {"median_minutes": row["county_median"], "max_minutes": row["county_max"],
                   "grid_share_within": {str(s["m"]): float(s["county"]) for s in shares}},
    }
