"""The dashboard on the real Gansu hierarchy with the demo history (20,000 cases over 2 months):
the drill-down and the wall show the same numbers as /api/v1/regions, and the README's
screenshots come from here (tests/artifacts/drilldown-demo.png, wall-demo.png)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from dashboard.figures import big_number
from tests.conftest import wait_until


@pytest.fixture
def demo_url(gansu_demo_copy_url):
    """A copy of the run's Gansu demo template (tests/conftest.py gansu_demo_template)."""
    return gansu_demo_copy_url


def _region(server, code):
    with urllib.request.urlopen(f"{server.url}/api/v1/regions/{code}", timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.gansu
def test_a_county_of_the_demo_shows_its_townships_and_the_apis_numbers_and_the_wall_tours(serve, demo_url, browser_page):
    server = serve(demo_url)
    page = browser_page
    county = _region(server, "620702")
    assert county["descendants"]["township"] == len(county["children"]) > 10
    page.goto(server.url + "/region/620702")
    wait_until(lambda: page.inner_text("#region-kpi-open") == big_number(county["kpis"]["open"], "zh"), timeout=60,
               message="甘州区's open cases as the API counts them")
    assert page.inner_text("#region-kpi-overdue") == big_number(county["kpis"]["overdue"], "zh")
    wait_until(lambda: page.evaluate("""() => { const gd = document.querySelector('#region-map .js-plotly-plot');
                   if (!gd || !gd._fullLayout.map) return false; const m = gd._fullLayout.map._subplot.map;
                   return m.loaded() && !m.isMoving() && gd.data[0].locations.length; }""") == len(county["children"]),
               timeout=60, message="every township on the map")
    assert page.locator("#region-ranking-table tbody tr").count() == len(county["children"])
    page.screenshot_to("drilldown-demo")

    province = _region(server, "62")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.url + "/wall?tour=600&alert_minutes=1")
    wait_until(lambda: page.locator("#wall-province #wall-n-open .v").inner_text() == big_number(province["kpis"]["open"], "zh"),
               timeout=60, message="the province's open cases on the wall")
    assert page.locator("#wall-ranking tr").count() == 14  # every prefecture, written out
    wait_until(lambda: page.evaluate("""() => { const gd = document.querySelector('#wall-map .js-plotly-plot');
                   return !!(gd && gd._fullLayout.map && gd._fullLayout.map._subplot.map.loaded()); }"""),
               timeout=60, message="the wall's map")
    page.screenshot_to("wall-demo")
