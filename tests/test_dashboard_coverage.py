"""The coverage page in headless Chromium: figures, the drill to regions without an entity centre,
and the what-if — a centre placed in a gap by clicking the map raises coverage and shrinks the gap."""

from __future__ import annotations

import re

import pytest

from gridwatch import coverage
from tests.conftest import wait_until
from tests.factories import make_centre
from tests.test_coverage import C1, T1

pytestmark = pytest.mark.browser


@pytest.fixture
def site(conn, tiny, db_url, serve):
    make_centre(conn, "62", "province", *C1)             # county-tier centres all at C1: one 80 km circle
    make_centre(conn, "6201", "prefecture", *C1)
    make_centre(conn, "6207", "prefecture", 103.0, 36.0, status="established")
    make_centre(conn, "620102", "county", *C1)
    make_centre(conn, "620102100", "township", *T1)
    coverage.recompute(conn, township_m=30_000, county_m=80_000)
    return serve(db_url)


def percent(text: str) -> float:
    return float(re.search(r"([\d.]+)%", text).group(1))


def number(text: str) -> float:
    return float(text.replace(",", ""))


PROJECT = """([lon, lat]) => {
    const gd = document.querySelector('#coverage-map .js-plotly-plot');
    const map = gd._fullLayout.map._subplot.map;
    const p = map.project([lon, lat]);
    const r = map.getContainer().getBoundingClientRect();
    return {x: r.left + p.x, y: r.top + p.y};
}"""

HOLES = """() => {
    // rings beyond the outer one in the map's gap layer for the north township: one hole per reach circle
    const gd = document.querySelector('#coverage-map .js-plotly-plot');
    const layer = (gd.layout.map.layers || []).find(l => l.name === 'gaps');
    const f = layer && layer.source.features.find(f => f.properties.township_code === '620102100');
    return f ? f.geometry.coordinates.reduce((n, poly) => n + poly.length - 1, 0) : -1;
}"""

NEW_MARKERS = """() => {
    const gd = document.querySelector('#coverage-map .js-plotly-plot');
    const tr = gd.data.find(t => t.mode === 'markers' && t.customdata && t.customdata.length && t.customdata[0][0] === 'new');
    return tr ? tr.lon.map((x, i) => [x, tr.lat[i]]) : [];
}"""

DRAWN_LAYERS = """() => {
    // what MapLibre really draws (not only what the figure says): a failed style update leaves these stale
    const gd = document.querySelector('#coverage-map .js-plotly-plot');
    return gd._fullLayout.map._subplot.map.getStyle().layers.filter(l => l.id.indexOf('plotly-trace-layer') === 0).length;
}"""

MAP_READY = """() => {
    const gd = document.querySelector('#coverage-map .js-plotly-plot');
    return !!(gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot
              && gd._fullLayout.map._subplot.map && gd._fullLayout.map._subplot.map.loaded());
}"""


def test_a_centre_placed_in_a_gap_by_clicking_the_map_raises_coverage_and_shrinks_the_gap(site, browser_page, conn):
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.url + "/coverage/620102")
    page.wait_for_selector("#coverage-fig-any-area")
    page.wait_for_function(MAP_READY)
    drawn_before = page.evaluate(DRAWN_LAYERS)
    area_before = percent(page.inner_text("#coverage-fig-any-area"))
    gap_before = number(page.inner_text("#coverage-fig-gap"))
    assert page.inner_text("#coverage-fig-grids") == "62.5%"                 # 5 of 8 grids
    assert page.evaluate(HOLES) == 1                                         # T1's circle
    registry = conn.execute("SELECT count(*) AS n FROM centre").fetchone()["n"]
    page.screenshot_to("coverage-before")

    # the north-east grid 620102100201002 (label point 101.5, 37.5) is beyond every centre's reach
    xy = page.evaluate(PROJECT, [101.5, 37.6])
    page.mouse.click(xy["x"], xy["y"])
    wait_until(lambda: page.locator("#coverage-fig-any-area-before").count() > 0, timeout=30,
               message="the what-if figures to appear")
    area_after = percent(page.inner_text("#coverage-fig-any-area"))
    gap_after = number(page.inner_text("#coverage-fig-gap"))
    assert area_after > area_before
    assert gap_after < gap_before
    assert page.inner_text("#coverage-fig-grids") == "75.0%"                 # 6 of 8 grids
    # a 30 km 32-gon is 2,809 km² (16 r² sin π/16): the gap shrinks by about that much
    assert gap_before - gap_after == pytest.approx(2809, rel=0.01)
    assert "1" in page.inner_text("#coverage-count")
    # on the map: the hypothetical centre sits at the clicked grid's label point, and the north
    # township's gap has a second hole
    wait_until(lambda: page.evaluate(HOLES) == 2, timeout=20, message="the gap on the map to get a second hole")
    assert page.evaluate(NEW_MARKERS) == [[101.5, 37.5]]
    # MapLibre drew the two new traces (the hypothetical reach and marker: 4 layers each)
    wait_until(lambda: page.evaluate(DRAWN_LAYERS) == drawn_before + 8, timeout=20, message="the map to draw the what-if")
    page.wait_for_function(MAP_READY)
    assert errors == []
    page.screenshot_to("coverage-after-click")
    assert conn.execute("SELECT count(*) AS n FROM centre").fetchone()["n"] == registry   # the registry is untouched


def test_the_institutional_table_drills_from_the_share_to_the_regions_without_an_entity_centre(site, browser_page):
    page = browser_page
    page.goto(site.url + "/coverage")
    page.wait_for_selector("#coverage-share-county")
    assert page.inner_text("#coverage-share-prefecture") == "50.0%"
    assert page.inner_text("#coverage-share-county") == "50.0%"
    page.click("#coverage-missing-toggle-county")
    link = page.locator("#coverage-missing-620702")
    assert link.is_visible() and link.inner_text() == "甘州区"
    link.click()
    page.wait_for_url(re.compile(r"/coverage/620702$"))
    # the address changes before the page re-renders: wait for the county's own view, not the province's
    wait_until(lambda: page.locator("#coverage-crumb-current").count() == 1
               and page.inner_text("#coverage-crumb-current") == "甘州区",
               timeout=20, message="the county's coverage view")
    wait_until(lambda: page.inner_text("#coverage-share-township") == "0.0%", timeout=20,
               message="the county's township share")


def test_k_best_sites_and_saving_a_named_scenario_leave_the_registry_alone(site, browser_page, conn):
    page = browser_page
    page.goto(site.url + "/coverage/620102")
    page.wait_for_selector("#coverage-fig-any-area")
    before = percent(page.inner_text("#coverage-fig-grids"))
    page.fill("#coverage-k input, input#coverage-k", "2")
    page.click("#coverage-suggest")
    wait_until(lambda: page.locator("#coverage-fig-grids-before").count() > 0, timeout=30, message="the suggested sites")
    assert percent(page.inner_text("#coverage-fig-grids")) == 87.5 > before     # 7 of 8 grids
    registry = conn.execute("SELECT count(*) AS n FROM centre WHERE scenario IS NULL").fetchone()["n"]
    page.fill("#coverage-scenario-name", "北部补点")
    page.click("#coverage-save")
    wait_until(lambda: "北部补点" in page.inner_text("#coverage-status"), timeout=30, message="the saved message")
    rows = conn.execute("SELECT level, region_code FROM centre WHERE scenario = '北部补点' ORDER BY id").fetchall()
    assert [r["region_code"] for r in rows] == ["620102100", "620102100"]
    assert conn.execute("SELECT count(*) AS n FROM centre WHERE scenario IS NULL").fetchone()["n"] == registry


def test_the_page_speaks_english_when_the_language_is_switched(site, browser_page):
    page = browser_page
    page.goto(site.url + "/coverage/620102")
    page.wait_for_selector("#coverage-fig-any-area")
    page.click("#shell-lang-button")
    wait_until(lambda: "Spatial coverage" in page.inner_text("#coverage-spatial-title"), timeout=20, message="English labels")
    assert "Suggest" in page.inner_text("#coverage-suggest")


def test_with_a_road_network_loaded_the_page_shows_travel_times(site, browser_page, conn, tmp_path):
    import json as _json

    from etl.roads import load_roads

    path = tmp_path / "roads.geojson"
    path.write_text(_json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"speed": 60},
                    "geometry": {"type": "LineString", "coordinates": [[100.0, 38.5], [100.5, 38.5], [101.0, 38.5], [101.5, 38.5], [102.0, 38.5]]}}]}))
    load_roads(conn, path, speed_field="speed")
    median = conn.execute("""SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY township_minutes) AS m
                             FROM grid_travel WHERE grid_code LIKE '620102%'""").fetchone()["m"]
    page = browser_page
    page.goto(site.url + "/coverage/620102")
    page.wait_for_selector("#coverage-fig-travel-township")
    assert page.inner_text("#coverage-fig-travel-township") == f"{median:,.0f} 分钟"
    assert "12.5%" in page.inner_text("#coverage-figures")          # 1 of 8 grids within 30 min of T1


def test_clicking_a_centre_opens_it_and_changing_its_status_updates_the_registry_and_the_coverage(site, browser_page, conn):
    page = browser_page
    page.goto(site.url + "/coverage/620102")
    page.wait_for_selector("#coverage-fig-any-area")
    page.wait_for_function(MAP_READY)
    assert page.inner_text("#coverage-fig-grids") == "62.5%"
    xy = page.evaluate(PROJECT, list(T1))                       # T1, the township centre of 620102100
    page.mouse.click(xy["x"], xy["y"])
    page.wait_for_selector("#coverage-centre-panel:not([hidden])")
    assert page.inner_text("#coverage-centre-title") == "620102100综治中心"
    assert "620102100" in page.inner_text("#coverage-centre-region")
    page.click("#coverage-centre-status")
    page.get_by_role("option", name="规划", exact=True).click()
    page.fill("#coverage-centre-staff", "9")
    page.click("#coverage-centre-save")
    wait_until(lambda: page.inner_text("#coverage-fig-grids") == "50.0%", timeout=30,
               message="the coverage to drop once T1 is only planned")
    row = conn.execute("SELECT status, staff FROM centre WHERE region_code = '620102100' AND scenario IS NULL").fetchone()
    assert (row["status"], row["staff"]) == ("planned", 9)
    assert page.inner_text("#coverage-fig-township-area") == "0.0%"
    page.screenshot_to("coverage-centre-panel")


def test_a_reach_typed_on_the_page_is_computed_live(site, browser_page):
    page = browser_page
    page.goto(site.url + "/coverage/620102")
    page.wait_for_selector("#coverage-fig-township-area")
    assert page.get_attribute("#coverage-township-km", "placeholder") == "30"
    before = percent(page.inner_text("#coverage-fig-township-area"))
    page.fill("#coverage-township-km", "40")
    page.press("#coverage-township-km", "Enter")
    wait_until(lambda: percent(page.inner_text("#coverage-fig-township-area")) != before, timeout=30, message="the 40 km figure")
    # a 40 km 32-gon inside the county, over the county's area: (40/30)² times the 30 km share
    assert percent(page.inner_text("#coverage-fig-township-area")) == pytest.approx(before * (40 / 30) ** 2, abs=0.11)
