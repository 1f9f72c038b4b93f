"""Coverage of the centre registry: institutional (who has a centre) and spatial (who is within reach).

Spatial coverage is computed in PostGIS (``gridwatch/sql/coverage-*.sql``) and stored per grid
(``grid_coverage``) and per township (``township_coverage``, with the gap polygons), so reads are
sums over a code prefix. Two tiers of reach, each with its own threshold:

- township tier: township (and village) centres reach ``township_m`` (default 5 km);
- county tier: county, prefecture and province centres reach ``county_m`` (default 15 km).

A grid is "within reach" of a tier when its label point is within the tier's threshold of a centre of
that tier (straight line on the ellipsoid); areas are exact: the township polygon intersected with the
union of geodesic reach circles. The gap of a region is the part beyond every centre's reach.

What-if: a named scenario's centres (``centre.scenario = name``) and/or hypothetical points are added
to the real registry's established and entity centres (planned centres serve nobody yet). Only the
townships their reach touches are recomputed; the rest of the region is read from the stored rows,
so a what-if in a county answers in tens of milliseconds, and the real registry is never touched.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from psycopg import sql
from psycopg.rows import dict_row

from gridwatch.db import load_sql, transaction

__all__ = [
    "DEFAULT_TOWNSHIP_M", "DEFAULT_COUNTY_M", "TOWNSHIP_TIER", "COUNTY_TIER", "COVERAGE_LEVELS",
    "CoverageError", "Hypothetical", "Thresholds", "Evaluation",
    "stored_thresholds", "recompute", "refresh", "region_info", "institutional", "evaluate",
    "region_coverage", "suggest_sites", "list_scenarios", "scenario_centres", "add_scenario_centre",
    "replace_scenario", "delete_scenario", "save_scenario", "reach_radius", "swap_hint", "GANSU_BOUNDS",
    "list_centres", "get_centre", "create_centre", "update_centre", "delete_centre", "centres_near",
    "ACCESS_KMH", "has_roads", "recompute_travel", "travel_figures",
]

HERE = Path(__file__).resolve().parent
DEFAULT_TOWNSHIP_M = 5_000.0
DEFAULT_COUNTY_M = 15_000.0
TOWNSHIP_TIER = ("township", "village")
COUNTY_TIER = ("county", "prefecture", "province")
CENTRE_LEVELS = COUNTY_TIER[::-1] + TOWNSHIP_TIER          # province … village
COVERAGE_LEVELS = ("province", "prefecture", "county", "township")
SIMPLIFY_DEG = 0.0005           # ≈ 50 m: the stored display version of the gaps
MAX_REACH_M = 200_000.0
SCENARIO_NAME_MAX = 60
LOCK_KEY = 620_000_041          # advisory lock: two writers of the stored coverage never interleave


class CoverageError(ValueError):
    """Bad input to a coverage function; the message names the field, the value and the fix."""


@dataclass(frozen=True)
class Hypothetical:
    """A centre that exists only in a what-if: a point and the level it would serve."""

    lon: float
    lat: float
    level: str = "township"


@dataclass(frozen=True)
class Thresholds:
    township_m: float = DEFAULT_TOWNSHIP_M
    county_m: float = DEFAULT_COUNTY_M

    def check(self) -> "Thresholds":
        for name in ("township_m", "county_m"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= MAX_REACH_M:
                raise CoverageError(f"{name} = {value!r} is not a usable reach: give metres between 1 and {MAX_REACH_M:.0f}")
        return self


def reach_radius(level: str, thresholds: Thresholds) -> float:
    """The reach (metres) of a centre of ``level``."""
    return thresholds.township_m if level in TOWNSHIP_TIER else thresholds.county_m


def _x(conn, query, params=None):
    """Execute on a dict-row cursor, whatever the connection's own row factory."""
    return conn.cursor(row_factory=dict_row).execute(query, params)


def _rows(cur) -> list[dict]:
    return list(cur.fetchall())


GANSU_BOUNDS = (92.0, 32.0, 109.0, 43.0)   # lon/lat box around the province, for the swapped-axes hint


def swap_hint(lon, lat) -> str:
    """"; did you swap …?" when (lat, lon) would fall in Gansu's box and (lon, lat) does not."""
    x0, y0, x1, y1 = GANSU_BOUNDS
    try:
        if not (x0 <= lon <= x1 and y0 <= lat <= y1) and x0 <= lat <= x1 and y0 <= lon <= y1:
            return "; did you swap longitude and latitude?"
    except TypeError:
        pass
    return ""


def _extra_params(extra: Sequence[Hypothetical]) -> dict:
    for i, h in enumerate(extra):
        if h.level not in CENTRE_LEVELS:
            raise CoverageError(f"hypothetical centre {i + 1}: level {h.level!r} is not a centre level; use one of {', '.join(CENTRE_LEVELS)}")
        for name, value, lo, hi in (("lon", h.lon, -180, 180), ("lat", h.lat, -90, 90)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
                raise CoverageError(f"hypothetical centre {i + 1}: {name} {value!r} is not a coordinate in degrees "
                                    f"({lo}..{hi}){swap_hint(h.lon, h.lat)}")
    return {"lons": [float(h.lon) for h in extra], "lats": [float(h.lat) for h in extra], "levels": [h.level for h in extra]}


def _margin_deg(th: Thresholds) -> float:
    # Degrees of longitude that surely span the largest reach at Gansu's northern edge (~43°N), with room.
    return max(th.township_m, th.county_m) / 111_000.0 / math.cos(math.radians(50.0)) * 1.05


def _params(pattern: str, th: Thresholds, scenario: str | None, extra: Sequence[Hypothetical],
            townships: list[str] | None = None, grids: list[str] | None = None) -> dict:
    return {
        "pattern": pattern, "township_m": float(th.township_m), "county_m": float(th.county_m),
        "scenario": scenario, "townships": townships, "grids": grids, "margin_deg": _margin_deg(th),
        "simplify_deg": SIMPLIFY_DEG, **_extra_params(extra),
    }


def _sql(name: str) -> str:
    return load_sql(HERE, name)


# ---------------------------------------------------------------- the stored (real registry) coverage

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
    if not isinstance(code, str) or not code.isdigit():
        raise CoverageError(f"region code {code!r} is not a region code: use digits such as 62, 6201, 620102")
    row = _x(conn, "SELECT code, name, level, parent_code FROM region WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise LookupError(f"region code {code!r} is not in the database: load the hierarchy (gridwatch etl gansu) or check the code")
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
    from geo.coverage import greedy_max_coverage

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


# ---------------------------------------------------------------- scenarios (what-ifs kept by name)

def _check_scenario_name(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > SCENARIO_NAME_MAX or name != name.strip():
        raise CoverageError(f"scenario name {name!r} is not usable: give 1–{SCENARIO_NAME_MAX} characters without leading or trailing spaces")
    return name


def list_scenarios(conn) -> list[dict]:
    return _rows(_x(conn, 
        """SELECT scenario AS name, count(*) AS centres, max(updated_at) AS updated_at
           FROM centre WHERE scenario IS NOT NULL GROUP BY scenario ORDER BY scenario"""))


def scenario_centres(conn, scenario: str) -> list[dict]:
    _check_scenario_name(scenario)
    return _rows(_x(conn, 
        """SELECT id, name, level, region_code, status, ST_X(geom) AS lon, ST_Y(geom) AS lat
           FROM centre WHERE scenario = %s ORDER BY id""", (scenario,)))


def _locate(conn, lon: float, lat: float, level: str, field_name: str) -> dict:
    """The region of ``level`` containing the point, with a clear refusal outside Gansu."""
    inside = _x(conn, 
        """SELECT EXISTS (SELECT 1 FROM region_subdivided WHERE level = 'province'
                          AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))) AS x""", (lon, lat)).fetchone()["x"]
    if not inside:
        swapped = _x(conn, 
            """SELECT EXISTS (SELECT 1 FROM region_subdivided WHERE level = 'province'
                              AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))) AS x""", (lat, lon)).fetchone()["x"]
        hint = "; did you swap longitude and latitude?" if swapped else "; place the centre inside the province"
        if not swapped and swap_hint(lon, lat):
            hint = swap_hint(lon, lat)
        raise CoverageError(f"{field_name}: longitude {lon} latitude {lat} is outside Gansu{hint}")
    row = _x(conn, 
        """SELECT code, name FROM region WHERE level = %s AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))
           ORDER BY code LIMIT 1""", (level, lon, lat)).fetchone()
    if row is None:
        raise CoverageError(f"{field_name}: no {level} contains longitude {lon} latitude {lat}; choose another level or point")
    return dict(row)


def add_scenario_centre(conn, scenario: str, lon: float, lat: float, level: str = "township", name: str | None = None) -> dict:
    """Add a hypothetical centre to ``scenario`` (the real registry is not touched)."""
    _check_scenario_name(scenario)
    if level not in CENTRE_LEVELS:
        raise CoverageError(f"level {level!r} is not a centre level; use one of {', '.join(CENTRE_LEVELS)}")
    for name, value in (("lon", lon), ("lat", lat)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CoverageError(f"{name} {value!r} is not a number of degrees")
    with transaction(conn) as c:
        region = _locate(c, float(lon), float(lat), level, "centre")
        n = _x(c, "SELECT count(*) AS n FROM centre WHERE scenario = %s", (scenario,)).fetchone()["n"]
        row = _x(c, 
            """INSERT INTO centre (name, level, region_code, status, geom, scenario)
               VALUES (%s, %s, %s, 'planned', ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s)
               RETURNING id, name, level, region_code, status, ST_X(geom) AS lon, ST_Y(geom) AS lat, scenario""",
            (name or f"{region['name']}综治中心（{scenario}·{n + 1}）", level, region["code"], lon, lat, scenario)).fetchone()
    return dict(row)


def replace_scenario(conn, scenario: str, points: Sequence[Hypothetical]) -> list[dict]:
    """Make ``scenario`` hold exactly ``points`` (all-or-nothing); returns its centres."""
    _check_scenario_name(scenario)
    _extra_params(points)
    with transaction(conn) as c:
        _x(c, "DELETE FROM centre WHERE scenario = %s", (scenario,))
        for i, h in enumerate(points):
            try:
                add_scenario_centre(c, scenario, h.lon, h.lat, h.level)
            except CoverageError as exc:
                raise CoverageError(f"point {i + 1}: {exc}") from exc
        return scenario_centres(c, scenario)


def delete_scenario(conn, scenario: str) -> int:
    _check_scenario_name(scenario)
    with transaction(conn) as c:
        return _x(c, "DELETE FROM centre WHERE scenario = %s", (scenario,)).rowcount


def save_scenario(conn, scenario: str, status: str = "planned") -> list[dict]:
    """Write a scenario's centres into the real registry with ``status`` and refresh the stored coverage."""
    _check_scenario_name(scenario)
    if status not in ("planned", "established", "entity"):
        raise CoverageError(f"status {status!r} is not known: use planned, established or entity")
    with transaction(conn) as c:
        rows = scenario_centres(c, scenario)
        if not rows:
            raise LookupError(f"scenario {scenario!r} has no centres: add some before saving it")
        clash = _x(c, 
            """SELECT s.name FROM centre s JOIN centre r ON r.scenario IS NULL AND r.region_code = s.region_code AND r.name = s.name
               WHERE s.scenario = %s LIMIT 1""", (scenario,)).fetchone()
        if clash:
            raise CoverageError(f"scenario {scenario!r}: a registry centre is already named {clash['name']!r}; rename the scenario centre first")
        _x(c, "UPDATE centre SET scenario = NULL, status = %s, updated_at = now() WHERE scenario = %s", (status, scenario))
        refresh(c, [(r["lon"], r["lat"], r["level"]) for r in rows], [r["id"] for r in rows])
    return [{**r, "status": status} for r in rows]


# ---------------------------------------------------------------- the registry (centre CRUD)

_CENTRE_SELECT = """
    SELECT c.id, c.name, c.level, c.region_code, r.name AS region_name, c.status, c.staff, c.address, c.phone,
           ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.scenario, c.created_at, c.updated_at,
           COALESCE((SELECT json_agg(json_build_object('id', d.id, 'name', d.name, 'kind', d.kind) ORDER BY d.id)
                     FROM centre_department cd JOIN department d ON d.id = cd.department_id
                     WHERE cd.centre_id = c.id), '[]'::json) AS departments
    FROM centre c LEFT JOIN region r ON r.code = c.region_code
"""


def list_centres(conn, *, region: str | None = None, level: str | None = None, status: str | None = None,
                 scenario: str | None = None, limit: int = 5000) -> list[dict]:
    """Registry centres (or one scenario's) under ``region`` (a code prefix), by level and status."""
    if level is not None and level not in CENTRE_LEVELS:
        raise CoverageError(f"level {level!r} is not a centre level; use one of {', '.join(CENTRE_LEVELS)}")
    if status is not None and status not in ("planned", "established", "entity"):
        raise CoverageError(f"status {status!r} is not known: use planned, established or entity")
    if region is not None and not region.isdigit():
        raise CoverageError(f"region {region!r} is not a region code: use digits such as 62, 6201, 620102")
    if scenario is not None:
        _check_scenario_name(scenario)
    q = _CENTRE_SELECT + """
        WHERE (c.scenario IS NOT DISTINCT FROM %(scenario)s)
          AND (%(pattern)s::text IS NULL OR c.region_code LIKE %(pattern)s)
          AND (%(level)s::text IS NULL OR c.level = %(level)s)
          AND (%(status)s::text IS NULL OR c.status = %(status)s)
        ORDER BY c.region_code, c.id LIMIT %(limit)s"""
    return _rows(_x(conn, q, {"scenario": scenario, "pattern": None if region is None else region + "%",
                              "level": level, "status": status, "limit": int(limit)}))


def get_centre(conn, centre_id: int) -> dict:
    row = _x(conn, _CENTRE_SELECT + " WHERE c.id = %s", (centre_id,)).fetchone()
    if row is None:
        raise LookupError(f"centre {centre_id} does not exist; GET /api/v1/centres lists the registry")
    return dict(row)


def _centre_row(fields: dict, where: str = "request"):
    from etl.centres import CentreLoadError, parse_row

    problems: list[str] = []
    props = {k: fields.get(k) for k in ("name", "level", "region_code", "status", "staff", "address", "phone")}
    depts = fields.get("departments") or []
    props["departments"] = ";".join(depts) if isinstance(depts, (list, tuple)) else depts
    row = parse_row(where, props, fields.get("lon"), fields.get("lat"), problems)
    if problems:
        raise CentreLoadError(problems)
    return row


def create_centre(conn, fields: dict) -> dict:
    """Add a centre to the real registry (validated like a loaded file) and refresh the stored coverage."""
    from etl.centres import CentreLoadError, write_centres

    row = _centre_row(fields)
    with transaction(conn) as c:
        clash = _x(c, "SELECT id FROM centre WHERE scenario IS NULL AND region_code = %s AND name = %s",
                   (row.region_code, row.name)).fetchone()
        if clash:
            raise CentreLoadError([f"request ({row.name}): region {row.region_code} already has a centre of that name "
                                   f"(id {clash['id']}); PATCH /api/v1/centres/{clash['id']} to change it"])
        new_id = write_centres(c, [row])["ids"][0]
        refresh(c, [(row.lon, row.lat, row.level)], [new_id])
        return get_centre(c, new_id)


def update_centre(conn, centre_id: int, patch: dict) -> dict:
    """Change some fields of a registry centre (validated as a whole) and refresh the stored coverage."""
    from etl.centres import CentreLoadError, validate

    with transaction(conn) as c:
        old = get_centre(c, centre_id)
        merged = {k: old[k] for k in ("name", "level", "region_code", "status", "staff", "address", "phone", "lon", "lat")}
        merged["departments"] = [d["name"] for d in old["departments"]]
        merged.update({k: v for k, v in patch.items()})
        row = _centre_row(merged, f"centre {centre_id}")
        problems = validate(c, [row])
        if old["scenario"] is None:
            clash = _x(c, "SELECT id FROM centre WHERE scenario IS NULL AND region_code = %s AND name = %s AND id <> %s",
                       (row.region_code, row.name, centre_id)).fetchone()
            if clash:
                problems.append(f"centre {centre_id} ({row.name}): region {row.region_code} already has a centre of that name (id {clash['id']})")
        if problems:
            raise CentreLoadError(problems)
        _x(c, """UPDATE centre SET name = %s, level = %s, region_code = %s, status = %s, staff = %s, address = %s, phone = %s,
                                  geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326), updated_at = now() WHERE id = %s""",
           (row.name, row.level, row.region_code, row.status, row.staff, row.address, row.phone, row.lon, row.lat, centre_id))
        if "departments" in patch:
            _x(c, "DELETE FROM centre_department WHERE centre_id = %s", (centre_id,))
            _x(c, """INSERT INTO centre_department (centre_id, department_id)
                     SELECT %s, d.id FROM department d WHERE d.region_code = %s AND d.name = ANY(%s) ON CONFLICT DO NOTHING""",
               (centre_id, row.region_code, list(row.departments)))
        if old["scenario"] is None:
            refresh(c, [(old["lon"], old["lat"], old["level"]), (row.lon, row.lat, row.level)], [centre_id])
        return get_centre(c, centre_id)


def delete_centre(conn, centre_id: int) -> dict:
    """Remove a centre (registry or scenario) and refresh the stored coverage."""
    with transaction(conn) as c:
        old = get_centre(c, centre_id)
        _x(c, "DELETE FROM centre WHERE id = %s", (centre_id,))
        if old["scenario"] is None:
            refresh(c, [(old["lon"], old["lat"], old["level"])], [centre_id])
    return old


def centres_near(conn, code: str, *, scenario: str | None = None, thresholds: Thresholds | None = None) -> list[dict]:
    """Centres to draw with a region: those serving regions under ``code`` and those whose reach
    touches it (a neighbour's centre near the boundary), real registry plus ``scenario``'s."""
    th = thresholds or (stored_thresholds(conn) or (Thresholds(), None))[0]
    return _rows(_x(conn, """
        WITH reg AS (SELECT geom FROM region WHERE code = %(code)s)
        SELECT c.id, c.name, c.level, c.region_code, c.status, c.staff, c.scenario, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
        FROM centre c, reg
        WHERE (c.scenario IS NULL OR c.scenario = %(scenario)s)
          AND c.geom && ST_Expand(reg.geom, %(margin_deg)s)
          AND (c.region_code LIKE %(pattern)s
               OR (c.status IN ('established', 'entity') OR c.scenario IS NOT NULL)
                  AND ST_Intersects(reg.geom, ST_Buffer(c.geom::geography,
                        CASE WHEN c.level IN ('township', 'village') THEN %(township_m)s ELSE %(county_m)s END)::geometry))
        ORDER BY c.scenario NULLS FIRST, c.region_code, c.id""",
        {"code": code, "pattern": code + "%", "scenario": scenario, "margin_deg": _margin_deg(th),
         "township_m": th.township_m, "county_m": th.county_m}))


# ---------------------------------------------------------------- travel time over a road network

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
    import numpy as np
    import shapely

    from geo.coverage import road_graph, travel_minutes

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
