"""End to end in headless Chromium: a case posted to the API appears on the map and in the KPIs of an
open dashboard without a reload, within 2 s (LISTEN/NOTIFY → shell-versions → the region page)."""

from __future__ import annotations

import time

import httpx

from tests.conftest import wait_until

GRID = "620702100200001"     # tiny hierarchy: lon 102–103, lat 38–39


def case_ids_on_map(page) -> list[int]:
    return page.evaluate(
        """() => { const gd = document.querySelector('#region-map .js-plotly-plot');
             if (!gd || !gd.data) return [];
             return gd.data.flatMap(t => (t.customdata || []).filter(c => c && c[0] === 'case').map(c => c[1])); }""")


def test_a_case_posted_to_the_api_appears_on_the_map_and_in_the_kpis_within_two_seconds(serve, db_url, tiny, browser_page):
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + f"/region/{GRID}")
    wait_until(lambda: page.inner_text("#region-crumb-current") == "浅河村第1网格" and page.inner_text("#region-kpi-open") == "0",
               timeout=30, message="the grid's page with no open case")
    wait_until(lambda: page.evaluate("() => !!document.querySelector('#region-map .js-plotly-plot')"), timeout=30,
               message="the map")
    assert case_ids_on_map(page) == []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 102.3, "lat": 38.7, "title": "浏览器实时测试",
                                             "client_request_id": "live-browser-1"})
        committed = time.monotonic()
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    wait_until(lambda: page.inner_text("#region-kpi-open") == "1" and case_id in case_ids_on_map(page),
               timeout=2.0, interval=0.02, message="the new case on the map and in the open-cases KPI within 2 s")
    elapsed = time.monotonic() - committed
    page.screenshot_to("live-case-appears")
    print(f"\nthe posted case appeared after {elapsed * 1000:.0f} ms")
    assert page.url.endswith(f"/region/{GRID}")      # no reload or navigation happened
