"""Coverage of the centre registry (one package, split by job): institutional (who has a centre) and spatial (who is within reach).

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

Modules: ``reach`` (tiers, thresholds, hypothetical centres), ``figures`` (the stored coverage and the
figures read from it, what-if evaluation, site suggestions), ``scenarios`` (what-ifs kept by name),
``registry`` (the centre registry: validation, writes, reads), ``travel`` (minutes over the roads).
Everything public is re-exported here: ``from gridwatch import coverage; coverage.evaluate(...)``.
"""

from gridwatch.coverage.figures import (
    Evaluation, evaluate, institutional, recompute, refresh, region_coverage, region_info, stored_thresholds,
    suggest_sites,
)
from gridwatch.coverage.reach import (
    CENTRE_LEVELS, COUNTY_TIER, COVERAGE_LEVELS, DEFAULT_COUNTY_M, DEFAULT_TOWNSHIP_M, GANSU_BOUNDS, TOWNSHIP_TIER,
    CoverageError, Hypothetical, Thresholds, _params, _rows, _sql, _x, check_scenario_name, reach_radius, swap_hint,
)
from gridwatch.coverage.registry import (
    CentreLoadError, CentreRow, centres_near, create_centre, delete_centre, get_centre, list_centres, update_centre,
    validate, write_centres,
)
from gridwatch.coverage.scenarios import (
    add_scenario_centre, delete_scenario, list_scenarios, replace_scenario, save_scenario, scenario_centres,
)
from gridwatch.coverage.travel import ACCESS_KMH, has_roads, recompute_travel, travel_figures

__all__ = [
    "DEFAULT_TOWNSHIP_M", "DEFAULT_COUNTY_M", "TOWNSHIP_TIER", "COUNTY_TIER", "CENTRE_LEVELS", "COVERAGE_LEVELS",
    "CoverageError", "Hypothetical", "Thresholds", "Evaluation",
    "stored_thresholds", "recompute", "refresh", "region_info", "institutional", "evaluate",
    "region_coverage", "suggest_sites", "list_scenarios", "scenario_centres", "add_scenario_centre",
    "replace_scenario", "delete_scenario", "save_scenario", "reach_radius", "swap_hint", "GANSU_BOUNDS",
    "check_scenario_name", "CentreLoadError", "CentreRow", "validate", "write_centres",
    "list_centres", "get_centre", "create_centre", "update_centre", "delete_centre", "centres_near",
    "ACCESS_KMH", "has_roads", "recompute_travel", "travel_figures",
]
# _params, _rows, _sql and _x stay importable for bench/coverage.py
