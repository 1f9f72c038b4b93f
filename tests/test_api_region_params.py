"""?region= on the case and hazard queries goes through the one parser: a GB/T 2260 six-digit
spelling filters by the region it names (620100 is 兰州市, 6201), a malformed code is refused."""

from __future__ import annotations

from tests.factories import make_department
from tests.test_api_cases import http, world  # noqa: F401  (the served tiny hierarchy, as in the case API tests)


def test_a_six_digit_region_parameter_filters_cases_and_hazards_by_the_region_it_names(world, http):
    made = http.post("/api/v1/cases", json={"category": "consumer", "lon": 100.7, "lat": 35.6}).json()
    assert (made["prefecture_code"], made["county_code"]) == ("6201", "620102")
    for spelling in ("6201", "620100", "620000"):
        found = http.get("/api/v1/cases", params={"region": spelling, "category": "consumer"})
        assert found.status_code == 200 and made["id"] in [c["id"] for c in found.json()], spelling
    elsewhere = http.get("/api/v1/cases", params={"region": "620700", "category": "consumer"}).json()
    assert made["id"] not in [c["id"] for c in elsewhere]
    assert http.get("/api/v1/hazards", params={"region": "620100"}).status_code == 200
    assert http.get("/api/v1/cases", params={"region": "62x"}).status_code == 422
    assert http.get("/api/v1/hazards", params={"region": "62x"}).status_code == 422


def test_a_six_digit_region_parameter_lists_the_departments_of_the_region_it_names(world, http):
    with world.connect() as conn:
        made = make_department(conn, "6201", "justice", name="兰州市司法局（区划参数）")
        conn.commit()
    listed = http.get("/api/v1/departments", params={"region": "620100"}).json()
    assert made in [d["id"] for d in listed] and {d["region_code"] for d in listed} == {"6201"}
