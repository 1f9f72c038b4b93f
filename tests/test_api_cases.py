"""The case intake and lifecycle API over real HTTP against a real PostGIS (tiny hierarchy).

Every refusal is checked for a clear message naming the field/value/fix and for nothing written.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.apiserver import ApiWorld

LIMIT = 50_000


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster, env={"GRIDWATCH_MAX_BODY_BYTES": str(LIMIT)})
    yield w
    w.close()


@pytest.fixture
def http(world):
    with httpx.Client(base_url=world.url, timeout=30) as client:
        yield client


def counts(world):
    return world.count("cases"), world.count("case_event"), world.count("mediation")


def test_a_posted_case_is_created_stamped_and_reported_with_201(world, http):
    r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 102.5, "lat": 38.5, "title": "院墙纠纷"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True and body["state"] == "reported" and body["title"] == "院墙纠纷"
    assert body["grid_code"] == "620702100200001" and body["county_code"] == "620702"
    assert body["ref"].startswith("GW") and body["ref"].endswith(f"-{body['id']}")
    got = http.get(f"/api/v1/cases/{body['id']}").json()
    assert [e["action"] for e in got["events"]] == ["report"]
    assert "accept" in got["allowed_actions"]


def test_a_retry_with_the_same_client_request_id_answers_200_with_the_same_case(world, http):
    payload = {"category": "labour", "lon": 101.2, "lat": 36.1, "client_request_id": "retry-1"}
    first = http.post("/api/v1/cases", json=payload)
    before = counts(world)
    again = http.post("/api/v1/cases", json=payload)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    assert counts(world) == before


def test_malformed_json_is_refused_with_400_naming_the_position_and_nothing_is_written(world, http):
    before = counts(world)
    body = b'{"category": "neighbour", "lon": 102.5 "lat": 38.5}'
    pos = body.index(b'"lat')          # the missing comma: JSON parsing stops at "lat
    r = http.post("/api/v1/cases", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "malformed_json"
    assert f"line 1, column {pos + 1} (character {pos})" in err["message"]
    assert f"第 1 行第 {pos + 1} 列" in err["message_zh"]
    assert counts(world) == before


def test_an_unknown_category_is_refused_naming_the_known_ones_and_nothing_is_written(world, http):
    before = counts(world)
    r = http.post("/api/v1/cases", json={"category": "ufo_sighting", "lon": 102.5, "lat": 38.5})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "category" and err["value"] == "ufo_sighting" and err["code"] == "unknown_category"
    assert "neighbour" in err["message"] and "/api/v1/categories" in err["fix"]
    assert counts(world) == before


def test_a_case_posted_outside_gansu_is_refused_with_the_bounds_named(world, http):
    before = counts(world)
    r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 116.404, "lat": 39.915})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "outside_gansu" and err["value"] == {"lon": 116.404, "lat": 39.915}
    assert "outside Gansu (roughly lon 92.1–108.8, lat 32.6–42.8)" in err["message"]
    assert "不在甘肃省范围内" in err["message_zh"] and "gcj02" in err["fix"]
    assert counts(world) == before


def test_swapped_latitude_and_longitude_are_detected_and_explained(world, http):
    before = counts(world)
    r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 38.5, "lat": 102.5})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "swapped_coordinates"
    assert "look swapped" in err["message"] and "send lon=102.5, lat=38.5" in err["fix"]
    assert "经纬度似乎填反了" in err["message_zh"]
    assert counts(world) == before


def test_an_oversize_body_is_refused_with_413_whether_or_not_it_declares_its_length(world, http):
    before = counts(world)
    big = json.dumps({"category": "neighbour", "lon": 102.5, "lat": 38.5, "description": "x" * (LIMIT + 10)}).encode()
    r = http.post("/api/v1/cases", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert f"at most {LIMIT:,} bytes" in r.json()["error"]["message"]

    def chunks():
        for k in range(0, len(big), 8192):
            yield big[k:k + 8192]

    r2 = http.post("/api/v1/cases", content=chunks(), headers={"content-type": "application/json"})
    assert r2.status_code == 413 and r2.json()["error"]["code"] == "body_too_large"
    assert counts(world) == before


def test_wrong_types_and_unknown_fields_are_refused_naming_each_field(world, http):
    before = counts(world)
    r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": "east", "lat": 38.5, "colour": "blue"})
    assert r.status_code == 422
    err = r.json()["error"]
    fields = {d["field"]: d for d in err["details"]}
    assert fields["lon"]["value"] == "east" and "number" in fields["lon"]["fix"]
    assert "colour" in fields and "remove the field" in fields["colour"]["fix"]
    missing = http.post("/api/v1/cases", json={"lon": 102.5, "lat": 38.5}).json()["error"]
    assert missing["field"] == "category" and missing["fix"] == "add the field"
    assert counts(world) == before


def test_a_batch_is_written_whole_with_one_notification_or_not_at_all(world, http):
    items = [{"category": "city_appearance", "lon": 102.1 + k * 0.01, "lat": 37.2, "client_request_id": f"b-{k}"}
             for k in range(50)]
    with world.connect() as conn:
        v0 = conn.execute("SELECT version FROM data_version WHERE name = 'cases'").fetchone()["version"]
    r = http.post("/api/v1/cases/batch", json={"cases": items})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["count"] == 50 and body["created"] == 50
    with world.connect() as conn:
        v1 = conn.execute("SELECT version FROM data_version WHERE name = 'cases'").fetchone()["version"]
    assert v1 == v0 + 1
    again = http.post("/api/v1/cases/batch", json={"cases": items[:10] + [
        {"category": "city_appearance", "lon": 102.9, "lat": 37.2, "client_request_id": "b-new"}]}).json()
    assert again["created"] == 1 and [c["id"] for c in again["cases"][:10]] == [c["id"] for c in body["cases"][:10]]
    before = counts(world)
    bad = http.post("/api/v1/cases/batch", json={"cases": [
        {"category": "city_appearance", "lon": 102.2, "lat": 37.3}, {"category": "nope", "lon": 102.2, "lat": 37.3}]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cases[1].category"
    assert counts(world) == before


def test_cases_can_be_queried_by_state_category_and_region(world, http):
    made = http.post("/api/v1/cases", json={"category": "consumer", "lon": 100.7, "lat": 35.6}).json()
    assert made["county_code"] == "620102"
    under = http.get("/api/v1/cases", params={"region": "620102", "category": "consumer", "state": "reported"}).json()
    assert made["id"] in [c["id"] for c in under]
    assert all(c["county_code"] == "620102" and c["category_code"] == "consumer" for c in under)
    elsewhere = http.get("/api/v1/cases", params={"region": "6207", "category": "consumer"}).json()
    assert made["id"] not in [c["id"] for c in elsewhere]
    bad = http.get("/api/v1/cases", params={"state": "lost"})
    assert bad.status_code == 422 and "reported" in bad.json()["error"]["fix"]
    assert http.get("/api/v1/cases", params={"region": "62x"}).status_code == 422
    assert http.get("/api/v1/cases/99999999").status_code == 404


def test_a_case_is_walked_through_its_lifecycle_by_actions_and_an_illegal_one_is_refused(world, http):
    cid = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 102.4, "lat": 38.6}).json()["id"]

    def act(**body):
        return http.post(f"/api/v1/cases/{cid}/actions", json=body)

    before = counts(world)
    r = act(action="verify", actor="网格员")
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "illegal_transition" and "is reported" in err["message"]
    assert err["details"][0]["allowed"] == ["accept", "reject", "merge", "escalate", "hand_down"]
    assert counts(world) == before
    assert act(action="accept", actor="中心").status_code == 200
    missing = act(action="dispatch", actor="中心")
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "department_id"
    r = act(action="dispatch", actor="中心", department_id=world.departments["justice"])
    assert r.json()["case"]["state"] == "dispatched" and r.json()["case"]["deadline"]
    assert act(action="return", actor="司法所", note="非本所职责").json()["case"]["returns"] == 1
    assert act(action="dispatch", actor="中心", department_id=world.departments["water"]).json()["case"]["department_id"] == world.departments["water"]
    assert act(action="start", actor="水务局").status_code == 200
    assert act(action="mediate", actor="中心", kind="people", mediator="人民调解员").status_code == 200
    assert act(action="mediation_result", actor="中心", outcome="agreed", agreement="一周内付清").status_code == 200
    assert act(action="feedback", actor="水务局", note="已付清").status_code == 200
    closed = act(action="verify", actor="网格员").json()["case"]
    assert closed["state"] == "closed" and closed["closed_on_time"] is True and closed["resolved"] is True
    assert act(action="visit", actor="回访", satisfaction=9).status_code == 422
    assert act(action="visit", actor="回访", satisfaction=5).json()["case"]["satisfaction"] == 5
    trail = http.get(f"/api/v1/cases/{cid}/events").json()
    assert [e["action"] for e in trail] == ["report", "accept", "dispatch", "return", "dispatch", "start", "mediate",
                                            "mediation_result", "feedback", "verify", "visit"]
    full = http.get(f"/api/v1/cases/{cid}").json()
    assert full["mediations"][0]["agreement"] == "一周内付清"


def test_categories_departments_and_the_transition_table_are_listed(world, http):
    cats = http.get("/api/v1/categories").json()
    names = {c["name_zh"] for c in cats}
    assert {"婚姻家庭", "邻里纠纷", "房屋宅基地", "山林土地", "工程款与合同", "劳动争议", "环境污染", "征地拆迁", "损害赔偿",
            "市容环境", "宣传广告", "施工管理", "街面秩序", "突发事件", "其他事件"} <= names
    deps = http.get("/api/v1/departments", params={"region": "620702100"}).json()
    assert {d["name"] for d in deps} == {"新墩镇司法所", "新墩供电所"}
    table = {t["action"]: t for t in http.get("/api/v1/cases/transitions").json()}
    assert table["dispatch"]["from"] == ["accepted", "returned"] and table["dispatch"]["needs"] == ["department_id"]


def test_the_openapi_spec_documents_every_api_route(world, http):
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v1/cases", "/api/v1/cases/batch", "/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}/actions",
                 "/api/v1/cases/{case_id}/events", "/api/v1/categories", "/api/v1/departments", "/api/v1/live"):
        assert path in paths, path
    assert "CaseIn" in spec["components"]["schemas"]
    assert http.get("/docs").status_code == 200


def test_the_live_stream_pushes_a_new_data_version_after_a_case_is_posted(world, http):
    with http.stream("GET", "/api/v1/live", params={"once": "true"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        data = [line for line in r.iter_lines() if line.startswith("data:")]
    first = json.loads(data[0][5:])
    http.post("/api/v1/cases", json={"category": "neighbour", "lon": 102.45, "lat": 38.45})
    with world.connect() as conn:
        now = conn.execute("SELECT version FROM data_version WHERE name = 'cases'").fetchone()["version"]
    assert now > first["cases"]

    def pushed():
        with http.stream("GET", "/api/v1/live", params={"once": "true"}) as r:
            line = next(line for line in r.iter_lines() if line.startswith("data:"))
        return json.loads(line[5:])["cases"] >= now

    from tests.conftest import wait_until

    wait_until(pushed, timeout=10, message="the live stream to carry the new cases version")


def test_a_body_that_is_not_json_is_refused_with_415_and_an_unlabelled_json_body_is_read_as_json(world, http):
    before = counts(world)
    r = http.post("/api/v1/cases", content="category=neighbour&lon=102.5&lat=38.5",
                  headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "Content-Type: application/json" in r.json()["error"]["fix"]
    r = http.post("/api/v1/cases", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["value"] == "text/plain"
    assert counts(world) == before
    bare = httpx.Request("POST", world.url + "/api/v1/cases", headers=http.headers,
                         content=json.dumps({"category": "neighbour", "lon": 102.51, "lat": 38.51}).encode())
    assert "content-type" not in bare.headers
    r = http.send(bare)
    assert r.status_code == 201, r.text


def test_a_batch_flags_a_case_near_an_earlier_one_of_the_same_batch_and_a_replay_changes_nothing(world, http):
    items = [{"category": "advertising", "lon": 102.61, "lat": 38.61, "client_request_id": "dup-a"},
             {"category": "advertising", "lon": 102.6103, "lat": 38.6101, "client_request_id": "dup-b"},   # ~30 m away
             {"category": "advertising", "lon": 102.64, "lat": 38.61, "client_request_id": "dup-c"}]       # ~2.6 km away
    r = http.post("/api/v1/cases/batch", json={"cases": items})
    assert r.status_code == 201, r.text
    a, b, c = r.json()["cases"]
    assert b["possible_duplicate_of"] == a["id"] and a["possible_duplicate_of"] is None and c["possible_duplicate_of"] is None
    before = counts(world)
    again = http.post("/api/v1/cases/batch", json={"cases": items})
    assert again.status_code == 201 and again.json()["created"] == 0
    assert [x["id"] for x in again.json()["cases"]] == [a["id"], b["id"], c["id"]]
    assert counts(world) == before
