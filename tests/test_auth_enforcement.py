"""Identity enforced over real HTTP through the real app (issue 11, phase 2): every role, with tokens.

The server runs as gridwatch_app: anonymous writes get 401 before anything runs, roles without the
right get 403, rows outside a scope look like 404, the trail names the signed-in user, idempotency
keys answer only their client, people's details are masked by capability and audited when opened.
"""

from __future__ import annotations

import math
import re

import httpx
import psycopg
import pytest
from psycopg import sql

from gridwatch.api.auth import is_public_write, write_capability
from gridwatch.db import app_url_for
from tests.apiserver import ApiWorld
from tests.conftest import ANONYMOUS, account_token, bearer

WRITE_METHODS = {"post", "put", "patch", "delete"}
TABLES = ("cases", "case_event", "mediation", "hazard", "hazard_event", "checkin", "alert", "alert_event", "centre",
          "personal_data_access")


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster)
    dept = w.departments["water"]
    w.tokens = {
        "op_zhangye_xindun": account_token(w.db_url, "op_xindun", "operator", "620702100"),
        "op_lanzhou_xindun": account_token(w.db_url, "op_lz_xindun", "operator", "620102100"),
        "leader": account_token(w.db_url, "leader", "province_leader"),
        "planner": account_token(w.db_url, "planner", "planner"),
        "wall": account_token(w.db_url, "wall", "wall"),
        "worker": account_token(w.db_url, "worker", "grid_worker", "620702100200001"),
        "department": account_token(w.db_url, "water", "department", department_id=dept),
        "client_a": account_token(w.db_url, "client_a", "open311_client"),
        "client_b": account_token(w.db_url, "client_b", "open311_client"),
    }
    yield w
    w.close()


@pytest.fixture
def http(world):
    with httpx.Client(base_url=world.url, timeout=30, follow_redirects=False) as client:
        yield client


def as_(world, who: str) -> dict:
    return bearer(world.tokens[who])


def counts(world) -> dict:
    with world.connect() as conn:
        return {t: conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(t))).fetchone()["n"]
                for t in TABLES}


def report(http, world, who: str, lon: float, lat: float, **extra) -> dict:
    r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": lon, "lat": lat, **extra}, headers=as_(world, who))
    assert r.status_code in (200, 201), r.text
    return r.json()


def write_routes(http) -> list[tuple[str, str]]:
    spec = http.get("/openapi.json").json()
    routes = [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops if m in WRITE_METHODS]
    return routes + [("POST", "/_dash-update-component")]     # Dash's callbacks are not in the spec


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_write_route_refuses_an_anonymous_request_with_401_and_writes_nothing(world, http):
    routes = write_routes(http)
    assert len(routes) >= 15, routes
    before = counts(world)
    for method, path in routes:
        if path in ("/login", "/logout"):
            continue
        r = http.request(method, concrete(path), json={"category": "neighbour", "lon": 102.5, "lat": 38.5},
                         headers=ANONYMOUS)
        assert r.status_code == 401, f"{method} {path} answered {r.status_code}: {r.text[:200]}"
        body = r.json()
        error = body[0] if isinstance(body, list) else body["error"]     # Open311 answers in its own list form
        assert error.get("code") in ("unauthenticated", 401), f"{method} {path}: {body}"
    assert counts(world) == before


def test_every_write_route_in_the_spec_names_the_capability_it_needs(http):
    unlisted = [f"{m} {p}" for m, p in write_routes(http)
                if not is_public_write(m, concrete(p)) and not write_capability(m, concrete(p))[0]]
    assert not unlisted, (f"write routes without a capability: {unlisted} — list each in "
                          "gridwatch.api.auth.WRITE_CAPABILITIES (until then they answer 403 to everyone)")


def test_a_township_operator_cannot_see_or_act_on_another_townships_case(world, http):
    theirs = report(http, world, "op_lanzhou_xindun", 101.5, 38.5)          # 兰州 城关区 新墩镇
    ours = report(http, world, "op_zhangye_xindun", 102.5, 38.5)            # 张掖 甘州区 新墩镇
    me = as_(world, "op_zhangye_xindun")
    assert http.get(f"/api/v1/cases/{theirs['id']}", headers=me).status_code == 404
    assert http.get(f"/api/v1/cases/{theirs['id']}/events", headers=me).status_code == 404
    listed = {c["id"] for c in http.get("/api/v1/cases", params={"limit": 5000}, headers=me).json()}
    assert ours["id"] in listed and theirs["id"] not in listed
    before = counts(world)
    r = http.post(f"/api/v1/cases/{theirs['id']}/actions", json={"action": "accept"}, headers=me)
    assert r.status_code in (403, 404), r.text
    assert counts(world) == before
    # reporting into another township is refused by the database's policy: 403, nothing written
    r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 101.5, "lat": 38.5}, headers=me)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert counts(world) == before


def test_roles_without_the_right_get_403_and_nothing_is_written(world, http):
    case = report(http, world, "op_zhangye_xindun", 102.52, 38.52)
    before = counts(world)
    for who, method, path, body in (
            ("planner", "POST", "/api/v1/cases", {"category": "neighbour", "lon": 102.5, "lat": 38.5}),
            ("wall", "POST", "/api/v1/cases", {"category": "neighbour", "lon": 102.5, "lat": 38.5}),
            ("wall", "POST", f"/api/v1/cases/{case['id']}/actions", {"action": "accept"}),
            ("leader", "POST", f"/api/v1/cases/{case['id']}/actions", {"action": "accept"}),
            ("worker", "POST", f"/api/v1/cases/{case['id']}/actions", {"action": "accept"}),
            ("client_a", "POST", f"/api/v1/cases/{case['id']}/actions", {"action": "accept"}),
            ("planner", "POST", "/api/v1/alerts/1/ack", {}),
            ("wall", "PUT", "/api/v1/scenarios/x", {"centres": []}),
            ("operator_unknown", "POST", "/api/v1/cases", {"category": "neighbour", "lon": 102.5, "lat": 38.5})):
        headers = as_(world, who) if who in world.tokens else bearer("gwt_not-a-token")
        r = http.request(method, path, json=body, headers=headers)
        expected = 401 if who not in world.tokens else 403
        assert r.status_code == expected, f"{who} {method} {path}: {r.status_code} {r.text[:200]}"
        assert r.json()["error"]["code"] in ("forbidden", "unauthenticated")
    assert counts(world) == before


def test_the_actor_in_the_trail_is_the_signed_in_user_whatever_the_body_says(world, http):
    case = report(http, world, "op_zhangye_xindun", 102.53, 38.53)
    r = http.post(f"/api/v1/cases/{case['id']}/actions", json={"action": "accept", "actor": "省委书记"},
                  headers=as_(world, "op_zhangye_xindun"))
    assert r.status_code == 200, r.text
    events = http.get(f"/api/v1/cases/{case['id']}/events", headers=as_(world, "op_zhangye_xindun")).json()
    assert [e["actor"] for e in events] == ["op_xindun", "op_xindun"]
    # and by direct SQL as the app role: an event without an authenticated user is refused
    with psycopg.connect(app_url_for(world.db_url)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO case_event (case_id, actor, action, to_state) VALUES (%s, 'x', 'note', 'accepted')",
                         (case["id"],))


def test_a_client_request_id_replayed_by_another_client_never_answers_the_first_clients_case(world, http):
    form = {"service_code": "street_order", "lat": "38.57", "long": "102.57", "description": "占道",
            "client_request_id": "same-key-1"}
    first = http.post("/open311/v2/requests.json", data={**form, "api_key": world.tokens["client_a"]}, headers=ANONYMOUS)
    other = http.post("/open311/v2/requests.json", data={**form, "api_key": world.tokens["client_b"]}, headers=ANONYMOUS)
    again = http.post("/open311/v2/requests.json", data={**form, "api_key": world.tokens["client_a"]}, headers=ANONYMOUS)
    assert first.status_code == other.status_code == again.status_code == 200, (first.text, other.text)
    a, b, a2 = (r.json()[0]["service_request_id"] for r in (first, other, again))
    assert a2 == a and b != a
    # the same through the JSON API with two operators of one township
    second = account_token(world.db_url, "op_xindun_2", "operator", "620702100")
    one = report(http, world, "op_zhangye_xindun", 102.58, 38.58, client_request_id="k-77")
    two = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 102.58, "lat": 38.58, "client_request_id": "k-77"},
                    headers=bearer(second))
    assert two.status_code == 201 and two.json()["id"] != one["id"]
    looked_up = http.get("/api/v1/cases", params={"client_request_id": "k-77"}, headers=bearer(second)).json()
    assert [c["id"] for c in looked_up] == [two.json()["id"]]


def test_an_open311_client_reads_only_its_own_reports_and_a_bad_key_is_refused_in_georeport_form(world, http):
    form = {"service_code": "street_order", "lat": "38.59", "long": "102.59", "description": "井盖缺失 张三 13800000000"}
    mine = http.post("/open311/v2/requests.json", data={**form, "api_key": world.tokens["client_a"]}, headers=ANONYMOUS)
    sid = mine.json()[0]["service_request_id"]
    own = http.get(f"/open311/v2/requests/{sid}.json", params={"api_key": world.tokens["client_a"]}, headers=ANONYMOUS)
    assert own.status_code == 200 and own.json()[0]["description"] == form["description"]
    other = http.get(f"/open311/v2/requests/{sid}.json", params={"api_key": world.tokens["client_b"]}, headers=ANONYMOUS)
    assert other.status_code == 404 and other.json()[0]["code"] == 404
    listed = http.get("/open311/v2/requests.json", params={"api_key": world.tokens["client_b"]}, headers=ANONYMOUS).json()
    assert sid not in {r["service_request_id"] for r in listed}
    before = counts(world)
    bad = http.post("/open311/v2/requests.json", data={**form, "api_key": "gwt_wrong"}, headers=ANONYMOUS)
    assert bad.status_code == 403 and bad.json()[0]["code"] == 403 and "api_key" in bad.json()[0]["description"]
    none = http.post("/open311/v2/requests.json", data=form, headers=ANONYMOUS)
    assert none.status_code == 401 and none.json()[0]["code"] == 401
    planner = http.post("/open311/v2/requests.json", data={**form, "api_key": world.tokens["planner"]}, headers=ANONYMOUS)
    assert planner.status_code == 403
    assert counts(world) == before


def test_free_text_is_masked_for_roles_without_the_right_in_the_api_and_open311(world, http):
    case = report(http, world, "op_zhangye_xindun", 102.6, 38.6, description="王二与李四因宅基地争执，电话 13912345678",
                  address="新墩镇北街 8 号")
    path = f"/api/v1/cases/{case['id']}"
    full = http.get(path, headers=as_(world, "op_zhangye_xindun")).json()
    assert "13912345678" in full["description"] and full["address"] == "新墩镇北街 8 号"
    for who in ("planner", "wall", "worker"):
        seen = http.get(path, headers=as_(world, who))
        if seen.status_code == 404:            # out of the role's scope altogether
            continue
        body = seen.json()
        assert "13912345678" not in seen.text and body["description"] == "***" and body["personal_data_masked"] is True, who
    listed = http.get("/api/v1/cases", params={"limit": 5000}, headers=as_(world, "planner")).text
    assert "13912345678" not in listed and "宅基地" not in listed
    o311 = http.get(f"/open311/v2/requests/{case['id']}.json", headers=as_(world, "wall")).json()
    assert "13912345678" not in str(o311)


def test_opening_peoples_details_is_audited_and_refused_to_roles_without_the_right(world, http):
    with world.connect() as conn:
        case_id = conn.execute(
            """UPDATE cases SET reporter_name = '赵六', reporter_phone = '13700001111',
                      parties = '[{"name": "钱七", "id_number": "620702199001011234"}]'
                WHERE id = (SELECT max(id) FROM cases WHERE township_code = '620702100') RETURNING id""").fetchone()["id"]
    before = counts(world)["personal_data_access"]
    for who in ("planner", "wall", "worker", "client_a"):
        r = http.get(f"/api/v1/cases/{case_id}/parties", headers=as_(world, who))
        assert r.status_code in (403, 404), f"{who}: {r.status_code}"
        assert "13700001111" not in r.text
    assert counts(world)["personal_data_access"] == before
    r = http.get(f"/api/v1/cases/{case_id}/parties", headers=as_(world, "op_zhangye_xindun"))
    assert r.status_code == 200 and r.json()["reporter_phone"] == "13700001111" and r.json()["parties"][0]["name"] == "钱七"
    with world.connect() as conn:
        rows = conn.execute("SELECT username, case_id, what FROM personal_data_access ORDER BY id DESC LIMIT 1").fetchall()
    assert rows == [{"username": "op_xindun", "case_id": case_id, "what": "parties"}]
    # another township's operator: the case is not there for them (404), and nothing is audited
    r = http.get(f"/api/v1/cases/{case_id}/parties", headers=as_(world, "op_lanzhou_xindun"))
    assert r.status_code == 404
    assert counts(world)["personal_data_access"] == before + 1


def test_a_department_keeps_sight_of_a_case_dispatched_to_it_after_escalation(world, http):
    me = as_(world, "op_zhangye_xindun")
    case = report(http, world, "op_zhangye_xindun", 102.61, 38.61)
    dept = world.departments["water"]
    assert http.get(f"/api/v1/cases/{case['id']}", headers=as_(world, "department")).status_code == 404
    for action in ({"action": "accept"}, {"action": "dispatch", "department_id": dept}):
        assert http.post(f"/api/v1/cases/{case['id']}/actions", json=action, headers=me).status_code == 200
    assert http.get(f"/api/v1/cases/{case['id']}", headers=as_(world, "department")).status_code == 200
    r = http.post(f"/api/v1/cases/{case['id']}/actions", json={"action": "escalate", "note": "超出乡镇能力"}, headers=me)
    assert r.status_code == 200, r.text
    seen = http.get(f"/api/v1/cases/{case['id']}", headers=as_(world, "department"))
    assert seen.status_code == 200 and seen.json()["department_id"] is None


def test_case_tiles_are_rendered_and_cached_per_scope(world, http):
    theirs = report(http, world, "op_lanzhou_xindun", 101.25, 38.25)
    # the z12 tile holding the point, for each of two scopes, then again (served from the cache)
    n = 2 ** 12
    x = int((101.25 + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(38.25))) / math.pi) / 2 * n)
    path = f"/tiles/cases/12/{x}/{y}.pbf"
    lz = http.get(path, headers=as_(world, "op_lanzhou_xindun"))
    zy = http.get(path, headers=as_(world, "op_zhangye_xindun"))
    assert lz.status_code == zy.status_code == 200
    assert theirs["ref"].encode() in lz.content and theirs["ref"].encode() not in zy.content
    assert lz.headers["etag"] != zy.headers["etag"] and "private" in lz.headers["cache-control"]
    zy_again = http.get(path, params={"v": zy.headers["x-data-version"]}, headers=as_(world, "op_zhangye_xindun"))
    assert theirs["ref"].encode() not in zy_again.content


def test_a_signed_out_browser_is_sent_to_login_and_the_wall_opens_with_a_kiosk_token(world, http):
    r = http.get("/region/620702", params={"lang": "zh"}, headers=ANONYMOUS)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/region/620702")
    kiosk = http.get("/wall", params={"kiosk": world.tokens["wall"]}, headers=ANONYMOUS)
    assert kiosk.status_code == 200
    cookie = kiosk.headers["set-cookie"]
    assert cookie.startswith("gridwatch_kiosk=") and "HttpOnly" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    later = http.get("/wall", headers={**ANONYMOUS, "Cookie": f"gridwatch_kiosk={value}"})
    assert later.status_code == 200
    # an operator's token is not a kiosk token; nor is a made-up one
    for token in (world.tokens["op_zhangye_xindun"], "gwt_nothing"):
        r = http.get("/wall", params={"kiosk": token}, headers=ANONYMOUS)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # the kiosk cookie is read-only: a write with it is refused
    r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 102.5, "lat": 38.5},
                  headers={**ANONYMOUS, "Cookie": f"gridwatch_kiosk={value}", "Origin": world.url})
    assert r.status_code == 403


def test_mediations_and_acknowledgements_keep_their_history_attributed_to_the_signed_in_user(world, http):
    me = as_(world, "op_zhangye_xindun")
    case = report(http, world, "op_zhangye_xindun", 102.62, 38.62)
    for action in ({"action": "accept"}, {"action": "mediate", "kind": "people", "mediator": "人民调解员 孙八"},
                   {"action": "mediation_result", "outcome": "agreed", "agreement": "赔偿 500 元"}):
        r = http.post(f"/api/v1/cases/{case['id']}/actions", json=action, headers=me)
        assert r.status_code == 200, r.text
    with world.connect() as conn:
        user_id = conn.execute("SELECT id FROM app_user WHERE username = 'op_xindun'").fetchone()["id"]
        history = conn.execute("SELECT changed_by, old->>'outcome' AS outcome FROM mediation_history WHERE case_id = %s",
                               (case["id"],)).fetchall()
    assert history == [{"changed_by": user_id, "outcome": "ongoing"}]
    # the planner sees neither the mediator nor the agreement (masked), the operator both
    planner = http.get(f"/api/v1/cases/{case['id']}", headers=as_(world, "planner")).json()
    assert "孙八" not in str(planner) and "500" not in str(planner)
    operator = http.get(f"/api/v1/cases/{case['id']}", headers=me).json()
    assert operator["mediations"][0]["agreement"] == "赔偿 500 元"
    # and the app role cannot rewrite the history or the trail
    with psycopg.connect(app_url_for(world.db_url)) as conn:
        for statement in ("UPDATE mediation_history SET old = '{}'", "DELETE FROM case_event",
                          "UPDATE case_event SET actor = 'x'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
