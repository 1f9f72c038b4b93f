"""Loading, empty, unknown-region and database-outage states of the dashboard, in headless Chromium."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tests.conftest import wait_until
from tests.factories import make_case


def test_a_region_without_cases_says_so(serve, db_url, conn, tiny, browser_page):
    make_case(conn, lon=101.0, lat=36.2)  # a case elsewhere (兰州市)
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/6207")
    wait_until(lambda: page.inner_text("#region-crumb-current") == "张掖市", message="张掖市")
    wait_until(lambda: page.locator("#region-empty").is_visible(), message="the empty state")
    assert page.inner_text("#region-empty") == "本区域暂无案件"
    page.goto(server.url + "/region/6201")
    wait_until(lambda: page.inner_text("#region-kpi-open") == "1", message="兰州市's case")
    assert not page.locator("#region-empty").is_visible()


def test_an_unknown_region_code_in_the_url_is_explained_with_a_way_back(serve, db_url, tiny, browser_page):
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/6299")
    wait_until(lambda: "区划 6299 不存在" in page.inner_text("#region-breadcrumb"), message="the unknown-region message")
    page.click("text=返回甘肃省")
    wait_until(lambda: page.inner_text("#region-crumb-current") == "甘肃省", message="the province again")


def _cut_off(cluster, dbname: str, allow: bool) -> None:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(sql.Identifier(dbname), sql.SQL("true" if allow else "false")))
        if not allow:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))


def test_a_database_outage_shows_a_banner_never_a_traceback_and_recovers_by_itself(serve, cluster, db_url, tiny, browser_page):
    dbname = db_url.rsplit("/", 1)[1]
    with psycopg.connect(db_url, autocommit=True) as c:
        make_case(c, lon=101.0, lat=36.2)
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/62")
    wait_until(lambda: page.inner_text("#region-kpi-open") == "1", message="the province's KPIs")
    assert not page.locator("#shell-banner").is_visible()
    _cut_off(cluster, dbname, allow=False)
    try:
        wait_until(lambda: page.locator("#shell-banner").is_visible(), timeout=30, message="the database banner")
        assert "数据库暂时不可用" in page.inner_text("#shell-banner")
        page.screenshot_to("outage")
        # a page opened during the outage shows the banner and its error state, not a traceback
        page.goto(server.url + "/region/6201")
        wait_until(lambda: page.locator("#shell-banner").is_visible(), timeout=30, message="the banner on a fresh page")
        wait_until(lambda: page.locator("#region-error").is_visible(), timeout=30, message="the page's error state")
        body = page.inner_text("body")
        assert "Traceback" not in body and "psycopg" not in body
    finally:
        _cut_off(cluster, dbname, allow=True)
    wait_until(lambda: not page.locator("#shell-banner").is_visible(), timeout=45, message="the banner to clear by itself")
    wait_until(lambda: page.inner_text("#region-kpi-open") == "1" and page.inner_text("#region-crumb-current") == "兰州市",
               timeout=45, message="兰州市's KPIs after the database came back")
    assert not page.locator("#region-error").is_visible()


def test_the_walls_freshness_badges_turn_amber_during_an_outage_and_green_after(serve, cluster, db_url, tiny, browser_page):
    dbname = db_url.rsplit("/", 1)[1]
    server = serve(db_url, env={"GRIDWATCH_STALE_SECONDS": "3"})
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.url + "/wall?tour=600")
    badges = page.locator(".fresh")
    wait_until(lambda: badges.count() == 6 and all(t.startswith("更新于") for t in badges.all_inner_texts()),
               message="fresh badges on the wall")
    assert page.locator(".fresh.stale").count() == 0
    _cut_off(cluster, dbname, allow=False)
    try:
        wait_until(lambda: page.locator(".fresh.stale").count() == 6, timeout=40, message="every badge amber")
        ages = badges.all_inner_texts()
        assert all(a.startswith("更新于") and a.endswith("秒前") for a in ages), ages
        page.screenshot_to("wall-stale")
    finally:
        _cut_off(cluster, dbname, allow=True)
    wait_until(lambda: page.locator(".fresh.stale").count() == 0, timeout=45, message="the badges fresh again")
