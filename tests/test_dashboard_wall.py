"""Wall mode in real headless Chromium at 1920×1080 and 3840×2160: tour, big numbers, freshness, alerts."""

from __future__ import annotations

from shapely.geometry import Point

from tests.conftest import wait_until
from tests.factories import make_case, make_hazard

PANELS = 6


def _fits(page) -> bool:
    """Nothing scrolls: the wall fits the screen it is on."""
    return page.evaluate("() => document.scrollingElement.scrollHeight <= window.innerHeight + 1 "
                         "&& document.scrollingElement.scrollWidth <= window.innerWidth + 1")


def test_the_wall_renders_full_screen_at_1080p_and_its_tour_advances_through_the_prefectures(serve, db_url, conn, tiny, browser_page):
    make_case(conn, lon=101.0, lat=36.2)
    make_case(conn, lon=102.2, lat=38.8)
    make_case(conn, lon=102.3, lat=38.7)
    server = serve(db_url)
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.url + "/wall?tour=2")
    wait_until(lambda: page.inner_text("#wall-region-name") in ("兰州市", "张掖市"), message="a prefecture on the wall")
    first = page.inner_text("#wall-region-name")
    other = "张掖市" if first == "兰州市" else "兰州市"
    # full screen: no header, dark, big numbers written out
    assert not page.locator("#shell-header").is_visible()
    assert page.evaluate("getComputedStyle(document.querySelector('.wall')).backgroundColor") == "rgb(5, 8, 15)"
    wait_until(lambda: page.locator("#wall-province #wall-n-open .v").inner_text() == "3", message="3 open cases in the province")
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#wall-province .wall-number .v')).fontSize)")
    assert size >= 48, f"wall numbers are {size}px"
    ranking = page.inner_text("#wall-ranking")
    assert "兰州市" in ranking and "张掖市" in ranking
    # every panel has a freshness badge, fresh while the live connection is good
    badges = page.locator(".fresh")
    wait_until(lambda: badges.count() == PANELS and all(t.startswith("更新于") for t in badges.all_inner_texts()),
               message="a freshness badge on each panel")
    assert page.locator(".fresh.stale").count() == 0
    assert _fits(page)
    page.screenshot_to("wall")
    # the tour moves on to the other prefecture, then back
    wait_until(lambda: page.inner_text("#wall-region-name") == other, timeout=20, message=f"the tour to reach {other}")
    wait_until(lambda: page.inner_text("#wall-region-name") == first, timeout=20, message=f"the tour to come back to {first}")
    assert "轮巡" in page.inner_text("#wall-tour-note")
    assert page.locator("#wall-yoy").count() == 1  # the slot issue 7 fills


def test_the_wall_renders_on_a_4k_screen_without_scrolling(serve, db_url, conn, tiny, browser_page):
    make_case(conn, lon=101.0, lat=36.2)
    server = serve(db_url)
    page = browser_page
    page.set_viewport_size({"width": 3840, "height": 2160})
    page.goto(server.url + "/wall")
    wait_until(lambda: page.locator("#wall-province #wall-n-open .v").inner_text() == "1", message="the numbers on a 4K wall")
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#wall-province .wall-number .v')).fontSize)")
    assert size >= 96, f"4K wall numbers are only {size}px"
    assert _fits(page)
    page.screenshot_to("wall-4k")


def test_a_red_case_or_hazard_takes_the_wall_over_until_acknowledged(serve, db_url, conn, tiny, browser_page):
    server = serve(db_url)
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.url + "/wall?tour=600")
    wait_until(lambda: page.inner_text("#wall-region-name") in ("兰州市", "张掖市"), message="the wall")
    assert not page.locator("#wall-takeover").is_visible()
    make_case(conn, lon=102.2, lat=38.8, grade="yellow", title="普通纠纷")
    case_id = make_case(conn, lon=102.2, lat=38.7, grade="red", title="群体性聚集")
    hazard_id = make_hazard(conn, Point(103.5, 36.5), grade="red", kind="gas", title="燃气泄漏")
    wait_until(lambda: page.locator("#wall-takeover").is_visible(), timeout=20, message="the red alert takeover")
    wait_until(lambda: page.locator(f"#wall-alert-case-{case_id}").count() == 1
               and page.locator(f"#wall-alert-hazard-{hazard_id}").count() == 1, message="both red items listed")
    text = page.inner_text("#wall-takeover")
    assert "红色预警" in text and "群体性聚集" in text and "燃气泄漏" in text and "普通纠纷" not in text
    page.screenshot_to("wall-alert")
    page.click("#wall-ack-button")
    wait_until(lambda: not page.locator("#wall-takeover").is_visible(), message="the takeover to go once acknowledged")


def test_a_change_reaches_the_wall_in_one_round_trip_red_takeover_included(serve, db_url, conn, tiny, browser_page):
    """The data, the panels, the map's patch and the takeover come in the answer to one request; the
    acknowledge button drawn with the takeover costs no request of its own."""
    make_case(conn, lon=101.0, lat=36.2)
    server = serve(db_url)
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.url + "/wall?tour=600")
    wait_until(lambda: page.locator("#wall-province #wall-n-open .v").inner_text() == "1", message="the wall")
    before = page.settle()
    case_id = make_case(conn, lon=102.2, lat=38.7, grade="red", title="群体性聚集")
    wait_until(lambda: page.locator(f"#wall-alert-case-{case_id}").count() == 1, timeout=20, message="the red case on the wall")
    assert page.locator("#wall-province #wall-n-open .v").inner_text() == "2"
    page.settle()
    calls = [u for u in page.requests[before:] if "/_dash-update-component" in u]
    assert len(calls) == 1, f"one change, one round trip: {calls}"


def test_a_gbt_2260_prefecture_code_in_the_wall_url_puts_that_prefecture_on_the_wall(serve, db_url, conn, tiny, browser_page):
    # 620700 is 张掖市 (6207) written in GB/T 2260; before the one parser it was taken as a county
    # code that does not exist, and the wall said no regions were loaded
    make_case(conn, lon=102.2, lat=38.8)
    make_case(conn, lon=101.0, lat=36.2)     # 兰州市: outside the wall's region
    server = serve(db_url)
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.url + "/wall?region=620700&tour=600")
    wait_until(lambda: page.inner_text("#wall-region-name") == "甘州区", message="张掖市's county touring on the wall")
    wait_until(lambda: page.locator("#wall-province #wall-n-open .v").inner_text() == "1", message="张掖市's one open case")
    ranking = page.inner_text("#wall-ranking")
    assert "甘州区" in ranking and "兰州市" not in ranking
