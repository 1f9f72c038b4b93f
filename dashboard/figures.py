"""Figure builders: plain functions from values to plotly figures (and a few formatters).

Callbacks stay one-liners around these; tests call them directly. Nothing here touches the
database or the network.
"""

from __future__ import annotations

import math
import plotly.graph_objects as go
from dash import Patch

from dashboard.maps import local_style, tile_layers
from gridwatch.display import (
    GRADE_COLOURS, MEASURE_SCALES, NO_DATA, fmt_measure, is_generated, measure_colours, measure_label, zoom_for_bounds,
)
from gridwatch.charts import big_number, fmt_day, grade_bar, level_bar, spark_totals, sparkline
from gridwatch.i18n import register, t

__all__ = [
    "MEASURE_SCALES", "GRADE_COLOURS", "measure_label", "sort_rows", "fmt_measure", "big_number", "fmt_day", "measure_colours",
    "region_map", "wall_map", "sparkline", "spark_totals", "figure_signature", "figure_patch", "with_geometry", "level_bar", "grade_bar", "empty_figure", "is_generated",
]

register({
    "level.province": {"zh": "省", "en": "Province"},
    "level.prefecture": {"zh": "市州", "en": "Prefecture"},
    "level.county": {"zh": "县区", "en": "County"},
    "level.township": {"zh": "乡镇街道", "en": "Township"},
    "level.village": {"zh": "村社区", "en": "Village"},
    "level.grid": {"zh": "网格", "en": "Grid"},
    "legend.bubbles": {"zh": "未结案件数", "en": "Open cases"},
    "legend.cases": {"zh": "案件（按等级着色）", "en": "Cases (coloured by grade)"},
    "legend.hazards": {"zh": "隐患（按等级着色）", "en": "Hazards (coloured by grade)"},
    "legend.current": {"zh": "当前区域", "en": "Current region"},
})

DARK = "#0b1220"


def sort_rows(rows: list[dict], key: str, desc: bool) -> list[dict]:
    """Rows by ``key``, missing values (None) always last, ties in code order.

    >>> [r["code"] for r in sort_rows([{"code": "2", "x": 1}, {"code": "1", "x": None}, {"code": "3", "x": 1}], "x", True)]
    ['2', '3', '1']
    """
    present = sorted((r for r in rows if r.get(key) is not None), key=lambda r: r["code"])
    present.sort(key=lambda r: r[key], reverse=desc)  # stable: ties stay in code order
    return present + sorted((r for r in rows if r.get(key) is None), key=lambda r: r["code"])


def empty_figure(message: str = "", dark: bool = False) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        xaxis={"visible": False}, yaxis={"visible": False}, margin={"l": 0, "r": 0, "t": 0, "b": 0},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        annotations=[{"text": message, "showarrow": False, "font": {"size": 16, "color": "#ccc" if dark else "#667"}}] if message else [],
    )
    return fig


def _choropleth_traces(fc: dict, measure: str, lang: str | None, *, hover: bool = True) -> list:
    features = fc.get("features", [])
    groups: dict[str, list[dict]] = {"surveyed": [], "generated": [], "nodata": []}
    for f in features:
        p = f["properties"]
        if p.get(measure) is None:
            groups["nodata"].append(f)
        else:
            groups["generated" if is_generated(p.get("source")) else "surveyed"].append(f)
    label = measure_label(measure, lang)
    traces = []
    for key, feats in groups.items():
        if not feats:
            continue
        props = [f["properties"] for f in feats]
        common = dict(
            geojson={"type": "FeatureCollection", "features": feats},
            locations=[p["code"] for p in props], featureidkey="properties.code",
            customdata=[["region", p["code"], p["name"], fmt_measure(measure, p.get(measure), lang),
                         t("legend.generated" if is_generated(p.get("source")) else "legend.surveyed", lang)] for p in props],
            name=t(f"legend.{key}", lang), showlegend=True, legendgroup=key,
            marker={"opacity": 0.78, "line": {"width": 1.2, "color": "#ffffff"}},
        )
        if hover:
            common["hovertemplate"] = "<b>%{customdata[2]}</b><br>" + label + "：%{customdata[3]}<br><i>%{customdata[4]}</i><extra></extra>"
        else:
            common["hoverinfo"] = "skip"
        if key == "nodata":
            traces.append(go.Choroplethmap(z=[0] * len(props), colorscale=[[0, NO_DATA], [1, NO_DATA]], showscale=False, **common))
        else:
            traces.append(go.Choroplethmap(z=[p[measure] for p in props], coloraxis="coloraxis", **common))
    return traces


def region_map(fc: dict, measure: str, lang: str | None, *, bounds, versions: dict | None = None,
               points: dict | None = None, bubbles: bool = False, self_only: bool = False,
               size: tuple[int, int] = (900, 620), uirevision: str | None = None) -> go.Figure:
    """The drill-down map: children coloured by ``measure``, clickable; vector-tile layers above.

    ``points`` ({cases: [...], hazards: [...]}) adds clickable case and hazard markers; ``bubbles``
    adds a bubble per child sized by its open cases (the low-zoom aggregate). ``self_only``: the
    region has no children (a grid) and ``fc`` holds the region itself, drawn without a measure.
    """
    centre, zoom = zoom_for_bounds(bounds, *size)
    values = [f["properties"].get(measure) for f in fc.get("features", [])]
    real = [v for v in values if v is not None]
    if self_only:
        traces = [go.Choroplethmap(
            geojson=fc, locations=[f["properties"]["code"] for f in fc["features"]], featureidkey="properties.code",
            z=[1] * len(fc["features"]), colorscale=[[0, "#9ecae1"], [1, "#9ecae1"]], showscale=False,
            marker={"opacity": 0.35, "line": {"width": 2, "color": "#2b8cbe"}},
            customdata=[["self", f["properties"]["code"], f["properties"]["name"]] for f in fc["features"]],
            hovertemplate="<b>%{customdata[2]}</b><extra></extra>", name=t("legend.current", lang), showlegend=True)]
    else:
        traces = _choropleth_traces(fc, measure, lang)
    if bubbles and not self_only:
        props = [f["properties"] for f in fc.get("features", []) if f["properties"].get("open")]
        if props:
            top = max(p["open"] for p in props)
            traces.append(go.Scattermap(
                lon=[p["lon"] for p in props], lat=[p["lat"] for p in props], mode="markers",
                marker={"size": [10 + 30 * math.sqrt(p["open"] / top) for p in props], "color": "#e6550d", "opacity": 0.65},
                customdata=[["region", p["code"], p["name"], f"{p['open']:,}"] for p in props],
                hovertemplate="<b>%{customdata[2]}</b><br>" + t("legend.bubbles", lang) + "：%{customdata[3]}<extra></extra>",
                name=t("legend.bubbles", lang)))
    if points:
        for family, size_px, opacity in (("hazards", 14, 0.55), ("cases", 9, 0.95)):
            rows = points.get(family) or []
            if not rows:
                continue
            traces.append(go.Scattermap(
                lon=[r["lon"] for r in rows], lat=[r["lat"] for r in rows], mode="markers",
                marker={"size": size_px, "color": [GRADE_COLOURS.get(r["grade"], "#888") for r in rows], "opacity": opacity},
                customdata=[[family[:-1], r["id"], r["title"], t(f"grade.{r['grade']}", lang)] for r in rows],
                hovertemplate="<b>%{customdata[2]}</b><br>%{customdata[3]}<extra></extra>",
                name=t(f"legend.{family}", lang)))
    fig = go.Figure(traces)
    scale = MEASURE_SCALES.get(measure, "YlOrRd")
    top = 1 if measure == "coverage" else max(real + [1])
    fig.update_layout(
        map={"style": local_style(), "center": centre, "zoom": zoom, "layers": tile_layers(versions)},
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        coloraxis={"colorscale": scale, "cmin": 0, "cmax": top,
                   "colorbar": {"title": {"text": measure_label(measure, lang)}, "thickness": 12, "len": 0.6,
                                "tickformat": ".0%" if measure == "coverage" else ",d" if measure != "cases_per_grid" else ",.1f",
                                **({"dtick": 1} if measure in ("open", "overdue", "hazards_open") and top <= 8 else {})}},
        legend={"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.85)", "font": {"size": 12}},
        uirevision=uirevision, clickmode="event",
        paper_bgcolor="rgba(0,0,0,0)",
        # the browser re-fits centre and zoom to the graph's real size (dashboard/assets/gridwatch.js)
        meta={"fit": {"bounds": list(bounds), "padding": 0.3, "reserve": 100}},
    )
    return fig


def wall_map(fc: dict, current: str | None, lang: str | None, *, bounds, versions: dict | None = None,
             size: tuple[int, int] = (1100, 800)) -> go.Figure:
    """The wall's map: prefectures by open cases on a dark local style, the toured one outlined.

    No hover-only information: the numbers are on the panels beside it. The outline of the toured
    prefecture is a per-feature line width, so moving the tour changes no geometry.
    """
    centre, zoom = zoom_for_bounds(bounds, *size, padding=0.15)
    traces = _choropleth_traces(fc, "open", lang, hover=False)
    for tr in traces:
        tr.marker.line.color = ["#ffe14d" if code == current else "#0b1220" for code in tr.locations]
        tr.marker.line.width = [5 if code == current else 1 for code in tr.locations]
        tr.showlegend = False
    fig = go.Figure(traces)
    fig.update_layout(
        map={"style": local_style(dark=True), "center": centre, "zoom": zoom,
             "layers": tile_layers(versions, ("regions", "case_counts", "centres"), dark=True)},
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        coloraxis={"colorscale": "YlOrRd", "cmin": 0,
                   "cmax": max([f["properties"].get("open") or 0 for f in fc.get("features", [])] + [1]),
                   "colorbar": {"title": {"text": measure_label("open", lang), "font": {"color": "#e8eef7", "size": 18}},
                                "tickfont": {"color": "#e8eef7", "size": 16}, "thickness": 16, "len": 0.5}},
        paper_bgcolor=DARK, plot_bgcolor=DARK, uirevision="wall",
        meta={"fit": {"bounds": list(bounds), "padding": 0.1, "reserve": 120, "screenScale": True}},
    )
    return fig


def figure_signature(fig: go.Figure) -> list:
    """What a live refresh may not change without redrawing: each trace's type, name and places."""
    sig = []
    for tr in fig.data:
        places = list(tr.locations) if getattr(tr, "locations", None) is not None else len(tr.lon or [])
        sig.append([tr.type, tr.name, places])
    return sig


def figure_patch(fig: go.Figure) -> Patch:
    """A dash ``Patch`` carrying ``fig``'s values but not its outlines (``geojson``).

    For live refreshes of a map whose traces keep their signature (:func:`figure_signature`):
    the browser keeps the outlines it has, only numbers, colours, markers and tile URLs travel.
    """
    patch = Patch()
    for i, tr in enumerate(fig.data):
        for key, value in tr.to_plotly_json().items():
            if key not in ("geojson", "type"):
                patch["data"][i][key] = value
    patch["layout"]["map"]["layers"] = [layer.to_plotly_json() for layer in fig.layout.map.layers]
    patch["layout"]["coloraxis"] = fig.layout.coloraxis.to_plotly_json()
    return patch


def with_geometry(values: dict, outlines: dict) -> dict:
    """``values``' features (geometry left out) with the geometry of ``outlines``' same codes."""
    geometry = {f["properties"]["code"]: f["geometry"] for f in outlines.get("features", [])}
    return {"type": "FeatureCollection", "features": [
        {**f, "geometry": geometry.get(f["properties"]["code"])} for f in values.get("features", [])
        if geometry.get(f["properties"]["code"]) is not None]}
