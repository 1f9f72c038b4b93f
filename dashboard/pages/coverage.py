"""Coverage of the centres (planners): institutional and spatial coverage, the gaps, and a what-if.

``/coverage`` shows the province, ``/coverage/<code>`` a prefecture, county or township. The
institutional table drills from a share (e.g. 96.5 % of counties with an entity centre) to the
regions without one. The map shows centres, their reach and the gaps (red). Clicking the map
places a hypothetical centre at the clicked grid (at a county or township; a township at a
prefecture, a county at the province); "k best sites" adds the greedy choice; the figures and gaps
change at once. The hypothetical centres live in the browser until saved as a named scenario
(``centre.scenario``); "write to registry" makes them planned centres of the real registry.
"""

from __future__ import annotations

import time

import dash
import plotly.graph_objects as go
import psycopg
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.maps import local_style, zoom_for_bounds
from dashboard.util import db_callback, jsonable, pool
from gridwatch import coverage
from gridwatch.coverage import COUNTY_TIER, CentreLoadError, CoverageError, Hypothetical, Thresholds
from gridwatch.db import transaction
from gridwatch.display import geodesic_circle
from gridwatch.i18n import fmt_number, fmt_percent, register, t
from gridwatch.regions import BadRegionCode, canonical_or_raw

dash.register_page(__name__, path="/coverage", path_template="/coverage/<code>", name="覆盖规划",
                   nav_key="nav.coverage", order=30, title="综治中心覆盖 · gridwatch")

register({
    "nav.coverage": {"zh": "覆盖规划", "en": "Coverage"},
    "coverage.title": {"zh": "{name} · 综治中心覆盖", "en": "{name} · centre coverage"},
    "coverage.institutional": {"zh": "机构覆盖（下级建有综治中心情况）", "en": "Institutional coverage (children with a centre)"},
    "coverage.col.level": {"zh": "层级", "en": "Level"},
    "coverage.col.children": {"zh": "下级数", "en": "Children"},
    "coverage.col.with_centre": {"zh": "已建中心", "en": "With a centre"},
    "coverage.col.with_entity": {"zh": "实体化", "en": "Entity (实体化)"},
    "coverage.col.share": {"zh": "实体化率", "en": "Entity share"},
    "coverage.col.missing": {"zh": "未实体化", "en": "Without an entity centre"},
    "coverage.missing.show": {"zh": "查看 {n} 个", "en": "show {n}"},
    "coverage.missing.none": {"zh": "无", "en": "none"},
    "coverage.children.none": {"zh": "无下级区域", "en": "No child regions"},
    "coverage.status.established": {"zh": "已建未实体化", "en": "established, not entity"},
    "coverage.status.planned": {"zh": "规划中", "en": "planned"},
    "coverage.status.none": {"zh": "未建", "en": "none"},
    "coverage.spatial": {"zh": "空间覆盖", "en": "Spatial coverage"},
    "coverage.fig.township": {"zh": "乡镇中心 {km} km 内", "en": "Within {km} km of a township centre"},
    "coverage.fig.county": {"zh": "县级及以上中心 {km} km 内", "en": "Within {km} km of a county-level centre"},
    "coverage.fig.any": {"zh": "合计覆盖（面积）", "en": "Covered (area)"},
    "coverage.fig.grids": {"zh": "网格覆盖", "en": "Grids within reach"},
    "coverage.fig.people": {"zh": "人口覆盖", "en": "People within reach"},
    "coverage.fig.gap": {"zh": "盲区面积", "en": "Gap area"},
    "coverage.fig.area_note": {"zh": "面积", "en": "of the area"},
    "coverage.fig.grids_note": {"zh": "{a}/{b} 个网格", "en": "{a} of {b} grids"},
    "coverage.fig.people_none": {"zh": "未加载人口数据", "en": "no population layer loaded"},
    "coverage.fig.whatif": {"zh": "假设方案", "en": "what-if"},
    "coverage.fig.travel_township": {"zh": "到乡镇中心路网用时（中位数）", "en": "Road time to a township centre (median)"},
    "coverage.fig.travel_county": {"zh": "到县级中心路网用时（中位数）", "en": "Road time to a county centre (median)"},
    "coverage.fig.minutes": {"zh": "{n} 分钟", "en": "{n} min"},
    "coverage.fig.travel_note": {"zh": "30 分钟内可达网格 {share}（假设方案不计路网）", "en": "{share} of grids within 30 min (what-ifs: straight line)"},
    "coverage.whatif": {"zh": "规划推演（假设新增中心）", "en": "Planner's what-if"},
    "coverage.whatif.hint": {"zh": "点击地图放置假设中心；不影响实际台账，保存前仅在本页有效。",
                             "en": "Click the map to place a hypothetical centre; the registry is untouched until you save."},
    "coverage.whatif.level": {"zh": "假设中心级别", "en": "Level of new centres"},
    "coverage.reach.township": {"zh": "乡镇中心半径 km", "en": "Township reach, km"},
    "coverage.reach.county": {"zh": "县级中心半径 km", "en": "County reach, km"},
    "coverage.centre.status": {"zh": "状态", "en": "Status"},
    "coverage.centre.staff": {"zh": "人员", "en": "Staff"},
    "coverage.centre.save": {"zh": "保存修改", "en": "Save changes"},
    "coverage.centre.saved": {"zh": "已保存，覆盖已重新计算", "en": "Saved; coverage recomputed"},
    "coverage.centre.level": {"zh": "级别", "en": "Level"},
    "coverage.centre.region": {"zh": "服务区域", "en": "Region served"},
    "coverage.centre.departments": {"zh": "入驻部门", "en": "Departments stationed"},
    "coverage.centre.place": {"zh": "位置", "en": "Location"},
    "coverage.centre.none": {"zh": "无", "en": "none"},
    "coverage.centre.gone": {"zh": "该中心已不存在", "en": "This centre no longer exists"},
    "coverage.whatif.k": {"zh": "推荐数量 k", "en": "k"},
    "coverage.whatif.suggest": {"zh": "推荐最佳选址", "en": "Suggest k best sites"},
    "coverage.whatif.clear": {"zh": "清除假设", "en": "Clear"},
    "coverage.whatif.count": {"zh": "假设中心 {n} 个", "en": "{n} hypothetical centre(s)"},
    "coverage.whatif.name": {"zh": "方案名称", "en": "Scenario name"},
    "coverage.whatif.pick": {"zh": "载入已存方案", "en": "Load a saved scenario"},
    "coverage.whatif.save": {"zh": "保存方案", "en": "Save scenario"},
    "coverage.whatif.commit": {"zh": "写入台账（规划中）", "en": "Write to registry (planned)"},
    "coverage.whatif.saved": {"zh": "已保存方案“{name}”：{n} 个假设中心", "en": "Saved scenario “{name}”: {n} hypothetical centre(s)"},
    "coverage.whatif.committed": {"zh": "方案“{name}”的 {n} 个中心已作为规划中心写入台账（建成前不计入空间覆盖）",
                                  "en": "{n} centre(s) of “{name}” written to the registry as planned (they count once established)"},
    "coverage.whatif.noname": {"zh": "请先填写方案名称", "en": "Give the scenario a name first"},
    "coverage.whatif.nopoints": {"zh": "还没有假设中心：先点击地图或推荐选址", "en": "No hypothetical centres yet: click the map or suggest sites"},
    "coverage.whatif.nosite": {"zh": "已无可增加覆盖的选址", "en": "No site would add coverage"},
    "coverage.export.html": {"zh": "导出离线地图", "en": "Export offline map"},
    "coverage.export.gpkg": {"zh": "导出盲区 GeoPackage", "en": "Export gaps (GeoPackage)"},
    "coverage.legend.gap": {"zh": "盲区", "en": "Gap"},
    "coverage.legend.reach_township": {"zh": "乡镇中心服务半径", "en": "Township centre reach"},
    "coverage.legend.reach_county": {"zh": "县级及以上服务半径", "en": "County-level reach"},
    "coverage.legend.reach_new": {"zh": "假设中心服务半径", "en": "Hypothetical reach"},
    "coverage.legend.centres": {"zh": "综治中心", "en": "Centres"},
    "coverage.legend.new": {"zh": "假设中心", "en": "Hypothetical centres"},
    "coverage.legend.cells": {"zh": "点击放置", "en": "Click to place"},
    "coverage.unknown": {"zh": "区划 {code} 不存在或不能统计覆盖", "en": "Region {code} does not exist or has no coverage"},
    "coverage.nodata": {"zh": "尚无覆盖数据：请运行 gridwatch etl centres --demo", "en": "No coverage yet: run gridwatch etl centres --demo"},
    "coverage.level.prefecture": {"zh": "市州", "en": "Prefectures"},
    "coverage.level.county": {"zh": "县区", "en": "Counties"},
    "coverage.level.township": {"zh": "乡镇街道", "en": "Townships"},
    "coverage.centre.entity": {"zh": "实体化", "en": "entity"},
    "coverage.centre.established": {"zh": "已建", "en": "established"},
    "coverage.centre.planned": {"zh": "规划", "en": "planned"},
})

STATUS_COLOURS = {"entity": "#1a7f37", "established": "#d29922", "planned": "#8250df"}
NEW_COLOUR = "#0969da"
GAP_COLOUR = "#cf222e"
CELL_LEVEL = {"province": "county", "prefecture": "township", "county": "grid", "township": "grid"}
GAP_SIMPLIFY = {"province": 0.01, "prefecture": 0.002, "county": 0.0, "township": 0.0}     # degrees, for display
CELL_SIMPLIFY = {"province": 0.01, "prefecture": 0.002, "county": 0.0, "township": 0.0}
MAP_SIZE = (900, 620)


def layout(code: str | None = None, **_):
    return html.Div(
        [
            dcc.Location(id="coverage-nav", refresh="callback-nav"),
            dcc.Store(id="coverage-code", data=canonical_or_raw(code or "62")),
            dcc.Store(id="coverage-extra", data=[]),
            dcc.Store(id="coverage-data"),
            dcc.Store(id="coverage-refresh", data=0),
            dcc.Store(id="coverage-selected"),
            html.Nav(t("state.loading"), id="coverage-breadcrumb", className="breadcrumb"),
            html.Div(id="coverage-error", className="state-banner state-error", hidden=True, role="alert"),
            html.Div(
                [
                    html.Section(
                        [
                            html.Div(
                                [
                                    html.Span(id="coverage-hint", className="muted"),
                                    html.A(id="coverage-export-html", className="button", href="#", download=""),
                                    html.A(id="coverage-export-gpkg", className="button", href="#", download=""),
                                ],
                                className="region-controls",
                            ),
                            dcc.Graph(id="coverage-map", className="coverage-map", style={"height": "640px"},
                                      config={"displaylogo": False, "scrollZoom": True, "responsive": True}),
                            html.Div(
                                [
                                    html.Button("×", id="coverage-centre-close", className="button small", n_clicks=0),
                                    html.H3(id="coverage-centre-title"),
                                    html.Dl(id="coverage-centre-details"),
                                    html.Div(
                                        [
                                            html.Label(id="coverage-centre-status-label", htmlFor="coverage-centre-status"),
                                            dcc.Dropdown(id="coverage-centre-status", clearable=False, searchable=False,
                                                         options=[{"label": v, "value": v} for v in ("planned", "established", "entity")],
                                                         className="coverage-dropdown"),
                                            html.Label(id="coverage-centre-staff-label", htmlFor="coverage-centre-staff"),
                                            dcc.Input(id="coverage-centre-staff", type="number", min=0, step=1, className="coverage-k"),
                                            html.Button(id="coverage-centre-save", className="button", n_clicks=0),
                                        ],
                                        className="coverage-row",
                                    ),
                                    html.Div(id="coverage-centre-message", className="coverage-status", role="status"),
                                ],
                                id="coverage-centre-panel", className="region-detail coverage-centre", hidden=True,
                            ),
                        ],
                        className="region-main",
                    ),
                    html.Aside(
                        [
                            html.Div(
                                [
                                    html.H2(id="coverage-spatial-title", className="panel-title"),
                                    html.Div(t("state.loading"), id="coverage-figures", className="kpi-grid"),
                                ],
                                className="kpi-panel",
                            ),
                            html.Div(
                                [
                                    html.H2(id="coverage-whatif-title", className="panel-title"),
                                    html.Div(
                                        [
                                            html.Label(id="coverage-level-label", htmlFor="coverage-level"),
                                            dcc.Dropdown(id="coverage-level", value="township", clearable=False, searchable=False,
                                                         options=[{"label": "township", "value": "township"}, {"label": "county", "value": "county"}],
                                                         className="coverage-dropdown"),
                                            html.Label(id="coverage-k-label", htmlFor="coverage-k"),
                                            dcc.Input(id="coverage-k", type="number", min=1, max=20, step=1, value=3, className="coverage-k"),
                                            html.Button(id="coverage-suggest", className="button", n_clicks=0),
                                            html.Button(id="coverage-clear", className="button secondary", n_clicks=0),
                                        ],
                                        className="coverage-row",
                                    ),
                                    html.Div(
                                        [
                                            html.Label(id="coverage-township-km-label", htmlFor="coverage-township-km"),
                                            dcc.Input(id="coverage-township-km", type="number", min=0.5, max=200, step=0.5,
                                                      debounce=True, className="coverage-k"),
                                            html.Label(id="coverage-county-km-label", htmlFor="coverage-county-km"),
                                            dcc.Input(id="coverage-county-km", type="number", min=0.5, max=200, step=0.5,
                                                      debounce=True, className="coverage-k"),
                                        ],
                                        className="coverage-row",
                                    ),
                                    html.Div(id="coverage-count", className="muted"),
                                    html.Div(
                                        [
                                            dcc.Input(id="coverage-scenario-name", type="text", debounce=False, maxLength=60,
                                                      className="coverage-name"),
                                            html.Button(id="coverage-save", className="button", n_clicks=0),
                                            html.Button(id="coverage-commit", className="button secondary", n_clicks=0),
                                        ],
                                        className="coverage-row",
                                    ),
                                    dcc.Dropdown(id="coverage-scenario-pick", options=[], clearable=True, className="coverage-dropdown"),
                                    html.Div(id="coverage-status", className="coverage-status", role="status"),
                                ],
                                className="kpi-panel",
                            ),
                            html.Div(
                                [html.H2(id="coverage-institutional-title", className="panel-title"),
                                 html.Div(id="coverage-institutional")],
                                className="kpi-panel",
                            ),
                        ],
                        className="region-side",
                    ),
                ],
                className="region-body",
            ),
        ],
        className="region-page coverage-page",
    )


# -- data: one read per view and per what-if change, off the event loop -------------------------

def _geojson_cells(conn, code: str, level: str) -> dict:
    """The clickable layer: the region's counties / townships / grids (display outlines)."""
    cell = CELL_LEVEL[level]
    tol = CELL_SIMPLIFY[level]
    rows = conn.execute(
        """SELECT code, name, ST_AsGeoJSON(CASE WHEN %s > 0 THEN ST_SimplifyPreserveTopology(coalesce(geom_simple, geom), %s)
                                               ELSE coalesce(geom_simple, geom) END, 4)::json AS geometry,
                  ST_X(label_point) AS lon, ST_Y(label_point) AS lat
           FROM region WHERE level = %s AND code LIKE %s ORDER BY code""", (tol, tol, cell, code + "%")).fetchall()
    return {"type": "FeatureCollection", "level": cell, "features": [
        {"type": "Feature", "id": r["code"], "geometry": r["geometry"],
         "properties": {"code": r["code"], "name": r["name"], "lon": r["lon"], "lat": r["lat"]}} for r in rows]}


def _thresholds(conn, township_km, county_km) -> Thresholds | None:
    """The reaches typed on the page (km), or None for the stored ones."""
    if not township_km and not county_km:
        return None
    stored = coverage.stored_thresholds(conn)
    base = stored[0] if stored else Thresholds()
    return Thresholds(float(township_km) * 1000 if township_km else base.township_m,
                      float(county_km) * 1000 if county_km else base.county_m)


def fetch_view(conn, code: str, extra: list[dict], thresholds: Thresholds | None = None) -> dict:
    """Everything the page shows for ``code`` with the hypothetical centres ``extra`` (JSON-ready);
    ``thresholds`` other than the stored ones are computed live for the whole region."""
    started = time.perf_counter()
    region = coverage.region_info(conn, code)
    stored = coverage.stored_thresholds(conn)
    if stored is None:
        return {"status": "nodata", "code": code}
    points = [Hypothetical(float(p["lon"]), float(p["lat"]), p.get("level", "township")) for p in extra or []]
    level = region["level"]
    want_grids = CELL_LEVEL[level] == "grid"
    before = coverage.evaluate(conn, code, thresholds=thresholds, with_gaps=not points, with_grids=want_grids and not points,
                               gap_simplify_deg=GAP_SIMPLIFY[level])
    after = coverage.evaluate(conn, code, extra=points, thresholds=thresholds, with_gaps=True, with_grids=want_grids,
                              gap_simplify_deg=GAP_SIMPLIFY[level]) if points else None
    shown = after or before
    chain = conn.execute(
        "SELECT code, name, level FROM region WHERE code = ANY(%s) ORDER BY length(code)",
        ([code[:n] for n in (2, 4, 6, 9) if n <= len(code)],)).fetchall()
    bbox = conn.execute("SELECT ST_XMin(geom) AS x0, ST_YMin(geom) AS y0, ST_XMax(geom) AS x1, ST_YMax(geom) AS y1 FROM region WHERE code = %s",
                        (code,)).fetchone()
    cells = _geojson_cells(conn, code, level)
    if want_grids:
        covered = {g["grid_code"]: bool(g["covered_township"] or g["covered_county"]) for g in shown.grids}
        for f in cells["features"]:
            f["properties"]["covered"] = covered.get(f["properties"]["code"], False)
    return {
        "status": "ok", "code": code, "region": region, "chain": [dict(r) for r in chain],
        "bounds": [bbox["x0"], bbox["y0"], bbox["x1"], bbox["y1"]],
        "thresholds": {"township_m": shown.thresholds.township_m, "county_m": shown.thresholds.county_m},
        "stored_thresholds": {"township_m": stored[0].township_m, "county_m": stored[0].county_m},
        "before": before.figures, "after": after.figures if after else None,
        "institutional": coverage.institutional(conn, code),
        "travel": coverage.travel_figures(conn, code),
        "gaps": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": g["geometry"], "properties": {"township_code": g["township_code"]}} for g in shown.gaps]},
        "centres": coverage.centres_near(conn, code),
        "extra": [{"lon": p.lon, "lat": p.lat, "level": p.level} for p in points],
        "cells": cells,
        "seconds": round(time.perf_counter() - started, 3),
        "whatif_seconds": round(after.seconds, 3) if after else None,
    }


@dash.callback(Output("coverage-data", "data"), Output("coverage-error", "children"), Output("coverage-error", "hidden"),
               Input("coverage-code", "data"), Input("coverage-extra", "data"), Input("coverage-refresh", "data"),
               Input("coverage-township-km", "value"), Input("coverage-county-km", "value"),
               State("shell-lang", "data"))
@db_callback
def load(code, extra, _refresh, township_km, county_km, lang):
    try:
        with transaction(pool(), readonly=True) as conn:
            th = _thresholds(conn, township_km, county_km)
            return jsonable(fetch_view(conn, code or "62", extra or [], th)), "", True
    except (CoverageError, BadRegionCode) as exc:      # a malformed code in the URL: shown, like a bad reach
        return no_update, str(exc), False
    except LookupError:
        return {"status": "unknown", "code": code}, "", True
    except psycopg.Error:
        return no_update, t("state.error.db", lang), False


# -- rendering: plain functions of the data ------------------------------------------------------

def _circles(centres: list[dict], radius_of) -> tuple[list, list]:
    lon: list = []
    lat: list = []
    for c in centres:
        ring = geodesic_circle(c["lon"], c["lat"], radius_of(c), n=48).exterior.coords
        for x, y in ring:
            lon.append(round(x, 5))
            lat.append(round(y, 5))
        lon.append(None)
        lat.append(None)
    return lon, lat


def coverage_figure(data: dict, lang: str | None = "zh", size: tuple[int, int] = MAP_SIZE) -> go.Figure:
    """The coverage map: clickable cells, gaps (red, below), reach circles, centres, hypothetical centres."""
    lang = lang or "zh"
    th = Thresholds(data["thresholds"]["township_m"], data["thresholds"]["county_m"])
    centre, zoom = zoom_for_bounds(data["bounds"], *size)
    cells = data["cells"]
    props = [f["properties"] for f in cells["features"]]
    z = [1 if p.get("covered") else 0 for p in props]
    traces = [go.Choroplethmap(
        geojson=cells, locations=[p["code"] for p in props], featureidkey="properties.code", z=z, zmin=0, zmax=1,
        colorscale=[[0, "rgba(255,255,255,0.05)"], [1, "rgba(26,127,55,0.22)"]], showscale=False,
        marker={"line": {"width": 0.6, "color": "rgba(60,70,90,0.55)"}},
        customdata=[["cell", p["code"], p["lon"], p["lat"], p["name"]] for p in props],
        hovertemplate="%{customdata[4]}<extra></extra>", name=t("coverage.legend.cells", lang), showlegend=False)]
    active = [c for c in data["centres"] if c["status"] in ("established", "entity")]
    tiers = (("township", "#2da44e", "coverage.legend.reach_township"), ("county", "#0550ae", "coverage.legend.reach_county"))
    if data["region"]["level"] == "province":
        tiers = tiers[1:]          # 1,351 township circles of 5 km are specks at this zoom: the gaps show them
    for tier, colour, key in tiers:
        group = [c for c in active if (c["level"] in COUNTY_TIER) == (tier == "county")]
        if group:
            lon, lat = _circles(group, lambda c: coverage.reach_radius(c["level"], th))
            traces.append(go.Scattermap(lon=lon, lat=lat, mode="lines", line={"width": 1.2, "color": colour},
                                        hoverinfo="skip", name=t(key, lang)))
    if data.get("extra"):
        lon, lat = _circles(data["extra"], lambda c: coverage.reach_radius(c["level"], th))
        traces.append(go.Scattermap(lon=lon, lat=lat, mode="lines", line={"width": 2, "color": NEW_COLOUR},
                                    hoverinfo="skip", name=t("coverage.legend.reach_new", lang)))
    cs = data["centres"]
    if cs:
        traces.append(go.Scattermap(
            lon=[c["lon"] for c in cs], lat=[c["lat"] for c in cs], mode="markers",
            marker={"size": [11 if c["level"] in COUNTY_TIER else 7 for c in cs],
                    "color": [STATUS_COLOURS.get(c["status"], "#888") for c in cs]},
            customdata=[["centre", c["id"], c["name"], t(f"coverage.centre.{c['status']}", lang)] for c in cs],
            hovertemplate="<b>%{customdata[2]}</b><br>%{customdata[3]}<extra></extra>", name=t("coverage.legend.centres", lang)))
    if data.get("extra"):
        ex = data["extra"]
        traces.append(go.Scattermap(
            lon=[p["lon"] for p in ex], lat=[p["lat"] for p in ex], mode="markers",
            marker={"size": 14, "color": NEW_COLOUR},
            customdata=[["new", i] for i in range(len(ex))], hoverinfo="skip", name=t("coverage.legend.new", lang)))
    fig = go.Figure(traces)
    layers = []
    if data["gaps"]["features"]:
        layers.append({"sourcetype": "geojson", "source": data["gaps"], "type": "fill", "color": GAP_COLOUR,
                       "opacity": 0.38, "below": "traces", "name": "gaps"})
    fig.update_layout(
        map={"style": local_style(), "center": centre, "zoom": zoom, "layers": layers},
        margin={"l": 0, "r": 0, "t": 0, "b": 0}, clickmode="event",
        legend={"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.85)", "font": {"size": 12}},
        uirevision=data["code"], paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def _km(m: float) -> str:
    return f"{m / 1000:g}"


def figure_cards(data: dict, lang: str) -> list:
    """Cards of the spatial figures; with a what-if, 'before → after'."""
    before, after = data["before"], data.get("after")
    th = data["thresholds"]

    def value(fig, path, kind):
        v = fig
        for p in path:
            v = v[p]
        if kind == "share":
            return fmt_percent(v, lang)
        return fmt_number(v, lang)

    def card(key, label, path, kind, note=""):
        now = value(after or before, path, kind)
        children = [html.Div(label, className="kpi-label"),
                    html.Div(now, id=f"coverage-fig-{key}", className="kpi-value")]
        if after is not None:
            children.append(html.Div([t("coverage.fig.whatif", lang), " ", html.Span(value(before, path, kind), id=f"coverage-fig-{key}-before"),
                                      " → ", now], className="kpi-note coverage-whatif-note"))
        else:
            children.append(html.Div(note, className="kpi-note"))
        return html.Div(children, className="kpi-card")

    cur = after or before
    cards = [
        card("township-area", t("coverage.fig.township", lang, km=_km(th["township_m"])), ("township", "area_share"), "share",
             t("coverage.fig.area_note", lang)),
        card("county-area", t("coverage.fig.county", lang, km=_km(th["county_m"])), ("county", "area_share"), "share",
             t("coverage.fig.area_note", lang)),
        card("any-area", t("coverage.fig.any", lang), ("any", "area_share"), "share"),
        card("grids", t("coverage.fig.grids", lang), ("any", "grid_share"), "share",
             t("coverage.fig.grids_note", lang, a=f"{cur['any']['grids']:,}", b=f"{cur['grids']:,}")),
    ]
    if cur["population"] is not None:
        cards.append(card("people", t("coverage.fig.people", lang), ("any", "people_share"), "share"))
    else:
        cards.append(html.Div([html.Div(t("coverage.fig.people", lang), className="kpi-label"),
                               html.Div("—", id="coverage-fig-people", className="kpi-value"),
                               html.Div(t("coverage.fig.people_none", lang), className="kpi-note")], className="kpi-card"))
    cards.append(card("gap", t("coverage.fig.gap", lang) + " (km²)", ("gap_km2",), "number"))
    travel = data.get("travel")
    if travel:
        for tier in ("township", "county"):
            fig = travel[tier]
            median = fig["median_minutes"]
            within = fig["grid_share_within"].get("30")
            cards.append(html.Div([
                html.Div(t(f"coverage.fig.travel_{tier}", lang), className="kpi-label"),
                html.Div("—" if median is None else t("coverage.fig.minutes", lang, n=f"{median:,.0f}"),
                         id=f"coverage-fig-travel-{tier}", className="kpi-value"),
                html.Div(t("coverage.fig.travel_note", lang, share=fmt_percent(within, lang)), className="kpi-note"),
            ], className="kpi-card"))
    return cards


def institutional_table(data: dict, lang: str):
    rows = data["institutional"]
    if not rows:
        return html.P(t("coverage.children.none", lang), className="muted")
    head = html.Tr([html.Th(t(f"coverage.col.{c}", lang)) for c in ("level", "children", "with_centre", "with_entity", "share", "missing")])
    body = []
    for r in rows:
        missing = r["missing"]
        if missing:
            items = [html.Li([dcc.Link(m["name"], href=f"/coverage/{m['code']}", id=f"coverage-missing-{m['code']}"),
                              html.Span(f" ({m['code']} · {t('coverage.status.' + (m['status'] or 'none'), lang)})", className="muted")])
                     for m in missing[:200]]
            cell = html.Details([html.Summary(t("coverage.missing.show", lang, n=len(missing)), id=f"coverage-missing-toggle-{r['level']}"),
                                 html.Ul(items, className="coverage-missing", id=f"coverage-missing-list-{r['level']}")])
        else:
            cell = t("coverage.missing.none", lang)
        body.append(html.Tr([
            html.Td(t(f"coverage.level.{r['level']}", lang)), html.Td(f"{r['children']:,}", className="num"),
            html.Td(f"{r['with_centre']:,}", className="num"), html.Td(f"{r['with_entity']:,}", className="num"),
            html.Td(fmt_percent(r["share_entity"], lang), className="num", id=f"coverage-share-{r['level']}"),
            html.Td(cell),
        ]))
    return html.Table([html.Thead(head), html.Tbody(body)], className="ranking-table", id="coverage-institutional-table")


def breadcrumb(data: dict) -> list:
    items: list = []
    for i, node in enumerate(data["chain"]):
        if i:
            items.append(html.Span("›", className="breadcrumb-sep"))
        if node["code"] == data["code"]:
            items.append(html.Span(node["name"], className="breadcrumb-current", id="coverage-crumb-current"))
        else:
            items.append(dcc.Link(node["name"], href=f"/coverage/{node['code']}", className="breadcrumb-link",
                                  id=f"coverage-crumb-{node['code']}"))
    return items


@dash.callback(Output("coverage-map", "figure"), Output("coverage-figures", "children"), Output("coverage-institutional", "children"),
               Output("coverage-breadcrumb", "children"), Output("coverage-count", "children"),
               Output("coverage-township-km", "placeholder"), Output("coverage-county-km", "placeholder"),
               Input("coverage-data", "data"), Input("shell-lang", "data"))
def render(data, lang):
    lang = lang or "zh"
    if not data:
        return no_update, t("state.loading", lang), "", t("state.loading", lang), "", no_update, no_update
    if data["status"] == "nodata":
        return no_update, t("coverage.nodata", lang), "", "", "", no_update, no_update
    if data["status"] != "ok":
        return no_update, t("coverage.unknown", lang, code=data.get("code")), "", "", "", no_update, no_update
    stored = data["stored_thresholds"]
    return (coverage_figure(data, lang), figure_cards(data, lang), institutional_table(data, lang), breadcrumb(data),
            t("coverage.whatif.count", lang, n=len(data.get("extra") or [])), _km(stored["township_m"]), _km(stored["county_m"]))


@dash.callback(Output("coverage-spatial-title", "children"), Output("coverage-whatif-title", "children"),
               Output("coverage-institutional-title", "children"), Output("coverage-hint", "children"),
               Output("coverage-level-label", "children"), Output("coverage-level", "options"), Output("coverage-k-label", "children"),
               Output("coverage-suggest", "children"), Output("coverage-clear", "children"), Output("coverage-save", "children"),
               Output("coverage-commit", "children"), Output("coverage-scenario-name", "placeholder"),
               Output("coverage-scenario-pick", "placeholder"),
               Output("coverage-export-html", "children"), Output("coverage-export-html", "href"), Output("coverage-export-html", "download"),
               Output("coverage-export-gpkg", "children"), Output("coverage-export-gpkg", "href"), Output("coverage-export-gpkg", "download"),
               Output("coverage-township-km-label", "children"), Output("coverage-county-km-label", "children"),
               Output("coverage-centre-status-label", "children"), Output("coverage-centre-staff-label", "children"),
               Output("coverage-centre-save", "children"), Output("coverage-centre-status", "options"),
               Input("shell-lang", "data"), Input("coverage-code", "data"))
def label(lang, code):
    lang = lang or "zh"
    code = code or "62"
    return (t("coverage.spatial", lang), t("coverage.whatif", lang), t("coverage.institutional", lang), t("coverage.whatif.hint", lang),
            t("coverage.whatif.level", lang),
            [{"label": t("level.township", lang), "value": "township"}, {"label": t("level.county", lang), "value": "county"}],
            t("coverage.whatif.k", lang), t("coverage.whatif.suggest", lang), t("coverage.whatif.clear", lang),
            t("coverage.whatif.save", lang), t("coverage.whatif.commit", lang), t("coverage.whatif.name", lang),
            t("coverage.whatif.pick", lang),
            t("coverage.export.html", lang), f"/export/coverage/{code}.html", f"coverage-{code}.html",
            t("coverage.export.gpkg", lang), f"/export/coverage/{code}.gpkg", f"coverage-{code}.gpkg",
            t("coverage.reach.township", lang), t("coverage.reach.county", lang),
            t("coverage.centre.status", lang), t("coverage.centre.staff", lang), t("coverage.centre.save", lang),
            [{"label": t(f"coverage.centre.{v}", lang), "value": v} for v in ("planned", "established", "entity")])


# -- the what-if: hypothetical centres live in the browser until saved ----------------------------

def place(extra: list[dict], click: dict | None, level: str) -> list[dict] | None:
    """``extra`` plus a centre at the clicked cell's label point; None when the click was not on a cell."""
    try:
        point = click["points"][0]
        kind, _code, lon, lat = point["customdata"][:4]
    except (TypeError, KeyError, IndexError, ValueError):
        return None
    if kind != "cell" or lon is None or lat is None:
        return None
    return list(extra or []) + [{"lon": float(lon), "lat": float(lat), "level": level or "township"}]


@dash.callback(Output("coverage-extra", "data"), Output("coverage-status", "children"),
               Input("coverage-map", "clickData"), Input("coverage-suggest", "n_clicks"), Input("coverage-clear", "n_clicks"),
               Input("coverage-scenario-pick", "value"),
               State("coverage-extra", "data"), State("coverage-level", "value"), State("coverage-k", "value"),
               State("coverage-code", "data"), State("coverage-township-km", "value"), State("coverage-county-km", "value"),
               State("shell-lang", "data"), prevent_initial_call=True)
@db_callback
def change_extra(click, _suggest, _clear, picked, extra, level, k, code, township_km, county_km, lang):
    lang = lang or "zh"
    trigger = ctx.triggered_id
    if trigger == "coverage-map":
        placed = place(extra, click, level)
        return (placed, "") if placed is not None else (no_update, no_update)
    if trigger == "coverage-clear":
        return [], ""
    if trigger == "coverage-scenario-pick":
        if not picked:
            return no_update, no_update
        with transaction(pool(), readonly=True) as conn:
            rows = coverage.scenario_centres(conn, picked)
        return [{"lon": r["lon"], "lat": r["lat"], "level": r["level"]} for r in rows], ""
    if trigger == "coverage-suggest":
        points = [Hypothetical(p["lon"], p["lat"], p["level"]) for p in extra or []]
        try:
            with transaction(pool(), readonly=True) as conn:
                sites = coverage.suggest_sites(conn, code or "62", int(k or 3), extra=points, level=level or "township",
                                               thresholds=_thresholds(conn, township_km, county_km))
        except CoverageError as exc:
            return no_update, str(exc)
        if not sites:
            return no_update, t("coverage.whatif.nosite", lang)
        return list(extra or []) + [{"lon": s["lon"], "lat": s["lat"], "level": s["level"]} for s in sites], ""
    return no_update, no_update


@dash.callback(Output("coverage-status", "children", allow_duplicate=True), Output("coverage-refresh", "data"),
               Output("coverage-extra", "data", allow_duplicate=True), Output("coverage-scenario-pick", "options"),
               Input("coverage-save", "n_clicks"), Input("coverage-commit", "n_clicks"), Input("coverage-code", "data"),
               State("coverage-extra", "data"), State("coverage-scenario-name", "value"), State("coverage-refresh", "data"),
               State("shell-lang", "data"), prevent_initial_call="initial_duplicate")
@db_callback
def save(_save, _commit, _code, extra, name, refresh, lang):
    lang = lang or "zh"
    trigger = ctx.triggered_id
    if trigger not in ("coverage-save", "coverage-commit"):
        with transaction(pool(), readonly=True) as conn:
            names = [s["name"] for s in coverage.list_scenarios(conn)]
        return no_update, no_update, no_update, names
    name = (name or "").strip()
    if not name:
        return t("coverage.whatif.noname", lang), no_update, no_update, no_update
    if not extra:
        return t("coverage.whatif.nopoints", lang), no_update, no_update, no_update
    points = [Hypothetical(p["lon"], p["lat"], p["level"]) for p in extra]
    try:
        with transaction(pool()) as conn:
            rows = coverage.replace_scenario(conn, name, points)
            if trigger == "coverage-commit":
                coverage.save_scenario(conn, name, "planned")
            names = [s["name"] for s in coverage.list_scenarios(conn)]
    except (CoverageError, LookupError) as exc:
        return str(exc), no_update, no_update, no_update
    if trigger == "coverage-commit":
        return t("coverage.whatif.committed", lang, name=name, n=len(rows)), (refresh or 0) + 1, [], names
    return t("coverage.whatif.saved", lang, name=name, n=len(rows)), no_update, no_update, names


# -- the registry: click a centre on the map to see it and change its status or staff ------------

@dash.callback(Output("coverage-selected", "data"), Input("coverage-map", "clickData"), Input("coverage-centre-close", "n_clicks"),
               prevent_initial_call=True)
def select_centre(click, _close):
    if ctx.triggered_id == "coverage-centre-close":
        return None
    try:
        kind, ident = click["points"][0]["customdata"][:2]
    except (TypeError, KeyError, IndexError, ValueError):
        return no_update
    return int(ident) if kind == "centre" else no_update


def centre_details(c: dict, lang: str) -> list:
    depts = ", ".join(d["name"] for d in c["departments"]) or t("coverage.centre.none", lang)
    rows = [("level", t(f"level.{c['level']}", lang)), ("region", f"{c['region_name']} ({c['region_code']})"),
            ("departments", depts), ("place", f"{c['lon']:.5f}, {c['lat']:.5f}")]
    out: list = []
    for key, value in rows:
        out += [html.Dt(t(f"coverage.centre.{key}", lang)), html.Dd(value, id=f"coverage-centre-{key}")]
    return out


@dash.callback(Output("coverage-centre-panel", "hidden"), Output("coverage-centre-title", "children"),
               Output("coverage-centre-details", "children"), Output("coverage-centre-status", "value"),
               Output("coverage-centre-staff", "value"), Output("coverage-centre-message", "children"),
               Input("coverage-selected", "data"), Input("shell-lang", "data"))
@db_callback
def show_centre(centre_id, lang):
    lang = lang or "zh"
    if not centre_id:
        return True, "", [], no_update, no_update, ""
    try:
        with transaction(pool(), readonly=True) as conn:
            c = coverage.get_centre(conn, int(centre_id))
    except LookupError:
        return False, t("coverage.centre.gone", lang), [], no_update, no_update, ""
    return False, c["name"], centre_details(c, lang), c["status"], c["staff"], ""


@dash.callback(Output("coverage-centre-message", "children", allow_duplicate=True),
               Output("coverage-refresh", "data", allow_duplicate=True),
               Input("coverage-centre-save", "n_clicks"), State("coverage-selected", "data"),
               State("coverage-centre-status", "value"), State("coverage-centre-staff", "value"),
               State("coverage-refresh", "data"), State("shell-lang", "data"), prevent_initial_call=True)
@db_callback
def save_centre(_n, centre_id, status, staff, refresh, lang):
    lang = lang or "zh"
    if not centre_id:
        return no_update, no_update
    patch = {"status": status}
    if staff is not None and staff != "":
        patch["staff"] = int(staff)
    try:
        with transaction(pool()) as conn:
            coverage.update_centre(conn, int(centre_id), patch)
    except (CentreLoadError, CoverageError, LookupError) as exc:
        return str(exc), no_update
    except psycopg.Error:      # refused or lost (e.g. a role without the grant): say so, never leave the page waiting
        return t("state.error.db", lang), no_update
    return t("coverage.centre.saved", lang), (refresh or 0) + 1
