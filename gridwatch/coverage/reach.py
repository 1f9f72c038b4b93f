"""What a centre reaches: the two tiers, their thresholds, hypothetical centres, and the shared helpers.

- township tier: township (and village) centres reach ``township_m`` (default 5 km);
- county tier: county, prefecture and province centres reach ``county_m`` (default 15 km).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gridwatch.db import execute, load_sql
from gridwatch.errors import Invalid

__all__ = [
    "DEFAULT_TOWNSHIP_M", "DEFAULT_COUNTY_M", "TOWNSHIP_TIER", "COUNTY_TIER", "CENTRE_LEVELS", "COVERAGE_LEVELS",
    "CoverageError", "Hypothetical", "Thresholds", "reach_radius", "swap_hint", "GANSU_BOUNDS", "check_scenario_name",
]

SQL_DIR = Path(__file__).resolve().parent.parent      # gridwatch/: its sql/ folder holds the coverage SQL
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


class CoverageError(Invalid):
    """Bad input to a coverage function (422); the message names the field, the value and the fix."""


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


_x = execute     # a dict-row cursor, whatever the connection's row factory (gridwatch.db.execute)


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
    return load_sql(SQL_DIR, name)


def check_scenario_name(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > SCENARIO_NAME_MAX or name != name.strip():
        raise CoverageError(f"scenario name {name!r} is not usable: give 1–{SCENARIO_NAME_MAX} characters without leading or trailing spaces")
    return name


_check_scenario_name = check_scenario_name
