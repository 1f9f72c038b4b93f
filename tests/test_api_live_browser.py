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


WEST_COUNTY, EAST = "620102", (102.6, 37.3)     # the tiny hierarchy's two counties (west: lon 100–102)


def test_a_county_page_left_open_for_a_minute_while_cases_arrive_elsewhere_makes_at_most_six_requests(
        serve, db_url, tiny, browser_page):
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + f"/region/{WEST_COUNTY}")
    wait_until(lambda: page.inner_text("#region-crumb-current") and page.inner_text("#region-kpi-open") == "0",
               timeout=30, message="the county page with no open case")
    wait_until(lambda: page.evaluate("() => !!document.querySelector('#region-map .js-plotly-plot')"), timeout=30,
               message="the map")
    settled = page.settle()
    elsewhere = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < 60:          # a case every ~2 s in the other county, for a minute
            r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": EAST[0] + (k % 20) * 0.02, "lat": EAST[1],
                                                 "title": f"别处的案件 {k}", "client_request_id": f"elsewhere-{k}"})
            assert r.status_code == 201, r.text
            elsewhere.append(r.json()["id"])
            k += 1
            time.sleep(2.0)
        during = page.requests[settled:]
        print(f"\nwhile {len(elsewhere)} cases arrived elsewhere in 60 s the county page made {len(during)} requests: {during}")
        assert len(during) <= 6, during
        assert page.inner_text("#region-kpi-open") == "0"

        r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 101.3, "lat": 37.3, "title": "本县的实时案件",
                                             "client_request_id": "own-county-1"})
        committed = time.monotonic()
    assert r.status_code == 201, r.text
    wait_until(lambda: page.inner_text("#region-kpi-open") == "1" and "本县的实时案件" in page.inner_text("#region-cases"),
               timeout=10, interval=0.02, message="the county's own case in its KPIs and its case register")
    print(f"its own county's case showed after {(time.monotonic() - committed) * 1000:.0f} ms")
    page.screenshot_to("live-county-own-case")
