"""Coverage figures: the stored coverage of the real registry (recompute, refresh) and what it reads.

Spatial coverage is computed in PostGIS (``gridwatch/sql/coverage-*.sql``) and stored per grid
(``grid_coverage``) and per township (``township_coverage``, with the gap polygons), so reads are
sums over a code prefix. A grid is "within reach" of a tier when its label point is within the
tier's threshold of a centre of that tier (straight line on the ellipsoid); areas are exact: the
township polygon intersected with the union of geodesic reach circles. The gap of a region is the
part beyond every centre's reach. :func:`evaluate` adds a scenario's centres and/or hypothetical
points, recomputing only the townships their reach touches.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from psycopg import sql

from gridwatch.coverage.reach import (
    CENTRE_LEVELS, COVERAGE_LEVELS, LOCK_KEY, CoverageError, Hypothetical, Thresholds, _check_scenario_name,
    _extra_params, _params, _rows, _sql, _x, reach_radius,
)
from gridwatch.coverage.travel import has_roads, recompute_travel, travel_figures
from gridwatch.db import transaction
from gridwatch.errors import NotFound
from gridwatch.regions import check_code

__all__ = ["stored_thresholds", "recompute", "refresh", "region_info", "institutional", "Evaluation", "evaluate",
           "region_coverage", "suggest_sites"]


def stored_thresholds(conn) -> tuple[Thresholds, dict] | None:
    """The thresholds the stored rows were computed with, and when; None before the first recompute."""
    row = _x(conn, "SELECT township_m, county_m, computed_at, seconds FROM coverage_params").fetchone()
    if row is None:
        return None
    return Thresholds(row["township_m"], row["county_m"]), {"computed_at": row["computed_at"], "seconds": row["seconds"]}


_TOWNSHIP_COLS = ("township_code", "area_km2", "covered_township_km2", "covered_county_km2", "covered_any_km2", "gap_km2", "gap", "gap_simple")
_GRID_COLS = ("grid_code", "township_code", "township_centre_id", "township_m", "county_centre_id", "county_m",
              "covered_township", "covered_county", "area_km2", "population")


def _insert(table: str, cols: tuple[str, ...], select_name: str, upsert_key: str | None = None) -> sql.Composed:
    q = sql.SQL("INSERT INTO {} ({}) ").format(sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols)))
    q = q + sql.SQL(_sql(select_name))
    if upsert_key:
        q = q + sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(
            sql.Identifier(upsert_key),
            sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in cols if c != upsert_key))
    return q


def recompute(conn, *, township_m: float | None = None, county_m: float | None = None) -> dict:
    """Recompute the stored coverage of every grid and township (one transaction); returns counts and seconds.

    Thresholds default to the stored ones, else 5 km and 15 km.
    """
    started = time.perf_counter()
    with transaction(conn) as c:
        _x(c, "SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        # fresh planner statistics after a bulk load of centres: without them the nearest-centre
        # lookups were planned as if the table were empty (a 10x slower full recompute, measured)
        _x(c, "ANALYZE centre")
        stored = stored_thresholds(c)
        base = stored[0] if stored else Thresholds()
        th = Thresholds(township_m if township_m is not None else base.township_m,
                        county_m if county_m is not None else base.county_m).check()
        p = _params("%", th, None, ())
        _x(c, "DELETE FROM grid_coverage")
        _x(c, "DELETE FROM township_coverage")
        towns = _x(c, _insert("township_coverage", _TOWNSHIP_COLS, "coverage-townships"), p).rowcount
        grids = _x(c, _insert("grid_coverage", _GRID_COLS, "coverage-grids"), p).rowcount
        seconds = time.perf_counter() - started
        _x(c, 
            """INSERT INTO coverage_params (id, township_m, county_m, computed_at, seconds) VALUES (true, %s, %s, now(), %s)
               ON CONFLICT (id) DO UPDATE SET township_m = EXCLUDED.township_m, county_m = EXCLUDED.county_m,
                                              computed_at = EXCLUDED.computed_at, seconds = EXCLUDED.seconds""",
            (th.township_m, th.county_m, seconds),
        )
        travel = recompute_travel(c) if has_roads(c) else None
    return {"townships": towns, "grids": grids, "seconds": seconds, "township_m": th.township_m, "county_m": th.county_m,
            "travel": travel}


def refresh(conn, points: Iterable[tuple[float, float, str]], centre_ids: Iterable[int] = ()) -> dict:
    """Bring the stored coverage up to date after registry changes at ``points`` (lon, lat, level).

    Pass the old and the new position of every centre that was added, moved, removed or changed
    status, and the ids of the changed centres. Recomputes the townships their reach touches and the
    grids whose nearest centre may have changed. Without stored coverage, does a full recompute.
    """
    pts = [Hypothetical(float(x), float(y), lvl) for x, y, lvl in points]
    ids = [int(i) for i in centre_ids]
    with transaction(conn) as c:
        _x(c, "SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        stored = stored_thresholds(c)
        if stored is None:
            return {"full": True, **recompute(c)}
        th = stored[0]
        if not pts:
            return {"full": False, "townships": 0, "grids": 0}
        p = _params("%", th, None, pts)
        towns = [r["code"] for r in _x(c, _sql("coverage-affected"), p).fetchall()]
        stale = [r["grid_code"] for r in _x(c, _sql("coverage-stale-grids"), {**p, "ids": ids}).fetchall()]
        n_towns = n_grids = 0
        if towns:
            _x(c, "DELETE FROM township_coverage WHERE township_code = ANY(%s)", (towns,))
            n_towns = _x(c, _insert("township_coverage", _TOWNSHIP_COLS, "coverage-townships"),
                                {**p, **_extra_params(()), "townships": towns}).rowcount
            n_grids += _x(c, _insert("grid_coverage", _GRID_COLS, "coverage-grids", "grid_code"),
                                 {**p, **_extra_params(()), "townships": towns}).rowcount
        if stale:
            n_grids += _x(c, _insert("grid_coverage", _GRID_COLS, "coverage-grids", "grid_code"),
                                 {**p, **_extra_params(()), "grids": stale}).rowcount
        _x(c, "UPDATE coverage_params SET computed_at = now()")
        travel = recompute_travel(c) if has_roads(c) else None
    return {"full": False, "townships": n_towns, "grids": n_grids, "travel": travel}


# ---------------------------------------------------------------- reading

def region_info(conn, code: str) -> dict:
    """code, name, level and parent of a region at a coverage level; CoverageError if there is none."""
    code = check_code(code)     # the one parser: 620000 → 62; malformed → BadRegionCode (400)
    row = _x(conn, "SELECT code, name, level, parent_code FROM region WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise NotFound(f"region code {code!r} is not in the database: load the hierarchy (gridwatch etl gansu) or check the code",
                       message_zh=f"区划 {code} 不存在", field="code", value=code,
                       fix="use a loaded code, e.g. 62 (甘肃省), or load the hierarchy with `gridwatch etl gansu`")
    if row["level"] not in COVERAGE_LEVELS:
        raise CoverageError(f"region {code} ({row['name']}) is a {row['level']}: coverage is reported for "
                            f"{', '.join(COVERAGE_LEVELS)}; use its township {code[:9]}")
    return dict(row)


def institutional(conn, code: str) -> list[dict]:
    """Per level below ``code``: children, with a centre, with an entity centre, their shares, and the ones without."""
    region_info(conn, code)
    out = []
    for r in _x(conn, _sql("coverage-institutional"), {"pattern": code + "%", "code": code}).fetchall():
        missing = r["missing"] if not isinstance(r["missing"], str) else json.loads(r["missing"])
        out.append({
            "level": r["level"], "children": r["children"], "with_centre": r["with_centre"], "with_entity": r["with_entity"],
            "share_centre": r["with_centre"] / r["children"] if r["children"] else None,
            "share_entity": r["with_entity"] / r["children"] if r["children"] else None,
            "missing": missing,
        })
    return out


def _share(part, whole):
    if part is None or not whole:
        return None
    return part / whole


@dataclass
class Evaluation:
    """Coverage of one region under one set of centres: figures, and on request per-grid rows and gaps."""

    region: dict
    thresholds: Thresholds
    scenario: str | None
    hypothetical: list[Hypothetical]
    figures: dict
    recomputed_townships: int | None          # None: every township under the region was computed live
    seconds: float
    grids: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "code": self.region["code"], "name": self.region["name"], "level": self.region["level"],
            "thresholds": {"township_m": self.thresholds.township_m, "county_m": self.thresholds.county_m},
            "scenario": self.scenario,
            "hypothetical": [{"lon": h.lon, "lat": h.lat, "level": h.level} for h in self.hypothetical],
            **self.figures,
            "recomputed_townships": self.recomputed_townships,
            "seconds": round(self.seconds, 4),
        }


def _figures(t: dict, g: dict) -> dict:
    area, grids, pop = t["area_km2"], g["grids"], g["population"]
    tiers = {}
    for tier in ("township", "county", "any"):
        covered = t[f"covered_{tier}_km2"]
        people = g[f"people_{tier}"] if pop is not None else None
        tiers[tier] = {
            "area_km2": covered, "area_share": _share(covered, area),
            "grids": g[f"grids_{tier}"], "grid_share": _share(g[f"grids_{tier}"], grids),
            "people": people, "people_share": _share(people, pop),
        }
    return {
        "area_km2": area, "grids": grids, "population": pop, "townships": t["townships"],
        "township": tiers["township"], "county": tiers["county"], "any": tiers["any"],
        "gap_km2": t["gap_km2"], "gap_share": _share(t["gap_km2"], area),
    }


_SUM_T = ("area_km2", "covered_township_km2", "covered_county_km2", "covered_any_km2", "gap_km2")


def _fresh(conn, p: dict, gap_column: str | None) -> tuple[list[dict], list[dict]]:
    gap = (sql.SQL("ST_AsGeoJSON({}, 6)").format(sql.Identifier(gap_column)) if gap_column else sql.SQL("NULL"))
    towns_q = sql.SQL("SELECT township_code, area_km2, covered_township_km2, covered_county_km2, covered_any_km2, gap_km2, "
                      "{} AS gap_geojson FROM (").format(gap) + sql.SQL(_sql("coverage-townships")) + sql.SQL(") s")
    towns = _rows(_x(conn, towns_q, p))
    grids = _rows(_x(conn, _sql("coverage-grids"), p))
    return towns, grids


def evaluate(conn, code: str, *, scenario: str | None = None, extra: Sequence[Hypothetical] = (),
             thresholds: Thresholds | None = None, with_grids: bool = False, with_gaps: bool = False,
             gap_simplify_deg: float = 0.0, full_gaps: bool = False) -> Evaluation:
    """Coverage of region ``code`` with the real registry plus ``scenario``'s centres plus ``extra`` points.

    Reads stored rows where nothing changes and recomputes only the townships that the scenario's and
    the extra points' reach touches (all of them when the thresholds differ from the stored ones).
    ``with_gaps`` adds the gap polygons (simplified for display, further by ``gap_simplify_deg``
    degrees; ``full_gaps`` gives them at full resolution instead).
    """
    started = time.perf_counter()
    region = region_info(conn, code)
    extra = list(extra)
    if scenario is not None:
        _check_scenario_name(scenario)
    stored = stored_thresholds(conn)
    th = (thresholds or (stored[0] if stored else Thresholds())).check()
    pattern = code + "%"
    p = _params(pattern, th, scenario, extra)
    stored_ok = stored is not None and stored[0] == th
    if stored_ok:
        hypothetical = bool(extra) or (scenario is not None and _x(conn, 
            "SELECT EXISTS (SELECT 1 FROM centre WHERE scenario = %s) AS x", (scenario,)).fetchone()["x"])
        affected = [r["code"] for r in _x(conn, _sql("coverage-affected"), p).fetchall()] if hypothetical else []
    else:
        affected = None

    if stored_ok:
        base = dict(_x(conn, _sql("coverage-stored"), {"pattern": pattern, "skip": affected}).fetchone())
    else:
        base = {k: 0.0 for k in _SUM_T} | {"townships": 0, "grids": 0, "grids_township": 0, "grids_county": 0, "grids_any": 0,
                                           "population": None, "people_township": None, "people_county": None, "people_any": None}
    fresh_towns: list[dict] = []
    fresh_grids: list[dict] = []
    if affected is None or affected:
        gap_column = ("gap" if full_gaps else "gap_simple") if with_gaps else None
        fresh_towns, fresh_grids = _fresh(conn, {**p, "townships": affected}, gap_column)
    t = {k: (base[k] or 0.0) + sum(r[k] for r in fresh_towns) for k in _SUM_T}
    t["townships"] = base["townships"] + len(fresh_towns)
    g = {"grids": base["grids"] + len(fresh_grids)}
    flags = {"township": lambda r: r["covered_township"], "county": lambda r: r["covered_county"],
             "any": lambda r: r["covered_township"] or r["covered_county"]}
    for tier, f in flags.items():
        g[f"grids_{tier}"] = base[f"grids_{tier}"] + sum(1 for r in fresh_grids if f(r))
    fresh_pop = [r for r in fresh_grids if r["population"] is not None]
    if base["population"] is None and not fresh_pop:
        g["population"] = None
        for tier in flags:
            g[f"people_{tier}"] = None
    else:
        g["population"] = (base["population"] or 0) + sum(r["population"] for r in fresh_pop)
        for tier, f in flags.items():
            g[f"people_{tier}"] = (base[f"people_{tier}"] or 0) + sum(r["population"] for r in fresh_pop if f(r))

    ev = Evaluation(region, th, scenario, extra, _figures(t, g), None if affected is None else len(affected), 0.0)
    if with_grids:
        fresh_codes = {r["grid_code"] for r in fresh_grids}
        stored_grids = [] if not stored_ok else _rows(_x(conn, 
            """SELECT grid_code, township_code, township_centre_id, township_m, county_centre_id, county_m,
                      covered_township, covered_county, area_km2, population
               FROM grid_coverage WHERE grid_code LIKE %s AND NOT (township_code = ANY(%s)) ORDER BY grid_code""",
            (pattern, affected)))
        ev.grids = sorted([r for r in stored_grids if r["grid_code"] not in fresh_codes] + fresh_grids, key=lambda r: r["grid_code"])
    if with_gaps:
        tol = float(gap_simplify_deg or 0.0)
        column = sql.Identifier("gap" if full_gaps else "gap_simple")
        stored_gaps = [] if not stored_ok else _rows(_x(conn, sql.SQL(
            """SELECT township_code, gap_km2,
                      ST_AsGeoJSON(CASE WHEN %s > 0 THEN ST_SimplifyPreserveTopology({col}, %s) ELSE {col} END, 6) AS gap_geojson
               FROM township_coverage
               WHERE township_code LIKE %s AND NOT (township_code = ANY(%s)) AND {col} IS NOT NULL
               ORDER BY township_code""").format(col=column),
            (tol, tol, pattern, affected)))
        ev.gaps = [{"township_code": r["township_code"], "gap_km2": r["gap_km2"], "geometry": json.loads(r["gap_geojson"])}
                   for r in stored_gaps + fresh_towns if r.get("gap_geojson")]
    ev.seconds = time.perf_counter() - started
    return ev


def region_coverage(conn, code: str, *, scenario: str | None = None, extra: Sequence[Hypothetical] = (),
                    thresholds: Thresholds | None = None) -> dict:
    """The JSON answer of /api/v1/coverage/{code}: institutional coverage per level below, spatial figures."""
    ev = evaluate(conn, code, scenario=scenario, extra=extra, thresholds=thresholds)
    stored = stored_thresholds(conn)
    return {
        **ev.as_dict(),
        "institutional": institutional(conn, code),
        "travel": travel_figures(conn, code),
        "stored": None if stored is None else {
            "township_m": stored[0].township_m, "county_m": stored[0].county_m,
            "computed_at": stored[1]["computed_at"].isoformat(), "seconds": stored[1]["seconds"]},
    }


def suggest_sites(conn, code: str, k: int, *, scenario: str | None = None, extra: Sequence[Hypothetical] = (),
                  level: str = "township", weight: str = "area", thresholds: Thresholds | None = None) -> list[dict]:
    """The ``k`` best new sites for centres of ``level`` in region ``code`` (greedy maximal coverage).

    Demand: the region's grids beyond every centre's reach (with the scenario and extra points),
    weighted by area or population. Candidates: every grid's label point in the region.
    """
    from geo.coverage import greedy_max_coverage   # heavy (scipy, shapely): loaded only when sites are asked for

    if not isinstance(k, int) or not 1 <= k <= 50:
        raise CoverageError(f"k = {k!r}: ask for between 1 and 50 sites")
    if weight not in ("area", "population"):
        raise CoverageError(f"weight {weight!r} is not known: use 'area' or 'population'")
    if level not in CENTRE_LEVELS:
        raise CoverageError(f"level {level!r} is not a centre level; use one of {', '.join(CENTRE_LEVELS)}")
    ev = evaluate(conn, code, scenario=scenario, extra=extra, thresholds=thresholds, with_grids=True)
    if not ev.grids:
        return []
    pts = {r["code"]: r for r in _x(conn, 
        "SELECT code, ST_X(label_point) AS lon, ST_Y(label_point) AS lat FROM region WHERE level = 'grid' AND code LIKE %s",
        (code + "%",)).fetchall()}
    grids = [r for r in ev.grids if r["grid_code"] in pts]
    if weight == "population":
        if all(r["population"] is None for r in grids):
            raise CoverageError(f"weight 'population': no population is loaded for the grids of {code}; use weight 'area'")
        weights = [r["population"] or 0 for r in grids]
    else:
        weights = [r["area_km2"] or 0.0 for r in grids]
    xy = [(pts[r["grid_code"]]["lon"], pts[r["grid_code"]]["lat"]) for r in grids]
    covered = [bool(r["covered_township"] or r["covered_county"]) for r in grids]
    radius = reach_radius(level, ev.thresholds)
    sites = greedy_max_coverage(xy, xy, weights, radius, k, covered=covered)
    return [{
        "lon": s.lon, "lat": s.lat, "level": level, "grid_code": grids[s.index]["grid_code"],
        "township_code": grids[s.index]["grid_code"][:9], "gain": s.gain, "weight": weight,
        "grids_covered": len(s.covers),
    } for s in sites]
