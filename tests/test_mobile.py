"""The grid worker's phone page (/m) in real headless Chromium on a 360×740 screen with the browser's
geolocation: a 兰州 grid worker reports a hazard with a photo at the phone's place and sends the
daily all-clear; a report made offline is queued on the phone and exists exactly once after the
connection returns (even if the phone sends it twice); a GCJ-02 phone's position is converted."""

from __future__ import annotations

from datetime import datetime

import pytest
from PIL import Image

from geo.coords import wgs84_to_gcj02
from gridwatch import auth, intake
from gridwatch import cases as lifecycle
from gridwatch.db import transaction
from tests.conftest import wait_until
from tests.test_workbench_pages import act, choose, signed_in

pytestmark = pytest.mark.browser

LANZHOU = (100.5, 38.5)          # 城关区 (兰州市) of the tiny hierarchy: grid 620102100200001
GRID = "620102100200001"
PHONE = {"width": 360, "height": 740, "is_mobile": True, "has_touch": True, "permissions": ["geolocation"]}


@pytest.fixture
def phone_world(conn, tiny, db_url, serve):
    uid = auth.add_user(conn, "lz_grid", "grid_worker", region_code=GRID, display_name="兰州网格员")
    return {"server": serve(db_url), "sid": auth.create_session(conn, uid)}


def photo(tmp_path) -> str:
    path = tmp_path / "低压线.jpg"
    Image.new("RGB", (2400, 1800), (90, 140, 200)).save(path, "JPEG")
    return str(path)


def open_phone(page, server):
    page.goto(server.url + "/m")
    page.wait_for_selector("#m-page")
    wait_until(lambda: "±" in page.inner_text("#m-position"), message="the phone's position")


def test_a_lanzhou_grid_worker_reports_a_hazard_with_a_photo_at_the_phones_place_and_sends_the_all_clear(
        chromium, phone_world, conn, tmp_path):
    server = phone_world["server"]
    geo = {"longitude": LANZHOU[0], "latitude": LANZHOU[1], "accuracy": 8}
    with signed_in(chromium, server, phone_world["sid"], **PHONE, geolocation=geo) as page:
        open_phone(page, server)
        assert "浅河村第1网格" in page.inner_text("#m-heading")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360     # nothing sticks out sideways
        dot = """() => { const gd = document.querySelector('#m-map .js-plotly-plot');
                         const me = gd && gd.data.find(t => t.name === 'me'); return me && me.lon.length ? [me.lon[0], me.lat[0]] : null; }"""
        wait_until(lambda: page.evaluate(dot) == [LANZHOU[0], LANZHOU[1]], message="the position dot on the grid's map")
        page.click("#m-kind input[value=hazard]")
        page.select_option("#m-hazard-kind", "power_line")
        page.fill("#m-title", "低压线路下垂，距钢架牛棚不足两米")
        page.set_input_files("#m-photo", photo(tmp_path))
        page.click("#m-report")
        wait_until(lambda: conn.execute("SELECT count(*) AS n FROM attachment a JOIN hazard h ON h.id = a.hazard_id "
                                        "WHERE h.grid_code = %s", (GRID,)).fetchone()["n"] == 1,
                   message="the hazard and its photo stored")
        hazard = conn.execute("SELECT * , ST_X(geom) AS lon, ST_Y(geom) AS lat FROM hazard WHERE grid_code = %s", (GRID,)).fetchone()
        assert (hazard["kind"], hazard["title"]) == ("power_line", "低压线路下垂，距钢架牛棚不足两米")
        assert abs(hazard["lon"] - LANZHOU[0]) < 1e-6 and abs(hazard["lat"] - LANZHOU[1]) < 1e-6
        shot = conn.execute("SELECT width, height, media_type FROM attachment WHERE hazard_id = %s", (hazard["id"],)).fetchone()
        assert shot["media_type"] == "image/jpeg" and max(shot["width"], shot["height"]) == 1600   # shrunk on the phone
        wait_until(lambda: "已上报" in page.inner_text("#m-status"), message="the phone to say it was sent")
        page.click("#m-all-clear")
        wait_until(lambda: conn.execute("SELECT count(*) AS n FROM checkin WHERE grid_code = %s AND kind = 'all_clear' "
                                        "AND worker = 'lz_grid'", (GRID,)).fetchone()["n"] == 1, message="the all-clear stored")
        wait_until(lambda: "已报平安" in page.inner_text("#m-status"), message="the phone to confirm the all-clear")
        page.screenshot_to("workbench-phone")


def test_a_report_made_offline_is_kept_on_the_phone_and_exists_exactly_once_when_the_connection_returns(
        chromium, phone_world, conn, tmp_path):
    server = phone_world["server"]
    geo = {"longitude": LANZHOU[0] + 0.1, "latitude": LANZHOU[1] + 0.1, "accuracy": 15}

    def cases():
        return conn.execute("SELECT id, client_request_id, title FROM cases WHERE grid_code = %s", (GRID,)).fetchall()

    with signed_in(chromium, server, phone_world["sid"], **PHONE, geolocation=geo) as page:
        open_phone(page, server)
        page.context.set_offline(True)
        page.select_option("#m-category", "neighbour")
        page.fill("#m-title", "两户因院墙起争执")
        page.set_input_files("#m-photo", photo(tmp_path))
        page.click("#m-report")
        wait_until(lambda: page.evaluate("window.gridwatchPhone.queue().length") == 1, message="the report queued on the phone")
        assert page.locator("#m-pending").is_visible() and "待发送 1" in page.inner_text("#m-pending")
        # a lost answer makes a phone send the same report again: put a second copy in the queue
        page.evaluate("""() => { const q = JSON.parse(localStorage.getItem('gridwatch.m.queue'));
                                 q.push(JSON.parse(JSON.stringify(q[0]))); localStorage.setItem('gridwatch.m.queue', JSON.stringify(q)); }""")
        assert cases() == []
        page.context.set_offline(False)
        wait_until(lambda: page.evaluate("window.gridwatchPhone.queue().length") == 0, timeout=30, message="the queue sent")
        found = cases()
        assert len(found) == 1 and found[0]["title"] == "两户因院墙起争执"
        assert conn.execute("SELECT count(*) AS n FROM attachment WHERE case_id = %s", (found[0]["id"],)).fetchone()["n"] == 1
        page.reload()
        open_phone(page, server)
        assert page.evaluate("window.gridwatchPhone.queue().length") == 0 and len(cases()) == 1


def test_a_phone_giving_gcj02_positions_is_converted_to_the_true_place(chromium, phone_world, conn):
    server = phone_world["server"]
    lon, lat = wgs84_to_gcj02(LANZHOU[0], LANZHOU[1])
    geo = {"longitude": float(lon), "latitude": float(lat), "accuracy": 10}
    with signed_in(chromium, server, phone_world["sid"], **PHONE, geolocation=geo) as page:
        open_phone(page, server)
        page.click("#m-datum input[value=gcj02]")
        page.fill("#m-title", "路灯损坏")
        page.select_option("#m-category", "city_appearance")
        page.click("#m-report")
        wait_until(lambda: conn.execute("SELECT count(*) AS n FROM cases WHERE grid_code = %s", (GRID,)).fetchone()["n"] == 1,
                   message="the case stored")
        row = conn.execute("SELECT coord_system, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM cases WHERE grid_code = %s", (GRID,)).fetchone()
        assert row["coord_system"] == "gcj02"
        assert abs(row["lon"] - LANZHOU[0]) < 1e-5 and abs(row["lat"] - LANZHOU[1]) < 1e-5      # about a metre


def test_a_case_the_township_hands_down_to_the_grid_is_on_the_workers_phone_with_its_deadline_and_the_worker_reports_up(
        chromium, phone_world, conn):
    server = phone_world["server"]
    with transaction(conn):
        case, _ = intake.create_case(conn, {"category": "neighbour", "lon": LANZHOU[0], "lat": LANZHOU[1], "channel": "hotline",
                                            "handling_level": "township", "title": "邻里宅基地纠纷，请网格员入户了解"}, actor="窗口")
    cid = case["id"]
    town = auth.create_session(conn, auth.add_user(conn, "chengguan_town", "operator", region_code=GRID[:9]))
    with signed_in(chromium, server, town) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=accept]")
        act(page, "accept")
        page.wait_for_selector("button.case-do[data-action=hand_down]")
        act(page, "hand_down", **{"lv": lambda p: choose(p, "#case-level", "村（社区）"), "#case-hours": "48",
                                  "#case-note": "请网格员两日内入户了解并上报"})
    down = lifecycle.get_case(conn, cid)
    assert (down["handling_level"], down["grid_code"]) == ("village", GRID)
    with signed_in(chromium, server, phone_world["sid"], **PHONE,
                   geolocation={"longitude": LANZHOU[0], "latitude": LANZHOU[1], "accuracy": 8}) as page:
        open_phone(page, server)
        task = f"#m-task-{cid}"
        page.wait_for_selector(task)
        assert "邻里宅基地纠纷" in page.inner_text(task)
        due = datetime.fromisoformat(page.get_attribute(f"{task} .wb-due", "data-due"))
        assert due == down["deadline"]
        wait_until(lambda: "剩余" in page.inner_text(f"{task} .wb-due"), message="the task's deadline counting down")
        page.click(f"{task} a")
        page.wait_for_selector("button.case-do[data-action=report_up]")
        act(page, "report_up", **{"#case-note": "已入户了解：双方同意由村调委会调解"})
    up = lifecycle.get_case(conn, cid)
    assert (up["state"], up["handling_level"]) == ("feedback", "township")
    assert [(e["action"], e["actor"]) for e in lifecycle.case_events(conn, cid)][-2:] == [("hand_down", "chengguan_town"),
                                                                                          ("report_up", "lz_grid")]
