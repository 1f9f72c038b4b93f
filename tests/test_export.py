"""The offline folium export: one HTML file that draws its layers with the network cut off."""

from __future__ import annotations

import re

import folium
import pytest
from shapely.geometry import box, mapping

from gridwatch.reports import OfflineExportError, export_html, offline_html
from tests.conftest import wait_until
from tests.factories import make_centre


def _two_squares_map() -> folium.Map:
    m = folium.Map(location=[37, 102], zoom_start=6, tiles=None)
    features = [
        {"type": "Feature", "properties": {"name": "兰州市"}, "geometry": mapping(box(100, 35, 102, 39))},
        {"type": "Feature", "properties": {"name": "张掖市"}, "geometry": mapping(box(102, 35, 104, 39))},
    ]
    folium.GeoJson({"type": "FeatureCollection", "features": features}, name="regions",
                   tooltip=folium.GeoJsonTooltip(["name"])).add_to(m)
    folium.CircleMarker([36.5, 101.0], radius=6, color="#d7191c").add_to(m)
    folium.Marker([37.5, 103.0]).add_to(m)
    return m


def _block_everything_but_files(page) -> list[str]:
    blocked: list[str] = []

    def handle(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "about:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", handle)
    return blocked


def test_an_offline_export_names_no_outside_host_and_inlines_leaflet():
    html = offline_html(_two_squares_map(), title="甘肃省")
    fetched = re.findall(r"""<(?:script|link|img)\b[^>]*(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert fetched == [], f"the export still loads {fetched}"
    assert "Leaflet 1.9.4" in html and "L.map(" in html
    assert "<title>甘肃省</title>" in html
    assert "cdn.jsdelivr.net" not in html and "code.jquery.com" not in html


def test_an_offline_export_opens_from_a_file_with_the_network_blocked_and_draws_its_layers(tmp_path, browser_page):
    path = tmp_path / "export.html"
    path.write_text(offline_html(_two_squares_map()), encoding="utf-8")
    blocked = _block_everything_but_files(browser_page.page)
    errors: list[str] = []
    browser_page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_page.goto(path.as_uri())
    # two polygons + one circle marker are SVG paths; the default marker is an <img> from a data URI
    wait_until(lambda: browser_page.locator("path.leaflet-interactive").count() == 3, timeout=20,
               message="Leaflet to draw 2 polygons and 1 circle marker")
    marker = browser_page.locator("img.leaflet-marker-icon")
    assert marker.count() == 1
    assert marker.evaluate("img => img.complete && img.naturalWidth > 0"), "the marker icon did not load offline"
    assert errors == [], f"script errors in the export: {errors}"
    assert blocked == [], f"the export tried to fetch {blocked}"
    browser_page.screenshot_to("export-offline")


def test_an_online_tile_layer_is_refused_with_the_fix_named():
    with pytest.raises(OfflineExportError, match=r"tile\.openstreetmap\.org.*tiles=None"):
        offline_html(folium.Map(location=[36, 103]))


def test_icon_markers_that_need_a_cdn_font_are_refused_with_the_fix_named():
    m = folium.Map(location=[36, 103], tiles=None)
    folium.Marker([36, 103], icon=folium.Icon(icon="cloud")).add_to(m)
    with pytest.raises(OfflineExportError, match="CircleMarker"):
        offline_html(m)


def test_names_typed_by_people_are_escaped_in_the_region_export(conn, tiny):
    hostile = "</script><img src=x onerror=alert(1)>中心"
    make_centre(conn, "6201", "prefecture", 101.0, 37.0, name=hostile)
    html = export_html(conn, "620000")  # GB/T 2260 spelling of 甘肃省
    assert "<title>gridwatch · 甘肃省</title>" in html
    assert hostile not in html and "<img src=x" not in html
    # the centre is there, its name escaped (then JSON-encoded by folium: & is \u0026)
    assert html.count("onerror=alert(1)") == 1
    assert "\\u0026lt;/script\\u0026gt;\\u0026lt;img src=x onerror=alert(1)\\u0026gt;" in html
