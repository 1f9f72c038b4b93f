"""Coverage paths parse region codes through the one parser: GB/T 2260 six-digit spellings answer
with the canonical code, an unknown or malformed code gets the usual error body."""

from __future__ import annotations

from tests.test_api_coverage import api, serve  # noqa: F401  (the served tiny hierarchy with its centres)


def test_a_six_digit_gb_t_2260_code_answers_for_its_region_with_the_canonical_code(api):
    body = api.get("/api/v1/coverage/620000").json()
    assert (body["code"], body["name"], body["level"]) == ("62", "甘肃省", "province")
    assert body["institutional"] == api.get("/api/v1/coverage/62").json()["institutional"]
    assert api.get("/api/v1/coverage/620100/gaps").json()["properties"]["code"] == "6201"
    centres = api.get("/api/v1/centres", params={"region": "620100"}).json()
    assert sorted(c["region_code"] for c in centres) == ["6201", "620102", "620102100"]
    export = api.get("/export/coverage/620100.html")
    assert export.status_code == 200 and 'filename="coverage-6201.html"' in export.headers["content-disposition"]


def test_an_unknown_or_malformed_code_gets_the_usual_error_body_on_every_coverage_path(api):
    for path in ("/api/v1/coverage/629900", "/api/v1/coverage/620799/gaps", "/export/coverage/629900.gpkg"):
        r = api.get(path)
        assert r.status_code == 404, path
        error = r.json()["error"]
        assert error["code"] == "not_found" and error["field"] == "code", path
        assert error["message"] and error["message_zh"] and error["fix"], path
    for path in ("/api/v1/coverage/62x", "/export/coverage/62x.html", "/api/v1/centres?region=62x"):
        r = api.get(path)
        assert r.status_code == 400, path
        assert r.json()["error"]["field"] == "code" and r.json()["error"]["value"] == "62x", path
