"""/api/v1/coverage, /api/v1/scenarios, /api/v1/centres and /export/coverage: coverage of the centres.

- ``GET /api/v1/coverage/{code}``: institutional coverage per level below the region (children with an
  entity centre / all children, and which lack one) and the spatial figures (area, grids, people within
  reach of township and county centres; the gap). ``?scenario=`` adds a what-if's centres;
  ``?township_km=&county_km=`` other reaches (computed live).
- ``GET /api/v1/coverage/{code}/gaps``: the gap polygons as GeoJSON; ``GET …/sites?k=``: the k best new sites.
- ``/api/v1/scenarios``: named what-ifs (their centres never count in the real registry until saved).
- ``/api/v1/centres``: the registry: list, add (validated like a loaded file), change, remove; every
  change refreshes the stored coverage of the townships it touches.
- ``GET /export/coverage/{code}.html`` (self-contained folium map: centres, reach, gaps; opens offline)
  and ``GET /export/coverage/{code}.gpkg`` (layers ``gaps`` and ``centres``).
"""

from __future__ import annotations

import html as htmlmod
import json
import os
import tempfile
from typing import Literal

from fastapi import APIRouter, Query, Request, Response

from gridwatch import coverage
from gridwatch.api.errors import ApiRoute, json_response
from gridwatch.coverage import Hypothetical, Thresholds
from gridwatch.db import transaction
from gridwatch.errors import NotFound
from gridwatch.models import CentreIn, CentreLevel, CentrePatch, CentreStatus, SaveIn, ScenarioCentreIn, ScenarioIn
from gridwatch.regions import check_code

__all__ = ["router", "coverage_map", "gaps_geopackage"]

router = APIRouter(route_class=ApiRoute, tags=["coverage"])   # paths below carry /api/v1 or /export

Level = CentreLevel
Status = CentreStatus
STATUS_COLOURS = {"entity": "#1a7f37", "established": "#d29922", "planned": "#8250df", "scenario": "#0969da"}


def _pool(request: Request):
    return request.app.state.pool


def _thresholds(township_km: float | None, county_km: float | None, conn) -> Thresholds | None:
    if township_km is None and county_km is None:
        return None
    stored = coverage.stored_thresholds(conn)
    base = stored[0] if stored else Thresholds()
    return Thresholds(base.township_m if township_km is None else township_km * 1000,
                      base.county_m if county_km is None else county_km * 1000)


# ------------------------------------------------------------------------- coverage

@router.get("/api/v1/coverage/{code}", summary="Institutional and spatial coverage of a region by 综治中心 (optionally with a what-if)")
def get_coverage(request: Request, code: str, scenario: str | None = None,
                 township_km: float | None = Query(None, gt=0, le=200, description="reach of township centres, km"),
                 county_km: float | None = Query(None, gt=0, le=200, description="reach of county and higher centres, km")):
    code = check_code(code)
    with transaction(_pool(request), readonly=True) as conn:
        return json_response(coverage.region_coverage(conn, code, scenario=scenario,
                                                      thresholds=_thresholds(township_km, county_km, conn)))


@router.get("/api/v1/coverage/{code}/gaps", summary="The gap polygons of a region (beyond every centre's reach) as GeoJSON")
def get_gaps(request: Request, code: str, scenario: str | None = None,
             township_km: float | None = Query(None, gt=0, le=200), county_km: float | None = Query(None, gt=0, le=200),
             simplify: float = Query(0.0, ge=0, le=0.1, description="extra simplification tolerance, degrees")):
    code = check_code(code)
    with transaction(_pool(request), readonly=True) as conn:
        ev = coverage.evaluate(conn, code, scenario=scenario, thresholds=_thresholds(township_km, county_km, conn),
                               with_gaps=True, gap_simplify_deg=simplify)
    return json_response({
        "type": "FeatureCollection",
        "properties": {"code": code, "gap_km2": ev.figures["gap_km2"], "scenario": scenario},
        "features": [{"type": "Feature", "geometry": g["geometry"],
                      "properties": {"township_code": g["township_code"], "gap_km2": g["gap_km2"]}} for g in ev.gaps],
    })


@router.get("/api/v1/coverage/{code}/sites", summary="The k best new sites for centres (greedy maximal coverage) and the coverage with them")
def get_sites(request: Request, code: str, k: int = Query(3, ge=1, le=50), level: Level = "township",
              weight: Literal["area", "population"] = "area", scenario: str | None = None):
    code = check_code(code)
    with transaction(_pool(request), readonly=True) as conn:
        sites = coverage.suggest_sites(conn, code, k, scenario=scenario, level=level, weight=weight)
        before = coverage.evaluate(conn, code, scenario=scenario)
        after = coverage.evaluate(conn, code, scenario=scenario,
                                  extra=[Hypothetical(s["lon"], s["lat"], s["level"]) for s in sites])
    return json_response({"sites": sites, "before": before.as_dict(), "after": after.as_dict()})


# ------------------------------------------------------------------------- scenarios

@router.get("/api/v1/scenarios", summary="Named what-if scenarios and how many centres each holds")
def get_scenarios(request: Request):
    with transaction(_pool(request), readonly=True) as conn:
        return json_response(coverage.list_scenarios(conn))


@router.get("/api/v1/scenarios/{name}", summary="The hypothetical centres of a scenario")
def get_scenario(request: Request, name: str):
    with transaction(_pool(request), readonly=True) as conn:
        rows = coverage.scenario_centres(conn, name)
    if not rows:
        raise NotFound(f"scenario {name!r} has no centres; GET /api/v1/scenarios lists them")
    return json_response({"name": name, "centres": rows})


@router.post("/api/v1/scenarios/{name}/centres", status_code=201, summary="Add a hypothetical centre to a scenario (the registry is untouched)")
def post_scenario_centre(request: Request, name: str, body: ScenarioCentreIn):
    with transaction(_pool(request)) as conn:
        row = coverage.add_scenario_centre(conn, name, body.lon, body.lat, body.level, body.name)
    return json_response(row, status_code=201)


@router.put("/api/v1/scenarios/{name}", summary="Make a scenario hold exactly these hypothetical centres")
def put_scenario(request: Request, name: str, body: ScenarioIn):
    with transaction(_pool(request)) as conn:
        rows = coverage.replace_scenario(conn, name, [Hypothetical(c.lon, c.lat, c.level) for c in body.centres])
    return json_response({"name": name, "centres": rows})


@router.post("/api/v1/scenarios/{name}/save", summary="Write a scenario's centres into the real registry (default status planned)")
def post_scenario_save(request: Request, name: str, body: SaveIn | None = None):
    with transaction(_pool(request)) as conn:
        rows = coverage.save_scenario(conn, name, (body or SaveIn()).status)
    return json_response({"name": name, "saved": rows})


@router.delete("/api/v1/scenarios/{name}", summary="Drop a scenario")
def delete_scenario(request: Request, name: str):
    with transaction(_pool(request)) as conn:
        n = coverage.delete_scenario(conn, name)
    if not n:
        raise NotFound(f"scenario {name!r} has no centres; nothing to delete")
    return json_response({"name": name, "deleted": n})


# ------------------------------------------------------------------------- the registry

@router.get("/api/v1/centres", summary="The centre registry (or a scenario's centres), filtered by region, level and status")
def get_centres(request: Request, region: str | None = None, level: Level | None = None, status: Status | None = None,
                scenario: str | None = None, limit: int = Query(5000, ge=1, le=20000)):
    region = None if region is None else check_code(region)
    with transaction(_pool(request), readonly=True) as conn:
        return json_response(coverage.list_centres(conn, region=region, level=level, status=status, scenario=scenario, limit=limit))


@router.get("/api/v1/centres/{centre_id}", summary="One centre with its stationed departments")
def get_centre(request: Request, centre_id: int):
    with transaction(_pool(request), readonly=True) as conn:
        return json_response(coverage.get_centre(conn, centre_id))


@router.post("/api/v1/centres", status_code=201, summary="Add a centre to the registry (validated like a loaded file; coverage refreshed)")
def post_centre(request: Request, body: CentreIn):
    with transaction(_pool(request)) as conn:
        row = coverage.create_centre(conn, body.model_dump())
    return json_response(row, status_code=201)


@router.patch("/api/v1/centres/{centre_id}", summary="Change a centre's fields (status, staff, position, departments …); coverage refreshed")
def patch_centre(request: Request, centre_id: int, body: CentrePatch):
    with transaction(_pool(request)) as conn:
        row = coverage.update_centre(conn, centre_id, body.model_dump(exclude_unset=True))
    return json_response(row)


@router.delete("/api/v1/centres/{centre_id}", summary="Remove a centre; coverage refreshed")
def delete_centre(request: Request, centre_id: int):
    with transaction(_pool(request)) as conn:
        row = coverage.delete_centre(conn, centre_id)
    return json_response({"deleted": row["id"], "name": row["name"]})


# ------------------------------------------------------------------------- exports

def _export_centres(conn, code: str, scenario: str | None) -> list[dict]:
    return coverage.centres_near(conn, code, scenario=scenario)


def _esc(value) -> str:
    """Text for folium's HTML, also safe inside the JavaScript template literals folium puts tooltips in.

    >>> _esc('<img src=x onerror=alert(1)>`${x}`')
    '&lt;img src=x onerror=alert(1)&gt;&#96;&#36;{x}&#96;'
    """
    return htmlmod.escape(str(value)).replace("`", "&#96;").replace("${", "&#36;{")


def coverage_map(conn, code: str, scenario: str | None = None):
    """A folium map of a region's coverage: outline, gaps, reach circles, centres (tiles=None: offline)."""
    import folium   # heavy (folium, jinja2, branca): loaded only when a coverage map is exported

    ev = coverage.evaluate(conn, code, scenario=scenario, with_gaps=True,
                           gap_simplify_deg=0.002 if len(code) <= 2 else 0.0)
    region = conn.execute(
        """SELECT ST_AsGeoJSON(coalesce(geom_simple, geom), 5) AS g, ST_XMin(geom) AS x0, ST_YMin(geom) AS y0,
                  ST_XMax(geom) AS x1, ST_YMax(geom) AS y1 FROM region WHERE code = %s""", (code,)).fetchone()
    centres = _export_centres(conn, code, scenario)
    f = ev.figures
    m = folium.Map(tiles=None, control_scale=True)
    m.fit_bounds([[region["y0"], region["x0"]], [region["y1"], region["x1"]]])
    folium.GeoJson(json.loads(region["g"]), name=f"{_esc(ev.region['name'])} 边界 boundary",
                   style_function=lambda _: {"color": "#444", "weight": 1.5, "fillColor": "#f6f8fa", "fillOpacity": 0.6}).add_to(m)
    gaps = folium.FeatureGroup(name="盲区 gaps")
    if ev.gaps:
        folium.GeoJson({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": g["geometry"], "properties": {"township": g["township_code"], "gap_km2": round(g["gap_km2"], 1)}}
            for g in ev.gaps]},
            style_function=lambda _: {"color": "#cf222e", "weight": 0.5, "fillColor": "#cf222e", "fillOpacity": 0.35},
            tooltip=folium.GeoJsonTooltip(fields=["township", "gap_km2"], aliases=["乡镇 township", "盲区 km²"])).add_to(gaps)
    gaps.add_to(m)
    reach = folium.FeatureGroup(name="服务半径 reach")
    points = folium.FeatureGroup(name="综治中心 centres")
    for c in centres:
        active = c["scenario"] is not None or c["status"] in ("established", "entity")
        colour = STATUS_COLOURS["scenario" if c["scenario"] else c["status"]]
        if active:
            folium.Circle([c["lat"], c["lon"]], radius=coverage.reach_radius(c["level"], ev.thresholds),
                          color=colour, weight=1, fill=True, fill_opacity=0.08).add_to(reach)
        folium.CircleMarker([c["lat"], c["lon"]], radius=6 if c["level"] in coverage.COUNTY_TIER else 3.5,
                            color=colour, fill=True, fill_opacity=0.9, weight=1,
                            tooltip=f"{_esc(c['name'])} · {_esc(c['level'])} · {_esc(c['status'])}" + (f" · 方案 {_esc(c['scenario'])}" if c["scenario"] else "")
                            ).add_to(points)
    reach.add_to(m)
    points.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)

    def pct(tier):
        v = f[tier]["area_share"]
        return "—" if v is None else f"{v * 100:.1f}%"

    legend = (f"<div style='position:absolute;top:10px;left:50px;z-index:1000;background:white;padding:8px 12px;"
              f"border:1px solid #999;font:13px sans-serif'><b>{_esc(ev.region['name'])} ({_esc(code)}) 综治中心覆盖 coverage</b>"
              + (f" · 方案 scenario {_esc(scenario)}" if scenario else "")
              + f"<br>乡镇中心 {ev.thresholds.township_m / 1000:g} km 内面积 area within: {pct('township')}"
              + f"<br>县级中心 {ev.thresholds.county_m / 1000:g} km 内面积 area within: {pct('county')}"
              + f"<br>合计覆盖 covered: {pct('any')} · 盲区 gap {f['gap_km2']:,.0f} km²"
              + f"<br>网格 grids within reach: {f['any']['grids']:,} / {f['grids']:,}</div>")
    m.get_root().html.add_child(folium.Element(legend))
    return m


def gaps_geopackage(conn, code: str, scenario: str | None = None) -> bytes:
    """A GeoPackage with layers ``gaps`` (full resolution, per township) and ``centres``."""
    import geopandas as gpd                    # heavy (geopandas, pyogrio/GDAL): loaded only for a GeoPackage export
    from shapely.geometry import Point, shape  # with geopandas, for the same export

    ev = coverage.evaluate(conn, code, scenario=scenario, with_gaps=True, full_gaps=True)
    names = {r["code"]: r["name"] for r in conn.execute(
        "SELECT code, name FROM region WHERE level = 'township' AND code LIKE %s", (code + "%",)).fetchall()}
    gaps = gpd.GeoDataFrame(
        {"township_code": [g["township_code"] for g in ev.gaps],
         "township_name": [names.get(g["township_code"], "") for g in ev.gaps],
         "gap_km2": [g["gap_km2"] for g in ev.gaps],
         "township_reach_m": [ev.thresholds.township_m] * len(ev.gaps),
         "county_reach_m": [ev.thresholds.county_m] * len(ev.gaps)},
        geometry=[shape(g["geometry"]) for g in ev.gaps], crs="EPSG:4326")
    centres = _export_centres(conn, code, scenario)
    cdf = gpd.GeoDataFrame(
        {"id": [c["id"] for c in centres], "name": [c["name"] for c in centres], "level": [c["level"] for c in centres],
         "region_code": [c["region_code"] for c in centres], "status": [c["status"] for c in centres],
         "staff": [c["staff"] for c in centres], "scenario": [c["scenario"] for c in centres]},
        geometry=[Point(c["lon"], c["lat"]) for c in centres], crs="EPSG:4326")
    fd, path = tempfile.mkstemp(suffix=".gpkg", prefix="gridwatch-coverage-")
    os.close(fd)
    os.unlink(path)
    try:
        gaps.to_file(path, layer="gaps", driver="GPKG", engine="pyogrio")
        cdf.to_file(path, layer="centres", driver="GPKG", engine="pyogrio", mode="a")
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        if os.path.exists(path):
            os.unlink(path)


@router.get("/export/coverage/{code}.html", summary="A self-contained coverage map (folium; opens with no network)")
def export_html(request: Request, code: str, scenario: str | None = None):
    from gridwatch.reports import offline_html   # heavy (folium, plotly's JavaScript): loaded only for the export

    code = check_code(code)
    with transaction(_pool(request), readonly=True) as conn:
        m = coverage_map(conn, code, scenario)
        name = coverage.region_info(conn, code)["name"]
    html = offline_html(m, title=f"{name} 综治中心覆盖 coverage")
    return Response(html, media_type="text/html; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="coverage-{code}.html"'})


@router.get("/export/coverage/{code}.gpkg", summary="The gap polygons (and centres) of a region as a GeoPackage")
def export_gpkg(request: Request, code: str, scenario: str | None = None):
    code = check_code(code)
    with transaction(_pool(request), readonly=True) as conn:
        data = gaps_geopackage(conn, code, scenario)
    return Response(data, media_type="application/geopackage+sqlite3",
                    headers={"Content-Disposition": f'attachment; filename="coverage-{code}.gpkg"'})

