"""Early warning and analytics in real headless Chromium: the alerts list and acknowledging, the
leader's briefing and its offline export, the year-on-year figures on the wall, a red alert on the
wall's takeover."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from dashboard.analytics_components import alert_card, yoy_panel
from etl.stats import load_stats
from gridwatch.alerts import list_alerts, run_rules
from gridwatch.stats import yoy
from gridwatch.triage import grouped_alerts
from tests.conftest import wait_until
from tests.test_alerts import NOW, everything, plant
from tests.test_stats import demo_rows

pytestmark = pytest.mark.browser

# Alert features drawn from the alerts_* vector tiles on the alerts page's map (ids, deduplicated).
TILE_IDS = """() => { const gd = document.querySelector('#alerts-map .js-plotly-plot');
    const m = gd && gd._fullLayout.map && gd._fullLayout.map._subplot.map;
    if (!m || !m.loaded()) return [];
    return [...new Set(m.queryRenderedFeatures().filter(f => /^alerts_/.test(f.sourceLayer)).map(f => f.id))]; }"""
# Page coordinates of alert ``id`` on that map.
TILE_POINT = """(id) => { const gd = document.querySelector('#alerts-map .js-plotly-plot');
    const m = gd._fullLayout.map._subplot.map;
    const f = m.queryRenderedFeatures().find(f => /^alerts_/.test(f.sourceLayer) && f.id === id);
    const p = m.project(f.geometry.coordinates); const r = m.getCanvas().getBoundingClientRect();
    return {x: r.left + p.x, y: r.top + p.y}; }"""

PERCENTS = {"criminal_cases": "-30.0%", "public_security_cases": "-46.1%", "homicides": "-50.0%", "petitions": "-3.1%"}


@pytest.fixture
def site(conn, tiny, db_url, serve):
    everything(conn)
    run_rules(conn, now=NOW)
    load_stats(conn, text=demo_rows("62"), source="gansu-stats.csv")
    return serve(db_url)


def test_the_alerts_page_lists_each_alert_with_its_numbers_and_an_operator_acknowledges_one(site, conn, browser_page):
    page = browser_page
    page.goto(site.url + "/alerts")
    alerts = list_alerts(conn)
    wait_until(lambda: page.locator(".alert-card").count() == len(alerts), message=f"{len(alerts)} alert cards")
    spike = next(a for a in alerts if a["rule"] == "spike")
    card = page.inner_text(f"#alerts-alert-{spike['id']}")
    assert "类别异常增多" in card and str(spike["numbers"]["count"]) in card and "泊松" in card
    # the map: one marker per group (rule × prefecture), and every live alert as a clickable tile feature
    groups = grouped_alerts(conn, "62")
    markers = """() => { const gd = document.querySelector('#alerts-map .js-plotly-plot');
        return gd && gd.data ? gd.data.reduce((n, tr) => n + (tr.type === 'scattermap' ? (tr.lon || []).length : 0), 0) : -1; }"""
    wait_until(lambda: page.evaluate(markers) == len(groups), message="one marker per group on the map")
    live = {r["alert_id"] for r in conn.execute("SELECT alert_id FROM alert_triage() WHERE inhibited_by IS NULL")}
    wait_until(lambda: set(page.evaluate(TILE_IDS)) == live, timeout=30, message=f"{len(live)} alerts drawn from the tiles")
    target = page.evaluate(TILE_POINT, spike["id"])
    page.mouse.click(target["x"], target["y"])
    wait_until(lambda: page.locator("#gw-alert-pop").count() == 1, message="the clicked alert's card")
    assert "类别异常增多" in page.inner_text("#gw-alert-pop")
    assert page.locator(f"#alerts-group-spike-{spike['region_code'][:4]}").count() == 1
    page.fill("#alerts-operator", "值班员赵六")
    page.press("#alerts-operator", "Enter")
    page.click(f"#alerts-alert-{spike['id']} .alert-ack")
    wait_until(lambda: conn.execute("SELECT acknowledged_by FROM alert WHERE id = %s", (spike["id"],)).fetchone()["acknowledged_by"],
               message="the acknowledgement stored")
    # the signed-in user acknowledges (issue 11), whatever the operator box says
    assert conn.execute("SELECT acknowledged_by FROM alert WHERE id = %s", (spike["id"],)).fetchone()["acknowledged_by"] == "test_operator"
    # acknowledged alerts leave the default list; "show acknowledged" brings it back, marked
    wait_until(lambda: page.locator(f"#alerts-alert-{spike['id']}").count() == 0, message="the acknowledged alert leaves the list")
    page.click("#alerts-show-acked input")
    wait_until(lambda: page.locator(f"#alerts-acked-{spike['id']}").count() == 1, message="the acknowledged alert shown as such")
    assert "test_operator" in page.inner_text(f"#alerts-acked-{spike['id']}")
    page.screenshot_to("alerts")


def test_an_operator_silences_a_group_on_the_alerts_page_with_a_reason_and_ends_it(site, conn, browser_page):
    page = browser_page
    page.goto(site.url + "/alerts")
    group = grouped_alerts(conn, "62")[0]
    card = f"#alerts-group-{group['rule']}-{group['region_code']}"
    wait_until(lambda: page.locator(card).count() == 1, message="the worst group listed first")
    assert page.locator(".alert-group").first.get_attribute("id") == card[1:]
    page.fill("#alerts-silence-reason", "已派人现场处置")
    page.press("#alerts-silence-reason", "Tab")
    page.click(f"{card} button")
    wait_until(lambda: "静默至" in page.inner_text(card), message="the group shown silenced")
    row = conn.execute("SELECT * FROM alert_silence").fetchone()
    assert (row["rule"], row["region_code"], row["reason"], row["created_by"]) == (group["rule"], group["region_code"], "已派人现场处置", "值班员")
    assert abs((row["ends_at"] - row["starts_at"]).total_seconds() - 4 * 3600) < 1
    page.click(f"{card} button")   # now "解除静默"
    wait_until(lambda: conn.execute("SELECT expired_by FROM alert_silence").fetchone()["expired_by"] == "值班员",
               message="the silence ended, kept in the history")
    wait_until(lambda: "静默至" not in page.inner_text(card), message="the group loud again")


def test_the_alerts_page_filters_by_region_and_switches_to_english(site, conn, browser_page):
    page = browser_page
    page.goto(site.url + "/alerts?region=6207&rule=spike")
    want = list_alerts(conn, region="6207", rule="spike")
    wait_until(lambda: page.locator(".alert-card").count() == len(want) > 0, message="the filtered list")
    page.click("#shell-lang-button")
    wait_until(lambda: "Poisson" in page.inner_text(".alerts-list"), message="English explanations")
    assert "Category spike" in page.inner_text(".alerts-list")


def test_the_briefing_shows_kpis_alerts_trends_and_map_and_exports_a_file_that_opens_offline(site, conn, browser_page, tmp_path):
    now = datetime.now(timezone.utc)   # three cases due in the last 30 days, two closed: 结案率 66.67%
    plant(conn, [{"lon": 101.5, "lat": 36.5 + 0.1 * i, "reported_at": now - timedelta(days=9), "deadline": now - timedelta(days=6),
                  "closed_at": now - timedelta(days=7) if i < 2 else None, "state": "closed" if i < 2 else "in_progress"}
                 for i in range(3)])
    page = browser_page
    page.goto(site.url + "/briefing/62")
    wait_until(lambda: "甘肃省" in page.inner_text("#briefing-title"), message="the briefing title")
    wait_until(lambda: page.locator("#briefing-kpis .kpi-card").count() == 11, message="the KPI cards")
    assert page.inner_text("#briefing-k-closure_rate .kpi-value") == "66.67%"
    n_alerts = len(list_alerts(conn, region="62", limit=50))
    wait_until(lambda: page.locator("#briefing-alerts .alert-card").count() == n_alerts, message="the alerts")
    for ind, pct in PERCENTS.items():
        assert page.inner_text(f"#yoy-change-{ind}").startswith(pct)
    wait_until(lambda: page.locator("#briefing-map .js-plotly-plot").count() == 1, message="the briefing map")
    href = page.get_attribute("#briefing-export", "href")
    assert href == "/export/briefing/62.html?lang=zh"
    page.screenshot_to("briefing")

    r = httpx.get(site.url + href, timeout=120)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    body = r.text
    assert not re.search(r"""<(script|link)[^>]+(src|href)\s*=\s*["']https?://""", body), "the file loads something online"
    path = tmp_path / "briefing.html"
    path.write_text(body, encoding="utf-8")
    page.goto(path.as_uri())
    wait_until(lambda: page.locator("#brief-fig-0 .main-svg").count() >= 1, message="the trend charts drawn offline")
    for ind, pct in PERCENTS.items():
        assert page.inner_text(f"#brief-yoy-{ind}").startswith(pct)
    assert page.inner_text("#brief-k-closure_rate .v") == "66.67%"
    frame = page.frame_locator("#brief-map")
    wait_until(lambda: frame.locator(".leaflet-container").count() == 1 and frame.locator("path.leaflet-interactive").count() > 0,
               message="the folium map drawn offline inside the file")
    page.screenshot_to("briefing-offline")


def test_an_unknown_region_briefing_says_so(site, browser_page):
    page = browser_page
    page.goto(site.url + "/briefing/6299")
    wait_until(lambda: "6299" in page.inner_text("#briefing-title"), message="the unknown-region message")
    assert httpx.get(site.url + "/export/briefing/6299.html", timeout=30).status_code == 404


def test_the_provincial_year_on_year_figures_are_on_the_wall(site, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(site.url + "/wall?tour=600")
    wait_until(lambda: page.locator("#wall-yoy .yoy-table").count() == 1, message="the year-on-year panel on the wall")
    for ind, pct in PERCENTS.items():
        assert page.inner_text(f"#wall-yoy #yoy-change-{ind}").startswith(pct)
    assert "刑事案件" in page.inner_text("#wall-yoy") and "演示数据" in page.inner_text("#wall-yoy")
    page.screenshot_to("wall-yoy")


def test_the_walls_year_on_year_panel_reloads_when_the_statistics_change_not_when_cases_do(site, conn, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    calls = {"yoy": 0, "wall": 0}

    def count(request):
        body = request.post_data or ""
        calls["yoy"] += "wall-yoy.children" in body
        calls["wall"] += "wall-ranking.children" in body     # the panels drawn from wall-data, asked with its dependents
    page.on("request", count)
    page.goto(site.url + "/wall?tour=600")
    wait_until(lambda: page.locator("#wall-yoy .yoy-table").count() == 1, message="the year-on-year panel on the wall")
    page.evaluate("0")                               # every request event so far delivered
    yoy, wall = calls["yoy"], calls["wall"]
    r = httpx.post(site.url + "/api/v1/cases", json={"category": "neighbour", "lon": 102.3, "lat": 38.7,
                                                     "title": "大屏同比测试", "client_request_id": "wall-yoy-case"}, timeout=30)
    assert r.status_code == 201, r.text
    wait_until(lambda: page.evaluate("0") == 0 and calls["wall"] > wall, timeout=15,
               message="the wall to redraw its panels from the new data")
    assert calls["yoy"] == yoy, "a new case reloaded the year-on-year statistics"
    conn.execute("""UPDATE stat_figure SET value = value * 2
                    WHERE region_code = '62' AND indicator = 'criminal_cases'
                      AND extract(year FROM period) = (SELECT max(extract(year FROM period)) FROM stat_figure)""")
    wait_until(lambda: not page.inner_text("#wall-yoy #yoy-change-criminal_cases").startswith(PERCENTS["criminal_cases"]),
               timeout=15, message="the panel to show the changed statistics")
    assert page.inner_text("#wall-yoy #yoy-change-criminal_cases").startswith("+40.0%")   # 0.7 × 2 = 1.4
    assert calls["yoy"] == yoy + 1


def test_a_fresh_red_signal_takes_over_the_wall_but_an_old_case_going_overdue_does_not(conn, tiny, db_url, serve, browser_page):
    # a red-grade case past its deadline raises a red deadline_past alert now: not a fresh report
    now = datetime.now(timezone.utc)
    plant(conn, [{"lon": 100.5, "lat": 38.5, "state": "in_progress", "grade": "red",
                  "reported_at": now - timedelta(hours=80), "deadline": now - timedelta(hours=8)}])
    run_rules(conn, rules=["deadline"])
    overdue = list_alerts(conn, rule="deadline_past")[0]
    # a red spike raised now is
    spike = conn.execute(
        """INSERT INTO alert (rule, region_code, explanation_zh, explanation_en, severity, dedup_key, geom)
           VALUES ('spike', '620102', '城关区「邻里纠纷」近 7 天 14 件', '14 neighbour disputes in 7 days', 'red', 'spike:t',
                   ST_SetSRID(ST_MakePoint(100.5, 38.5), 4326)) RETURNING id""").fetchone()["id"]
    server = serve(db_url)
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.url + "/wall?tour=600")
    wait_until(lambda: page.locator(f"#wall-alert-alert-{spike}").count() == 1, message="the spike on the takeover")
    assert "类别异常增多" in page.inner_text(f"#wall-alert-alert-{spike}")
    assert page.locator(f"#wall-alert-alert-{overdue['id']}").count() == 0


def test_the_yoy_panel_and_alert_card_builders_write_every_figure(conn, tiny):
    load_stats(conn, text=demo_rows("62"))
    rows = yoy(conn, "62")
    html_text = str(yoy_panel(rows, "en"))
    for pct in PERCENTS.values():
        assert pct in html_text
    rows[2] = {**rows[2], "small": True}
    assert "unreliable" in str(yoy_panel(rows, "en"))
    a = {"id": 1, "rule": "spike", "severity": "red", "region_code": "6201", "region_name": "兰州市",
         "explanation_zh": "近 7 天 14 件", "explanation_en": "14 cases", "raised_at": NOW.isoformat(),
         "acknowledged_at": None, "acknowledged_by": None}
    assert "近 7 天 14 件" in str(alert_card(a, "zh")) and "14 cases" in str(alert_card(a, "en"))
