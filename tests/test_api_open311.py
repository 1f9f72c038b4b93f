"""The Open311 GeoReport v2 façade over real HTTP: services, requests in and out, the state mapping."""

from __future__ import annotations

import httpx
import pytest

from tests.apiserver import ApiWorld


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster)
    yield w
    w.close()


@pytest.fixture
def http(world):
    with httpx.Client(base_url=world.url, timeout=30) as client:
        yield client


def test_services_list_our_categories_and_each_has_a_definition(http):
    services = http.get("/open311/v2/services.json").json()
    by_code = {s["service_code"]: s for s in services}
    assert by_code["pollution"]["service_name"] == "环境污染" and by_code["pollution"]["group"] == "矛盾纠纷"
    assert by_code["street_order"]["group"] == "事件" and by_code["street_order"]["metadata"] is False
    assert http.get("/open311/v2/services/pollution.json").json() == {"service_code": "pollution", "attributes": []}
    missing = http.get("/open311/v2/services/nope.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404 and "nope" in missing.json()[0]["description"]


def test_a_form_encoded_request_becomes_a_case_and_reads_back_in_open311_terms(world, http):
    r = http.post("/open311/v2/requests.json", data={
        "service_code": "street_order", "lat": "38.55", "long": "102.55", "description": "占道经营堵塞消防通道",
        "first_name": "李", "last_name": "明", "phone": "13800000000", "address_string": "新墩镇南街"})
    assert r.status_code == 200, r.text
    (ack,) = r.json()
    sid = ack["service_request_id"]
    assert "GW" in ack["service_notice"]
    (req,) = http.get(f"/open311/v2/requests/{sid}.json").json()
    assert req["status"] == "open" and req["service_code"] == "street_order" and req["service_name"] == "街面秩序"
    assert req["lat"] == pytest.approx(38.55) and req["long"] == pytest.approx(102.55)
    assert req["address"] == "新墩镇南街" and req["expected_datetime"] is None and req["agency_responsible"] is None
    with world.connect() as conn:
        row = conn.execute("SELECT channel, reporter_name FROM cases WHERE id = %s", (int(sid),)).fetchone()
    assert row == {"channel": "open311", "reporter_name": "李 明"}
    # dispatched: the deadline becomes expected_datetime and the department agency_responsible
    dept = world.departments["justice"]
    http.post(f"/api/v1/cases/{sid}/actions", json={"action": "accept", "actor": "中心"})
    http.post(f"/api/v1/cases/{sid}/actions", json={"action": "dispatch", "actor": "中心", "department_id": dept})
    (req,) = http.get(f"/open311/v2/requests/{sid}.json").json()
    assert req["agency_responsible"] == "新墩镇司法所" and req["expected_datetime"] is not None
    assert req["status"] == "open"
    # rejected counts as closed
    other = http.post("/open311/v2/requests.json", json={"service_code": "advertising", "lat": 38.56, "long": 102.56}).json()
    oid = other[0]["service_request_id"]
    http.post(f"/api/v1/cases/{oid}/actions", json={"action": "reject", "actor": "中心", "note": "重复"})
    closed = http.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    opened = http.get("/open311/v2/requests.json", params={"status": "open"}).json()
    assert oid in [c["service_request_id"] for c in closed] and oid not in [c["service_request_id"] for c in opened]
    assert sid in [c["service_request_id"] for c in opened]
    both = http.get("/open311/v2/requests.json", params={"service_request_id": f"{sid},{oid}"}).json()
    assert {c["service_request_id"] for c in both} == {sid, oid}


def test_open311_retries_with_an_idempotency_key_create_one_case(world, http):
    form = {"service_code": "neighbour", "lat": "38.6", "long": "102.6"}
    a = http.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": "o311-1"}).json()
    before = world.count("cases")
    b = http.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": "o311-1"}).json()
    assert a[0]["service_request_id"] == b[0]["service_request_id"] and world.count("cases") == before


def test_open311_refusals_use_the_spec_error_shape_and_write_nothing(world, http):
    before = world.count("cases")
    cases = [
        ({"service_code": "nope", "lat": "38.5", "long": "102.5"}, 422, "unknown"),
        ({"service_code": "neighbour", "lat": "39.9", "long": "116.4"}, 422, "outside Gansu"),
        ({"service_code": "neighbour", "lat": "102.5", "long": "38.5"}, 422, "swapped"),
        ({"service_code": "neighbour", "lat": "38.5"}, 422, "long is required"),
    ]
    for form, status, text in cases:
        r = http.post("/open311/v2/requests.json", data=form)
        assert r.status_code == status, (form, r.text)
        (err,) = r.json()
        assert err["code"] == status and text in err["description"] and "fix:" in err["description"]
    bad_json = http.post("/open311/v2/requests.json", content=b'{"service_code": ', headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()[0]["description"]
    assert http.get("/open311/v2/requests/424242.json").status_code == 404
    assert http.get("/open311/v2/requests.json", params={"status": "pending"}).status_code == 422
    assert world.count("cases") == before
