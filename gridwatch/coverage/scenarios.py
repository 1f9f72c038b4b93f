"""Scenarios: what-ifs kept by name. Their centres (``centre.scenario = name``) never count in the real
registry until saved; saving writes them into it and refreshes the stored coverage."""

from __future__ import annotations

import math
from typing import Sequence

from gridwatch.coverage.reach import (
    CENTRE_LEVELS, CoverageError, Hypothetical, _check_scenario_name, _extra_params, _rows, _x, swap_hint,
)
from gridwatch.coverage.figures import refresh
from gridwatch.db import transaction
from gridwatch.errors import NotFound

__all__ = ["list_scenarios", "scenario_centres", "add_scenario_centre", "replace_scenario", "delete_scenario",
           "save_scenario"]


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
            raise NotFound(f"scenario {scenario!r} has no centres: add some before saving it")
        clash = _x(c, 
            """SELECT s.name FROM centre s JOIN centre r ON r.scenario IS NULL AND r.region_code = s.region_code AND r.name = s.name
               WHERE s.scenario = %s LIMIT 1""", (scenario,)).fetchone()
        if clash:
            raise CoverageError(f"scenario {scenario!r}: a registry centre is already named {clash['name']!r}; rename the scenario centre first")
        _x(c, "UPDATE centre SET scenario = NULL, status = %s, updated_at = now() WHERE scenario = %s", (status, scenario))
        refresh(c, [(r["lon"], r["lat"], r["level"]) for r in rows], [r["id"] for r in rows])
    return [{**r, "status": status} for r in rows]
