"""The workbench's JSON API over real HTTP (the real app on a thread, tiny hierarchy, bearer tokens):
the queue, acting only as allowed, attachments inside the scope, the phone's idempotent reports
and the all-clear, notifications."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from gridwatch import auth, intake, workbench
from gridwatch.db import transaction
from tests.factories import make_department


def jpeg(colour=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def site(conn, tiny, db_url, serve_in_process):
    water = make_department(conn, "620702", "water", "甘州区水务局")
    users = {
        "county": auth.add_user(conn, "ganzhou", "operator", region_code="620702"),
        "wujiang": auth.add_user(conn, "wujiang", "operator", region_code="620702200"),
        "water": auth.add_user(conn, "water", "department", department_id=water),
        "grid": auth.add_user(conn, "grid1", "grid_worker", region_code="620702100201001"),
        "planner": auth.add_user(conn, "planner", "planner"),
    }
    tokens = {}
    for key, uid in users.items():
        name = conn.execute("SELECT username FROM app_user WHERE id = %s", (uid,)).fetchone()["username"]
        tokens[key] = auth.create_token(conn, name)[1]
    with transaction(conn):
        case, _ = intake.create_case(conn, {"category": "project_contract", "lon": 103.0, "lat": 38.5, "channel": "window",
                                            "handling_level": "county", "title": "工程款纠纷"}, actor="窗口")
    server = serve_in_process(db_url)
    clients = {k: httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {t}"}, timeout=30) for k, t in tokens.items()}
    yield {"url": server.url, "c": clients, "case": case, "water": water}
    for c in clients.values():
        c.close()


def test_the_queue_needs_a_signed_in_user_and_lists_the_callers_cases_by_stage(site):
    anonymous = httpx.get(site["url"] + "/api/v1/queue", headers={"Authorization": "none"}, timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"
    body = site["c"]["county"].get("/api/v1/queue").json()
    assert body["user"]["username"] == "ganzhou" and body["counts"]["to_accept"] == 1
    assert [(c["id"], c["stage"]) for c in body["cases"]] == [(site["case"]["id"], "to_accept")]
    assert site["c"]["wujiang"].get("/api/v1/queue").json()["cases"] == []
    assert site["c"]["county"].get("/api/v1/queue", params={"stage": "nonsense"}).status_code == 422


def test_a_user_acts_only_as_the_case_allows_and_a_refusal_writes_nothing(site):
    cid = site["case"]["id"]
    county, water = site["c"]["county"], site["c"]["water"]
    detail = county.get(f"/api/v1/workbench/cases/{cid}").json()
    assert detail["allowed_actions"][:2] == ["accept", "reject"]
    refused = water.post(f"/api/v1/workbench/cases/{cid}/actions", json={"action": "accept"})
    assert refused.status_code in (403, 404) and refused.json()["error"]["code"] in ("forbidden", "not_found")
    ok = county.post(f"/api/v1/workbench/cases/{cid}/actions", json={"action": "accept"})
    assert ok.status_code == 200 and ok.json()["case"]["state"] == "accepted"
    out = county.post(f"/api/v1/workbench/cases/{cid}/actions", json={"action": "convene", "note": "一吹哨", "parts": [
        {"department_id": site["water"], "part": "核实并支付", "hours": 240, "lead": True}]}).json()
    assert out["case"]["state"] == "dispatched" and out["assignments"][0]["department_name"] == "甘州区水务局"
    events = county.get(f"/api/v1/workbench/cases/{cid}").json()["events"]
    assert [e["actor"] for e in events if e["action"] in ("accept", "convene", "dispatch")] == ["ganzhou"] * 3
    started = water.post(f"/api/v1/workbench/cases/{cid}/actions", json={"action": "start"})
    assert started.status_code == 200 and started.json()["case"]["state"] == "in_progress"


def test_a_photo_is_attached_once_served_with_nosniff_and_hidden_outside_the_scope(site):
    cid, county = site["case"]["id"], site["c"]["county"]
    photo = jpeg()
    first = county.post(f"/api/v1/cases/{cid}/attachments", content=photo,
                        headers={"Content-Type": "image/jpeg", "X-Filename": "%E7%8E%B0%E5%9C%BA.jpg"})
    assert first.status_code == 201 and first.json()["filename"] == "现场.jpg"
    again = county.post(f"/api/v1/cases/{cid}/attachments", content=photo, headers={"Content-Type": "image/jpeg"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    got = county.get(f"/api/v1/attachments/{first.json()['id']}")
    assert got.content == photo and got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    thumb = county.get(f"/api/v1/attachments/{first.json()['id']}/thumbnail")
    assert thumb.status_code == 200 and len(thumb.content) < len(photo)
    assert site["c"]["wujiang"].get(f"/api/v1/attachments/{first.json()['id']}").status_code == 404
    assert httpx.get(site["url"] + f"/api/v1/attachments/{first.json()['id']}", headers={"Authorization": "none"}, timeout=30).status_code == 401
    gif = county.post(f"/api/v1/cases/{cid}/attachments", content=b"GIF89a" + b"\0" * 50, headers={"Content-Type": "image/gif"})
    assert gif.status_code == 415 and gif.json()["error"]["code"] == "unsupported_type"


def test_the_phones_report_is_idempotent_on_its_client_request_id_and_the_all_clear_is_once_a_day(site):
    grid = site["c"]["grid"]
    report = {"kind": "hazard", "hazard_kind": "power_line", "lon": 103.5, "lat": 38.5, "title": "低压线路过低",
              "client_request_id": "phone-0001-abcdef"}
    first = grid.post("/api/v1/m/reports", json=report)
    assert first.status_code == 201 and first.json()["created"]
    again = grid.post("/api/v1/m/reports", json=report)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and not again.json()["created"]
    case = grid.post("/api/v1/m/reports", json={"kind": "case", "category": "neighbour", "lon": 103.5, "lat": 38.5,
                                                "client_request_id": "phone-0002-abcdef"})
    assert case.status_code == 201 and case.json()["grid_code"] == "620702100201001"
    clear = grid.post("/api/v1/m/all-clear")
    assert clear.status_code == 201 and clear.json()["kind"] == "all_clear" and clear.json()["grid_code"] == "620702100201001"
    assert grid.post("/api/v1/m/all-clear").status_code == 200
    assert site["c"]["county"].post("/api/v1/m/all-clear").status_code == 403
    assert site["c"]["planner"].post("/api/v1/m/reports", json=report).status_code == 403


def test_notifications_list_the_new_case_and_remember_it_was_read(site):
    county = site["c"]["county"]
    body = county.get("/api/v1/notifications").json()
    assert body["unread"] == 1 and body["items"][0]["kind"] == "new_case"
    assert county.post("/api/v1/notifications/read", json={"keys": [body["items"][0]["key"]]}).json() == {"marked": 1}
    assert county.get("/api/v1/notifications").json()["unread"] == 0


def test_a_hand_down_over_the_api_needs_its_deadline_and_the_result_comes_back_up_from_the_township(site, conn):
    cid = site["case"]["id"]
    county = site["c"]["county"]
    auth.add_user(conn, "xindun_api", "operator", region_code="620702100")
    xindun = httpx.Client(base_url=site["url"], timeout=30,
                          headers={"Authorization": f"Bearer {auth.create_token(conn, 'xindun_api')[1]}"})
    path = f"/api/v1/workbench/cases/{cid}/actions"
    assert county.post(path, json={"action": "accept"}).status_code == 200
    trail = len(county.get(f"/api/v1/workbench/cases/{cid}").json()["events"])
    missing = county.post(path, json={"action": "hand_down", "level": "township", "note": "请新墩镇调处"})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "hours"
    assert len(county.get(f"/api/v1/workbench/cases/{cid}").json()["events"]) == trail
    down = county.post(path, json={"action": "hand_down", "level": "township", "hours": 72, "note": "请新墩镇3日内调处并报县中心"})
    assert down.status_code == 200 and down.json()["case"]["handling_level"] == "township"
    assert county.post(path, json={"action": "report_up", "note": "县中心不能替镇上报"}).status_code == 403
    assert [c["id"] for c in xindun.get("/api/v1/queue").json()["cases"]] == [cid]
    up = xindun.post(path, json={"action": "report_up", "note": "已调解，工程款已付"})
    assert up.status_code == 200 and up.json()["case"]["handling_level"] == "county" and up.json()["case"]["state"] == "feedback"
    assert "verify" in county.get(f"/api/v1/workbench/cases/{cid}").json()["allowed_actions"]
    events = county.get(f"/api/v1/workbench/cases/{cid}").json()["events"]
    assert [(e["action"], e["actor"]) for e in events[-2:]] == [("hand_down", "ganzhou"), ("report_up", "xindun_api")]
    xindun.close()


def test_the_case_page_shows_parties_only_to_roles_with_the_right_and_audits_each_opening(site, conn):
    with transaction(conn):
        case, _ = intake.create_case(conn, {"category": "project_contract", "lon": 103.0, "lat": 38.5, "channel": "window",
                                            "handling_level": "county", "title": "欠款纠纷", "description": "陈某某诉称",
                                            "reporter_name": "陈殿清", "reporter_phone": "13800000000"}, actor="窗口")
    cid = case["id"]
    seen = site["c"]["county"].get(f"/api/v1/workbench/cases/{cid}")
    assert seen.status_code == 200
    assert {"role": "reporter", "name": "陈殿清", "contact": "13800000000"} in seen.json()["parties"]
    audit = conn.execute("SELECT username, what FROM personal_data_access WHERE case_id = %s", (cid,)).fetchall()
    assert [r["username"] for r in audit] == ["ganzhou"] and "workbench" in audit[0]["what"]

    grid_worker = auth.resolve(conn, auth.create_token(conn, "grid1")[1])
    detail = workbench.case_detail(conn, grid_worker, cid)
    assert detail["parties"] == [] and detail["case"]["description"] == "***"
    assert "陈殿清" not in repr(detail) and "13800000000" not in repr(detail)
    assert conn.execute("SELECT count(*) AS n FROM personal_data_access WHERE case_id = %s", (cid,)).fetchone()["n"] == 1
