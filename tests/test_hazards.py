"""Hazards: spatial rules raise grades and say why; rectify, close out, re-inspect; the hazards API over HTTP.

Hand-worked geometry: at latitude 38.5° one metre north is 1 / 110,996 degrees (meridian arc).
A power line along lat 38.5 and a 4 m × 4 m shed whose south edge is 4 m north of it are 4.0 m apart.
"""

from __future__ import annotations

import httpx
import pytest
from shapely.geometry import LineString, box, mapping

from gridwatch import hazards
from gridwatch.intake import InputError
from tests.apiserver import ApiWorld

M = 1 / 110_996.0      # degrees of latitude per metre at 38.5°N
LINE = LineString([(102.50, 38.5), (102.51, 38.5)])


def shed(north_m: float, lon: float = 102.505, size_m: float = 4.0):
    y0 = 38.5 + north_m * M
    return box(lon, y0, lon + size_m * M * 1.28, y0 + size_m * M)


def test_a_power_line_within_10_m_of_a_livestock_shed_is_raised_to_red_and_says_why(conn, tiny):
    line, _ = hazards.create_hazard(conn, {"kind": "power_line", "title": "10kV 浅河线", "geometry": mapping(LINE)})
    assert line["grade"] == "yellow" and line["grade_reasons"] == []
    far, _ = hazards.create_hazard(conn, {"kind": "livestock_shed", "title": "远处羊圈", "geometry": mapping(shed(30))})
    assert hazards.get_hazard(conn, line["id"])["grade"] == "yellow"          # 30 m: no rule
    near, _ = hazards.create_hazard(conn, {"kind": "livestock_shed", "title": "石全爱钢架牛棚", "geometry": mapping(shed(4))})
    raised = hazards.get_hazard(conn, line["id"])
    assert raised["grade"] == "red" and raised["base_grade"] == "yellow"
    (reason,) = raised["grade_reasons"]
    assert reason["rule"] == "power_line_near_building" and reason["near_id"] == near["id"]
    assert reason["distance_m"] == pytest.approx(4.0, abs=0.15)
    assert "石全爱钢架牛棚" in raised["grade_reason"] and "10 米内" in raised["grade_reason"]
    assert "within 10 m raises it to red" in reason["en"]
    # the shed is demolished (closed out): the line falls back to its reported grade
    hazards.act(conn, near["id"], "close_out", "村委会", note="牛棚已拆除")
    back = hazards.get_hazard(conn, line["id"])
    assert back["grade"] == "yellow" and back["grade_reasons"] == [] and back["grade_reason"] is None


def test_a_dilapidated_house_inside_a_flood_zone_is_red(conn, tiny):
    zone = box(102.40, 38.40, 102.45, 38.45)
    house, _ = hazards.create_hazard(conn, {"kind": "dilapidated_house", "title": "张家土坯房",
                                            "geometry": {"type": "Point", "coordinates": [102.42, 38.42]}})
    assert house["grade"] == "yellow"
    hazards.create_hazard(conn, {"kind": "flood", "title": "黑河行洪区", "geometry": mapping(zone), "grade": "orange"})
    after = hazards.get_hazard(conn, house["id"])
    assert after["grade"] == "red" and after["grade_reasons"][0]["near_title"] == "黑河行洪区"


def test_close_out_reinspection_and_recurrence_are_tracked_and_recurrence_raises_the_grade(conn, tiny):
    gas, _ = hazards.create_hazard(conn, {"kind": "gas", "title": "液化气站", "deadline_days": 10,
                                          "geometry": {"type": "Point", "coordinates": [102.3, 38.3]}})
    assert gas["deadline"] is not None and gas["village_code"] == "620702100200"
    for k in range(2):
        hazards.act(conn, gas["id"], "start_rectification", "燃气公司")
        closed = hazards.act(conn, gas["id"], "close_out", "应急管理局", note="已整改")
        assert closed["state"] == "closed" and closed["closed_at"] is not None
        reopened = hazards.act(conn, gas["id"], "reinspect", "复查组", ok=False, note="阀门仍漏气")
        assert reopened["state"] == "reopened" and reopened["recurrence"] == k + 1 and reopened["closed_at"] is None
    assert reopened["grade"] == "orange"
    assert reopened["grade_reasons"][-1]["rule"] == "recurrence"
    hazards.act(conn, gas["id"], "close_out", "应急管理局")
    ok = hazards.act(conn, gas["id"], "reinspect", "复查组", ok=True)
    assert ok["state"] == "closed" and ok["reinspected_at"] is not None
    with pytest.raises(InputError, match="hazard .* is closed: close_out is not allowed there; allowed now: reinspect"):
        hazards.act(conn, gas["id"], "close_out", "x")
    actions = [e["action"] for e in hazards.hazard_events(conn, gas["id"])]
    assert actions[0] == "report" and actions.count("reinspect") == 3


def test_a_hazard_outside_gansu_or_with_a_bad_geometry_is_refused_and_nothing_is_written(conn, tiny):
    with pytest.raises(InputError, match="outside Gansu"):
        hazards.create_hazard(conn, {"kind": "fire", "geometry": {"type": "Point", "coordinates": [116.4, 39.9]}})
    with pytest.raises(InputError, match="look swapped"):
        hazards.create_hazard(conn, {"kind": "fire", "geometry": {"type": "Point", "coordinates": [38.5, 102.5]}})
    bowtie = {"type": "Polygon", "coordinates": [[[102.1, 38.1], [102.2, 38.2], [102.2, 38.1], [102.1, 38.2], [102.1, 38.1]]]}
    with pytest.raises(InputError, match="not valid: Self-intersection"):
        hazards.create_hazard(conn, {"kind": "flood", "geometry": bowtie})
    assert conn.execute("SELECT count(*) AS n FROM hazard").fetchone()["n"] == 0


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster)
    yield w
    w.close()


def test_the_hazards_api_registers_queries_and_acts_with_idempotent_retries(world):
    with httpx.Client(base_url=world.url, timeout=30) as http:
        body = {"kind": "power_line", "title": "10kV 线路", "geometry": mapping(LINE), "client_request_id": "hz-1",
                "owner_department_id": world.departments["power"], "deadline_days": 30}
        r = http.post("/api/v1/hazards", json=body)
        assert r.status_code == 201, r.text
        hid = r.json()["id"]
        assert http.post("/api/v1/hazards", json=body).status_code == 200
        assert world.count("hazard") == 1
        shed_r = http.post("/api/v1/hazards", json={"kind": "livestock_shed", "title": "牛棚", "geometry": mapping(shed(5))})
        assert shed_r.status_code == 201
        got = http.get(f"/api/v1/hazards/{hid}").json()
        assert got["grade"] == "red" and got["geometry"]["type"] == "LineString" and got["events"][0]["action"] == "report"
        listed = http.get("/api/v1/hazards", params={"grade": "red", "region": "620702"}).json()
        assert [h["id"] for h in listed] == [hid]
        bad = http.post(f"/api/v1/hazards/{hid}/actions", json={"action": "reinspect", "actor": "x", "ok": True})
        assert bad.status_code == 409 and "allowed now: start_rectification, close_out" in bad.json()["error"]["message"]
        done = http.post(f"/api/v1/hazards/{hid}/actions", json={"action": "close_out", "actor": "供电所", "note": "已迁改"})
        assert done.json()["state"] == "closed"
        before = world.count("hazard")
        wrong = http.post("/api/v1/hazards", json={"kind": "volcano", "geometry": mapping(LINE)})
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "kind"
        assert world.count("hazard") == before
        assert http.get("/api/v1/hazards/987654").status_code == 404
