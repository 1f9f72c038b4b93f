"""Alerts on the drill-down map: every live alert comes from the alerts_* vector tiles, coloured by
grade, and a click on one opens its card — in real headless Chromium."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.browser

TILE_FEATURES = """() => { const gd = document.querySelector('#region-map .js-plotly-plot');
    const m = gd && gd._fullLayout.map && gd._fullLayout.map._subplot.map;
    if (!m || !m.loaded()) return [];
    return m.queryRenderedFeatures().filter(f => /^alerts_/.test(f.sourceLayer))
            .map(f => ({id: f.id, layer: f.sourceLayer, colour: f.layer.paint['circle-color']})); }"""
CLICK_POINT = """(id) => { const gd = document.querySelector('#region-map .js-plotly-plot');
    const m = gd._fullLayout.map._subplot.map;
    const f = m.queryRenderedFeatures().find(f => /^alerts_/.test(f.sourceLayer) && f.id === id);
    const p = m.project(f.geometry.coordinates); const r = m.getCanvas().getBoundingClientRect();
    return {x: r.left + p.x, y: r.top + p.y}; }"""


def _alert(conn, severity: str, lon: float, lat: float, text: str) -> int:
    return conn.execute(
        """INSERT INTO alert (rule, region_code, explanation_zh, explanation_en, severity, dedup_key, geom)
           VALUES ('repeat_place', '620102', %s, 'three cases in one place', %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326))
           RETURNING id""", (text, severity, f"t:{severity}:{lon}", lon, lat)).fetchone()["id"]


def test_the_drill_down_map_draws_every_live_alert_from_tiles_by_grade_and_a_click_opens_its_card(serve, db_url, conn, tiny, browser_page):
    ids = {sev: _alert(conn, sev, lon, 37.5, f"{sev} 同一地点 3 件") for sev, lon in
           (("red", 100.5), ("orange", 101.0), ("yellow", 101.5))}
    resolved = _alert(conn, "red", 100.7, 36.5, "已解除")
    conn.execute("UPDATE alert SET resolved_at = now() WHERE id = %s", (resolved,))
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/620102")
    wait_until(lambda: {f["id"] for f in page.evaluate(TILE_FEATURES)} == set(ids.values()), timeout=40,
               message="the three live alerts drawn from the tiles (the resolved one not)")
    by_id = {f["id"]: f for f in page.evaluate(TILE_FEATURES)}
    assert {by_id[ids[sev]]["layer"] for sev in ids} == {"alerts_red", "alerts_orange", "alerts_yellow"}
    assert by_id[ids["red"]]["colour"] != by_id[ids["yellow"]]["colour"]
    target = page.evaluate(CLICK_POINT, ids["red"])
    page.mouse.click(target["x"], target["y"])
    wait_until(lambda: page.locator("#gw-alert-pop").count() == 1, message="the alert's card")
    assert "red 同一地点 3 件" in page.inner_text("#gw-alert-pop") and "重复发生地点" in page.inner_text("#gw-alert-pop")
    assert page.get_attribute("#gw-alert-pop", "data-alert-id") == str(ids["red"])
    assert page.url.endswith("/region/620102")      # the click opened the alert, it did not drill down
