"""Hardening against abuse (issue 11): Content-Type, Origin, body limit, strict JSON, security headers,
export CSP, the heavy-work queue and per-user rate — over real HTTP against the real app and PostGIS.

Write endpoints are enumerated from the app's OpenAPI spec (plus Dash's callback route), so a new
route is covered without editing this file.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading

import httpx
import psycopg
import pytest

from gridwatch import auth
from tests.apiserver import ApiWorld
from tests.conftest import AUTH, wait_until

LIMIT = 60_000
ENV = {"GRIDWATCH_MAX_BODY_BYTES": str(LIMIT), "GRIDWATCH_HEAVY_WORKERS": "2", "GRIDWATCH_HEAVY_QUEUE": "4",
       "GRIDWATCH_HEAVY_PER_MINUTE": "6", "GRIDWATCH_HEAVY_BURST": "12"}
# Tables a refused write could have touched: every count must be the same after the refusals.
WRITE_TABLES = ("cases", "case_event", "mediation", "hazard", "hazard_event", "checkin", "centre", "alert",
                "alert_silence", "attachment", "case_assignment", "notification_read")


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster, env=ENV)
    yield w
    w.close()


@pytest.fixture
def http(world):
    with httpx.Client(base_url=world.url, timeout=20) as client:
        yield client


def counts(world) -> dict:
    out = {}
    with world.connect() as conn:
        for table in WRITE_TABLES:
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (f"public.{table}",)).fetchone()["ok"]:
                out[table] = conn.execute(psycopg.sql.SQL("SELECT count(*) AS n FROM {}").format(psycopg.sql.Identifier(table))).fetchone()["n"]
    return out


def make_user(world, username: str, role: str = "operator", region: str = "62") -> tuple[int, str]:
    """A user and a fresh bearer token of theirs: (user id, token)."""
    token = "gwt_" + secrets.token_urlsafe(24)
    with world.connect() as conn:
        uid = conn.execute("""INSERT INTO app_user (username, display_name, role, region_code) VALUES (%s, %s, %s, %s)
                              ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role RETURNING id""",
                           (username, username, role, region)).fetchone()["id"]
        conn.execute("INSERT INTO api_token (user_id, token_sha256, name) VALUES (%s, %s, 'hardening test')",
                     (uid, hashlib.sha256(token.encode()).digest()))
    return uid, token


def session_cookie(world, uid: int) -> str:
    with world.connect() as conn:
        return auth.create_session(conn, uid)


def write_routes(http) -> list[tuple[str, str, bool]]:
    """(method, concrete path, reads JSON) of every write route of the OpenAPI spec."""
    spec = http.get("/openapi.json").json()
    routes = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method.upper() not in ("POST", "PUT", "PATCH", "DELETE"):
                continue
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            content = (op.get("requestBody") or {}).get("content", {})
            raw = path.endswith("/attachments")          # the file's bytes, of its own type
            routes.append((method.upper(), concrete, not raw and ("application/json" in content or not content)))
    assert len(routes) >= 15, routes
    return routes


def is_error_body(r: httpx.Response) -> bool:
    body = r.json()
    if isinstance(body, list):          # Open311's GeoReport error shape
        return body and body[0]["code"] == r.status_code and body[0]["description"]
    return bool(body["error"]["code"] and body["error"]["message"] and body["error"].get("fix"))


# -- Content-Type -------------------------------------------------------------------------------

def test_every_json_write_route_and_dash_callbacks_refuse_a_body_not_labelled_json_with_415(world, http):
    before = counts(world)
    routes = [(m, p) for m, p, is_json in write_routes(http) if is_json and not p.startswith("/open311/")]
    routes.append(("POST", "/_dash-update-component"))
    for method, path in routes:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = http.request(method, path, content=b'{"a": 1}', headers={"content-type": ctype})
            assert r.status_code == 415, (method, path, ctype, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unsupported_media_type" and "application/json" in r.json()["error"]["fix"]
    assert counts(world) == before


def test_an_unlabelled_body_with_the_session_cookie_is_refused_with_415(world, http):
    uid, _ = make_user(world, "hard_cookie_415")
    sid = session_cookie(world, uid)
    r = httpx.post(world.url + "/api/v1/cases", content=b'{"category": "neighbour", "lon": 102.5, "lat": 38.5}',
                   headers={"Authorization": "none", "Cookie": f"gridwatch_session={sid}", "Origin": world.url})
    assert r.status_code == 415 and r.json()["error"]["field"] == "content-type"


# -- Origin -------------------------------------------------------------------------------------

def test_a_cookie_authenticated_write_from_another_origin_is_refused_with_403_and_a_bearer_write_is_not(world, http):
    uid, token = make_user(world, "hard_origin")
    sid = session_cookie(world, uid)
    before = counts(world)
    case = {"category": "neighbour", "lon": 102.5, "lat": 38.5, "title": "跨站"}
    cookie = {"Authorization": "none", "Cookie": f"gridwatch_session={sid}"}
    for extra in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Referer": "https://evil.example/page"}, {}):
        r = httpx.post(world.url + "/api/v1/cases", json=case, headers={**cookie, **extra})
        assert r.status_code == 403, (extra, r.text)
        assert r.json()["error"]["code"] == "forbidden" and r.json()["error"]["field"] == "origin"
        r = httpx.post(world.url + "/_dash-update-component", json={"output": "x.children", "inputs": []},
                       headers={**cookie, **extra})
        assert r.status_code == 403 and r.json()["error"]["field"] == "origin", (extra, r.text)
    assert counts(world) == before
    # the server's own origin (by Origin or by Referer) passes this check
    r = httpx.post(world.url + "/api/v1/cases", json=case, headers={**cookie, "Origin": world.url})
    assert r.status_code == 201, r.text
    r = httpx.post(world.url + "/api/v1/cases", json=case, headers={**cookie, "Referer": world.url + "/region/62"})
    assert r.status_code == 201, r.text
    # a bearer token is exempt: no browser sends it on its own
    r = httpx.post(world.url + "/api/v1/cases", json=case, headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"})
    assert r.status_code == 201, r.text


def test_an_origin_listed_in_gridwatch_allowed_origins_may_send_cookie_writes(world, monkeypatch):
    uid, _ = make_user(world, "hard_allowed")
    sid = session_cookie(world, uid)
    monkeypatch.setenv("GRIDWATCH_ALLOWED_ORIGINS", "self, https://wall.example:8443")
    case = {"category": "neighbour", "lon": 102.5, "lat": 38.5}
    headers = {"Authorization": "none", "Cookie": f"gridwatch_session={sid}"}
    assert httpx.post(world.url + "/api/v1/cases", json=case, headers={**headers, "Origin": "https://wall.example:8443"}).status_code == 201
    assert httpx.post(world.url + "/api/v1/cases", json=case, headers={**headers, "Origin": "https://wall.example"}).status_code == 403


def test_a_login_form_posted_from_another_origin_is_refused(world):
    r = httpx.post(world.url + "/login", data={"username": "x", "password": "y"},
                   headers={"Authorization": "none", "Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["field"] == "origin"


# -- body limit ---------------------------------------------------------------------------------

def _chunks(total: int, size: int = 8192):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_a_body_over_the_limit_is_refused_with_413_on_every_route_even_without_content_length(world, http):
    before = counts(world)
    for method, path, _ in [*write_routes(http), ("POST", "/_dash-update-component", True), ("POST", "/login", False)]:
        if "/attachments" in path:
            continue        # attachments have their own, larger limit (checked below)
        r = httpx.request(method, world.url + path, content=_chunks(LIMIT + 20_000), timeout=20,
                          headers={"content-type": "application/json", **AUTH})
        assert "content-length" not in r.request.headers
        assert r.status_code == 413, (method, path, r.status_code, r.text[:200])
        assert is_error_body(r)
    assert counts(world) == before


def test_an_attachment_may_be_larger_than_the_json_limit_but_not_larger_than_its_own(world, http):
    from gridwatch import attachments

    r = http.post("/api/v1/cases/1/attachments", content=_chunks(attachments.MAX_BYTES + 10_000),
                  headers={"content-type": "image/png"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


# -- strict JSON: each kind on every write endpoint -------------------------------------------------

NASTY = {
    "nesting bomb": b'{"title": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "NaN": b'{"category": "neighbour", "lon": NaN, "lat": 38.5}',
    "Infinity": b'{"category": "neighbour", "lon": Infinity, "lat": 38.5}',
    "huge float": b'{"category": "neighbour", "lon": 1e999, "lat": 38.5}',
    "lone surrogate": b'{"category": "neighbour", "lon": 102.5, "lat": 38.5, "title": "\\ud800x"}',
    "NUL": b'{"category": "neighbour", "lon": 102.5, "lat": 38.5, "title": "a\\u0000b"}',
    "NUL in a key": b'{"category\\u0000": "neighbour"}',
    "huge integer": b'{"category": "neighbour", "lon": 102.5, "lat": 38.5, "id": ' + b"9" * 6000 + b"}",
    "beyond bigint": b'{"category": "neighbour", "lon": 102.5, "lat": 38.5, "grid_id": 99999999999999999999}',
    "not UTF-8": b'{"title": "\xff\xfe"}',
}


@pytest.mark.parametrize("kind", sorted(NASTY))
def test_each_kind_of_hostile_json_gets_a_4xx_with_the_usual_body_on_every_write_endpoint(world, http, kind):
    before = counts(world)
    routes = [(m, p) for m, p, is_json in write_routes(http) if is_json] + [("POST", "/_dash-update-component")]
    for method, path in routes:
        r = http.request(method, path, content=NASTY[kind], headers={"content-type": "application/json"})
        assert r.status_code == 400, (kind, method, path, r.status_code, r.text[:300])
        assert is_error_body(r), r.text
    assert counts(world) == before


def test_wrong_types_in_every_field_of_every_json_write_get_422_not_500(world, http):
    """Each property of each request schema, in turn, gets a value of the wrong type."""
    spec = http.get("/openapi.json").json()
    schemas = spec.get("components", {}).get("schemas", {})
    wrong = [{"x": 1}, [1, 2], "不是数字", 10 ** 18, -1.5, True, None]
    before = counts(world)
    tried = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            content = (op.get("requestBody") or {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {})
            ref = ref.get("$ref") or next((a.get("$ref") for a in ref.get("anyOf", []) if a.get("$ref")), None)
            if not ref:
                continue
            props = schemas[ref.rsplit("/", 1)[1]].get("properties", {})
            for name in props:
                for value in wrong:
                    r = http.request(method.upper(), re.sub(r"\{[^}]+\}", "1", path), json={name: value})
                    tried += 1
                    assert r.status_code < 500, (method, path, name, value, r.status_code, r.text[:300])
                    assert 400 <= r.status_code < 500 or r.status_code in (200, 201), (method, path, name, value, r.status_code)
    assert tried > 50
    assert counts(world) == before


def test_open311_fields_of_the_wrong_type_or_with_nul_get_the_georeport_error_shape(world, http):
    before = counts(world)
    for form in ({"service_code": "neighbour", "lat": "38.5", "long": "102.5", "description": "a\x00b"},
                 {"service_code": "neighbour\x00", "lat": "38.5", "long": "102.5"}):
        r = http.post("/open311/v2/requests.json", data=form)
        assert r.status_code == 400 and r.json()[0]["code"] == 400, r.text
    for body in ({"service_code": ["neighbour"], "lat": 38.5, "long": 102.5}, {"service_code": "neighbour", "lat": {"a": 1}, "long": 102.5},
                 {"service_code": "neighbour", "lat": 38.5, "long": 102.5, "description": 12},
                 {"service_code": "neighbour", "lat": 10 ** 30, "long": 102.5}):
        r = http.post("/open311/v2/requests.json", json=body)
        assert 400 <= r.status_code < 500, (body, r.text)
        assert isinstance(r.json(), list) and r.json()[0]["description"], r.text
    assert counts(world) == before


def test_a_nul_in_the_address_or_a_query_parameter_is_a_400_not_a_500(world, http):
    for url in ("/api/v1/cases?state=a%00b", "/api/v1/cases/1%00", "/regions/62%00", "/api/v1/coverage/62%00"):
        r = http.get(url)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_character", (url, r.text)


# -- headers and the export CSP --------------------------------------------------------------------

def test_every_response_carries_the_security_headers_and_only_the_wall_may_be_framed(world, http):
    for url in ("/healthz", "/api/v1/cases", "/login", "/regions", "/", "/api/v1/nothing-here"):
        r = http.get(url, follow_redirects=False)
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["referrer-policy"] == "same-origin", url
        assert "frame-ancestors 'self'" in r.headers.get("content-security-policy", ""), url
    r = http.get("/wall", follow_redirects=False)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors" not in r.headers.get("content-security-policy", "") and "x-frame-options" not in r.headers


def test_an_html_export_carries_a_hash_based_csp_in_its_header_and_in_the_file(world):
    # a user of its own: exports are heavy requests, and the module's other tests spend the test
    # operator's per-user bucket in whatever order the workers run them
    _, token = make_user(world, "hard_export")
    r = httpx.get(world.url + "/export/region/620702.html", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    (csp,) = [v for v in r.headers.get_list("content-security-policy") if "default-src" in v]
    script_src = re.search(r"script-src ([^;]+)", csp).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    hashes = re.findall(r"'sha256-([A-Za-z0-9+/=]+)'", script_src)
    assert len(hashes) >= 2                          # Leaflet and folium's own map script
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', r.text)
    assert meta and meta.group(1) == csp
    assert r.text.index(meta.group(0)) < r.text.index("<script")        # in force before any script
    assert int(r.headers["content-length"]) == len(r.content)


# -- the heavy queue and the per-user rate ----------------------------------------------------------

def test_nine_slow_coverage_requests_leave_healthz_and_a_normal_read_answering(world):
    """Coverage blocks on a lock held by the test (as slow as we like); with two heavy slots and a
    queue of four, nine requests take two connections, four wait, three are told 503 at once."""
    _, token = make_user(world, "hard_heavy")
    headers = {"Authorization": f"Bearer {token}"}
    results: list[httpx.Response] = []
    lock = psycopg.connect(world.db_url)
    try:
        lock.execute("LOCK TABLE centre IN ACCESS EXCLUSIVE MODE")

        def ask():
            results.append(httpx.get(world.url + "/api/v1/coverage/620702", headers=headers, timeout=60))

        threads = [threading.Thread(target=ask) for _ in range(9)]
        for t in threads:
            t.start()
        with world.connect() as watch:
            def blocked():
                return watch.execute("""SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()
                                        AND wait_event_type = 'Lock' AND usename = 'gridwatch_app'""").fetchone()["n"]
            wait_until(lambda: blocked() == 2 and len(results) == 3, timeout=30)
            assert all(r.status_code == 503 and r.headers["retry-after"] and r.json()["error"]["code"] == "busy" for r in results)
            # meanwhile the server answers everything else
            assert httpx.get(world.url + "/healthz", timeout=10).status_code == 200
            assert httpx.get(world.url + "/api/v1/cases", timeout=10, headers=AUTH).status_code == 200
            assert blocked() == 2                    # never more than the two slots held connections
        lock.rollback()
        for t in threads:
            t.join(timeout=60)
    finally:
        lock.close()
    assert sorted(r.status_code for r in results) == [200] * 6 + [503] * 3


def test_a_user_over_the_heavy_rate_gets_429_with_retry_after_and_others_are_not_affected(world):
    _, token = make_user(world, "hard_rate")
    _, other = make_user(world, "hard_rate_other")
    statuses = []
    for _ in range(14):
        r = httpx.get(world.url + "/api/v1/coverage/620702/gaps", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "rate_limited"
            break
    assert statuses[:12] == [200] * 12 and statuses[-1] == 429, statuses
    assert httpx.get(world.url + "/api/v1/coverage/620702/gaps", headers={"Authorization": f"Bearer {other}"}, timeout=60).status_code == 200
