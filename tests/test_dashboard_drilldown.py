"""The drill-down dashboard in real headless Chromium: click down the hierarchy, deep links,
languages, case details, the export button. Every test also fails if a request leaves 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import wait_until
from tests.factories import make_case

MAP = "#region-map .js-plotly-plot"

# Where each case lies in the tiny hierarchy (tests/factories.py). Open cases: 62 → 5, 6207 → 4,
# 620702 → 4, 620702100 → 3, 620702100200 → 2, 620702100201 → 1, 620702100200001 → 1.
CASES = [
    (101.0, 36.2, "兰州的案件"),          # 6201
    (102.2, 38.8, "网格一的案件"),        # grid 620702100200001
    (102.2, 37.2, "网格二的案件"),        # grid 620702100200002
    (103.8, 38.8, "长城村的案件"),        # village 620702100201
    (102.2, 35.2, "乌江乡的案件"),        # township 620702200
]


def _cases(conn):
    return [make_case(conn, lon=lon, lat=lat, title=title) for lon, lat, title in CASES]


def region_json(server, code: str) -> dict:
    with urllib.request.urlopen(f"{server.url}/api/v1/regions/{code}", timeout=10) as r:
        return json.loads(r.read())


def map_ready(page, code: str) -> bool:
    """The map shows region ``code`` (its uirevision) and MapLibre has finished loading."""
    return page.evaluate(
        """(code) => { const gd = document.querySelector('#region-map .js-plotly-plot');
             if (!gd || !gd._fullLayout || !gd._fullLayout.map || gd._fullLayout.uirevision !== code) return false;
             const m = gd._fullLayout.map._subplot.map; return m.loaded() && !m.isMoving(); }""", code)


def click_map_at(page, lon: float, lat: float) -> None:
    """Hover, then click the map where lon/lat is drawn (plotly clicks what it hovers)."""
    x, y = page.evaluate(
        """([lon, lat]) => { const gd = document.querySelector('#region-map .js-plotly-plot');
             const m = gd._fullLayout.map._subplot.map; const p = m.project([lon, lat]);
             const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }""", [lon, lat])
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y)
    wait_until(lambda: page.locator(".hoverlayer .hovertext").count() > 0, timeout=10, message="the map's hover label")
    page.mouse.click(x, y)


def shown(page, code: str, name: str, open_cases: int) -> bool:
    return (page.evaluate("window.location.pathname") == f"/region/{code}"
            and page.inner_text("#region-crumb-current") == name
            and page.inner_text("#region-kpi-open") == str(open_cases))


def _gansu_path(conn) -> list[dict]:
    """甘肃省 → 张掖市 → 甘州区 → its first township → first village → first grid, from the database."""
    path = [dict(conn.execute("SELECT code, name FROM region WHERE code = '62'").fetchone())]
    for code in ("6207", "620702"):
        path.append(dict(conn.execute("SELECT code, name FROM region WHERE code = %s", (code,)).fetchone()))
    for _ in range(3):
        path.append(dict(conn.execute("SELECT code, name FROM region WHERE parent_code = %s ORDER BY code LIMIT 1",
                                      (path[-1]["code"],)).fetchone()))
    return path


def _plant(conn, path: list[dict]) -> None:
    """One open case in the path's grid and one in a sibling at each level above it, so the open
    count grows by one per level going up: grid 1, village 2, township 3, county 4, 张掖 5, 甘肃 6.
    Cases sit away from the label points the test clicks."""
    labels = [p["code"] for p in path]
    spots = [path[-1]["code"]]
    for parent in reversed(labels[:-1]):
        child_on_path = labels[labels.index(parent) + 1]
        sibling = conn.execute("SELECT code FROM region WHERE parent_code = %s AND code <> %s ORDER BY code LIMIT 1",
                               (parent, child_on_path)).fetchone()
        if parent != "62" or sibling:
            spots.append(sibling["code"])
    for code in spots:
        # of 25 random points in the region, the one farthest from every label point on the path
        row = conn.execute(
            """WITH p AS (SELECT (ST_Dump(ST_GeneratePoints(geom, 25, 7))).geom AS g FROM region WHERE code = %s),
                    l AS (SELECT label_point FROM region WHERE code = ANY(%s))
               SELECT ST_X(g) AS lon, ST_Y(g) AS lat FROM p
               ORDER BY (SELECT min(ST_Distance(p.g, l.label_point)) FROM l) DESC LIMIT 1""",
            (code, labels)).fetchone()
        make_case(conn, lon=row["lon"], lat=row["lat"], title=f"{code}的案件")


@pytest.mark.gansu
def test_clicking_down_from_the_province_to_a_grid_changes_breadcrumb_url_and_kpis(serve, gansu_copy_url, browser_page):
    with psycopg.connect(gansu_copy_url, autocommit=True, row_factory=dict_row) as conn:
        path = _gansu_path(conn)
        _plant(conn, path)
    expected = list(range(len(path), 0, -1))  # 6, 5, 4, 3, 2, 1 open cases going down
    server = serve(gansu_copy_url)
    page = browser_page
    page.goto(server.url + "/")
    wait_until(lambda: page.inner_text("#region-crumb-current") == "甘肃省" and page.inner_text("#region-kpi-open") == "6",
               timeout=60, message="甘肃省 with its 6 open cases")
    for depth in range(1, len(path)):
        parent, target = path[depth - 1], path[depth]
        wait_until(lambda: map_ready(page, parent["code"]), timeout=60, message=f"the map of {parent['name']}")
        where = region_json(server, target["code"])
        click_map_at(page, where["lon"], where["lat"])
        wait_until(lambda: shown(page, target["code"], target["name"], expected[depth]), timeout=60,
                   message=f"{target['name']} ({target['code']}) with {expected[depth]} open cases after clicking it")
        crumbs = [c.strip() for c in page.inner_text("#region-breadcrumb").split("›")]
        assert crumbs == [p["name"] for p in path[:depth + 1]]
        if depth == 3:
            wait_until(lambda: map_ready(page, target["code"]), timeout=60, message="the township's map")
            page.screenshot_to("drilldown-gansu-township")
    page.screenshot_to("drilldown-gansu-grid")
    page.click("#region-crumb-6207")
    wait_until(lambda: shown(page, "6207", "张掖市", 5), timeout=60, message="张掖市 again from the breadcrumb")
    wait_until(lambda: map_ready(page, "6207"), timeout=60, message="张掖市's map")
    page.screenshot_to("drilldown-gansu-prefecture")


def test_a_deep_link_opens_the_same_view_and_the_ranking_drills_down(serve, db_url, conn, tiny, browser_page):
    _cases(conn)
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/620702100")
    wait_until(lambda: shown(page, "620702100", "甘州区新墩镇", 3), message="the township from a deep link")
    assert [c.strip() for c in page.inner_text("#region-breadcrumb").split("›")] == ["甘肃省", "张掖市", "甘州区", "甘州区新墩镇"]
    assert "生成" in page.inner_text("#region-generated")  # generated child boundaries are flagged
    legend = page.evaluate("() => Array.from(document.querySelectorAll('#region-map .legendtext')).map(e => e.textContent)")
    assert any("生成边界" in text for text in legend), legend
    page.screenshot_to("drilldown")
    page.click("#region-rank-620702100201")
    wait_until(lambda: shown(page, "620702100201", "新墩镇长城村", 1), message="长城村 after clicking its ranking row")
    page.reload()
    wait_until(lambda: shown(page, "620702100201", "新墩镇长城村", 1), message="长城村 again after a reload")


def test_a_gbt2260_six_digit_link_opens_the_prefecture_it_names(serve, db_url, conn, tiny, browser_page):
    _cases(conn)
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/620700")
    wait_until(lambda: page.inner_text("#region-crumb-current") == "张掖市", message="张掖市 from /region/620700")
    assert [c.strip() for c in page.inner_text("#region-breadcrumb").split("›")] == ["甘肃省", "张掖市"]
    assert page.inner_text("#region-kpi-open") == str(conn.execute(
        "SELECT count(*) AS n FROM cases WHERE prefecture_code = '6207' AND state NOT IN ('closed', 'rejected')").fetchone()["n"])
    page.click("#region-rank-620702")
    wait_until(lambda: page.evaluate("window.location.pathname") == "/region/620702"
               and page.inner_text("#region-crumb-current") == "甘州区", message="甘州区 from the ranking of 620700")


def test_the_ranking_sorts_by_a_column_when_its_header_is_clicked(serve, db_url, conn, tiny, browser_page):
    _cases(conn)
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/620702100")
    wait_until(lambda: page.locator("#region-ranking-table tbody tr").count() == 2, message="two villages ranked")

    def names():
        return page.locator("#region-ranking-table tbody tr td:first-child").all_inner_texts()

    assert names() == ["新墩镇浅河村", "新墩镇长城村"]  # overdue desc (a tie at 0), then code order
    page.click("#region-ranking-table th:nth-child(2) button")  # open, descending
    page.click("#region-ranking-table th:nth-child(2) button")  # open, ascending
    wait_until(lambda: names() == ["新墩镇长城村", "新墩镇浅河村"], message="ascending by open cases")


def test_switching_language_relabels_the_page_formats_per_language_and_survives_a_reload(serve, db_url, conn, tiny, browser_page):
    _cases(conn)
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/6207")
    wait_until(lambda: page.inner_text("#shell-title") == "综治中心 · 网格化服务管理", message="the Chinese title")
    wait_until(lambda: page.inner_text("#region-kpi-open") == "4", message="the KPIs")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "未结案件" in page.inner_text("#region-kpis")
    page.click("#shell-lang-button")
    wait_until(lambda: page.inner_text("#shell-title") == "Social-governance centre · grid management", message="the English title")
    wait_until(lambda: "Open" in page.inner_text("#region-kpis") and "未结案件" not in page.inner_text("#region-kpis"),
               message="English KPI labels")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.inner_text("#shell-lang-button") == "中文"
    page.reload()
    wait_until(lambda: page.inner_text("#shell-title") == "Social-governance centre · grid management",
               message="English kept after a reload")
    page.click("#shell-lang-button")
    wait_until(lambda: page.inner_text("#shell-title") == "综治中心 · 网格化服务管理", message="Chinese again")


def test_clicking_a_case_on_the_map_shows_its_details_and_timeline(serve, db_url, conn, tiny, browser_page):
    reported = datetime(2026, 3, 4, 1, 30, tzinfo=timezone.utc)  # 09:30 in Asia/Shanghai
    case_id = make_case(conn, lon=102.2, lat=38.8, title="院墙纠纷", grade="red", reported_at=reported,
                        deadline=reported + timedelta(days=3))
    for at, action, frm, to in ((reported, "report", None, "reported"), (reported + timedelta(hours=2), "accept", "reported", "accepted")):
        conn.execute("INSERT INTO case_event (case_id, at, actor, action, from_state, to_state) VALUES (%s, %s, %s, %s, %s, %s)",
                     (case_id, at, "网格员张三", action, frm, to))
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/620702100200001")
    wait_until(lambda: map_ready(page, "620702100200001"), message="the grid's map")
    click_map_at(page, 102.2, 38.8)
    wait_until(lambda: "院墙纠纷" in page.inner_text("#region-detail-title"), message="the case's details")
    detail = page.inner_text("#region-detail")
    assert "2026年3月4日 09:30" in detail and "网格员张三" in detail and "红色" in detail and "已逾期" in detail
    assert page.locator("#region-detail-timeline li").count() == 2
    page.click("#shell-lang-button")  # dates and labels follow the language
    wait_until(lambda: "04 Mar 2026 09:30" in page.inner_text("#region-detail"), message="the English date format")
    assert "Red" in page.inner_text("#region-detail") and "Overdue" in page.inner_text("#region-detail")
    page.click("#region-detail-close")
    wait_until(lambda: not page.locator("#region-detail").is_visible(), message="the details to close")


def test_the_export_button_downloads_the_current_view_as_offline_html(serve, db_url, conn, tiny, browser_page, tmp_path):
    _cases(conn)
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/620702")
    wait_until(lambda: shown(page, "620702", "甘州区", 4), message="甘州区")
    wait_until(lambda: "/export/region/620702.html" in (page.get_attribute("#region-export", "href") or ""),
               message="the export link")
    with page.expect_download() as download:
        page.click("#region-export")
    path = tmp_path / "export.html"
    download.value.save_as(path)
    html = path.read_text(encoding="utf-8")
    assert "甘州区新墩镇" in html and "Leaflet 1.9.4" in html
    # opened from disk in a fresh tab with every request but file:/data: refused, Leaflet draws both townships
    offline = page.context.new_page()
    blocked: list[str] = []
    offline.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                  else (blocked.append(route.request.url), route.abort()))
    offline.goto(path.as_uri())
    wait_until(lambda: offline.locator("path.leaflet-interactive").count() >= 2, message="the townships drawn by Leaflet")
    assert offline.locator("#gw-legend").inner_text().count("甘州区") >= 2
    assert blocked == []
    offline.screenshot(path=str(page.screenshot_to("export-from-button-page").with_name("export-from-button.png")))


def test_a_case_reported_while_the_page_is_open_updates_kpis_and_map_without_a_reload(serve, db_url, conn, tiny, browser_page):
    _cases(conn)
    server = serve(db_url)
    page = browser_page
    page.goto(server.url + "/region/620702")
    wait_until(lambda: shown(page, "620702", "甘州区", 4) and map_ready(page, "620702"), message="甘州区 and its map")

    def map_values():
        return page.evaluate("""() => { const gd = document.querySelector('#region-map .js-plotly-plot');
            const out = {}; gd.data.filter(t => t.type === 'choroplethmap').forEach(t =>
                t.locations.forEach((code, i) => { out[code] = t.z[i]; })); return out; }""")

    assert map_values() == {"620702100": 3, "620702200": 1}
    page.evaluate("window.__sameMap = document.querySelector('#region-map .js-plotly-plot')")
    make_case(conn, lon=103.5, lat=35.5, title="新来的案件")  # 620702200 (乌江乡)
    wait_until(lambda: page.inner_text("#region-kpi-open") == "5", timeout=20, message="the KPI to count the new case")
    wait_until(lambda: map_values() == {"620702100": 3, "620702200": 2}, timeout=20, message="the map to count it too")
    assert page.evaluate("window.__sameMap === document.querySelector('#region-map .js-plotly-plot')"), "the map was rebuilt"
    assert page.evaluate("window.location.pathname") == "/region/620702"
