"""The coverage, scenario, centre-registry and export endpoints over real HTTP against a real server."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from gridwatch import coverage
from tests.conftest import account_token
from tests.factories import make_centre, make_department
from tests.test_coverage import COUNTY_REACH, NORTH, SOUTH, T1, C1, TOWN_REACH


@pytest.fixture
def serve(serve_in_process):
    """The API needs no server process of its own here: the app is served from this process."""
    return serve_in_process


@pytest.fixture
def api(conn, tiny, db_url, serve):
    """A served tiny hierarchy: T1 (township 620102100), C1 (county 620102) and 6201 at C1, reach 30 / 80 km; 6207 established."""
    make_centre(conn, "620102100", "township", *T1)
    make_centre(conn, "620102", "county", *C1)
    make_centre(conn, "6201", "prefecture", *C1)          # same place as C1: same reach
    make_centre(conn, "6207", "prefecture", 103.0, 36.0, status="established")
    coverage.recompute(conn, township_m=30_000, county_m=80_000)
    server = serve(db_url)
    # who may write (issue 11): what-if scenarios are the planner's, the centre registry the admin's
    tokens = {"/api/v1/scenarios": account_token(db_url, "planner", "planner"),
              "/api/v1/centres": account_token(db_url, "admin", "admin")}

    def sign(request: httpx.Request) -> None:
        for prefix, token in tokens.items():
            if request.method != "GET" and request.url.path.startswith(prefix):
                request.headers["Authorization"] = f"Bearer {token}"

    with httpx.Client(base_url=server.url, timeout=30, event_hooks={"request": [sign]}) as client:
        yield client


def test_coverage_of_a_county_answers_institutional_and_spatial_figures_as_json(api):
    r = api.get("/api/v1/coverage/620102")
    assert r.status_code == 200
    body = r.json()
    assert (body["code"], body["name"], body["level"]) == ("620102", "城关区", "county")
    assert body["thresholds"] == {"township_m": 30000.0, "county_m": 80000.0}
    assert [(i["level"], i["children"], i["with_entity"]) for i in body["institutional"]] == [("township", 2, 1)]
    assert body["institutional"][0]["missing"] == [{"code": "620102200", "name": "城关区乌江乡", "status": None}]
    assert (body["grids"], body["any"]["grids"]) == (8, 5)
    assert body["any"]["area_share"] == pytest.approx((TOWN_REACH + COUNTY_REACH) / (NORTH + SOUTH), rel=6e-3)
    assert body["gap_km2"] == pytest.approx(NORTH + SOUTH - TOWN_REACH - COUNTY_REACH, rel=3e-3)
    assert body["stored"]["township_m"] == 30000.0


def test_the_province_drills_from_the_prefecture_share_to_the_one_without_an_entity_centre(api):
    body = api.get("/api/v1/coverage/62").json()
    pref = next(i for i in body["institutional"] if i["level"] == "prefecture")
    assert (pref["with_entity"], pref["children"], pref["share_entity"]) == (1, 2, 0.5)
    assert pref["missing"] == [{"code": "6207", "name": "张掖市", "status": "established"}]


def test_other_reaches_are_computed_live_and_bad_ones_refused(api):
    body = api.get("/api/v1/coverage/620102", params={"township_km": 40}).json()
    assert body["recomputed_townships"] is None
    assert body["thresholds"]["township_m"] == 40000.0 and body["thresholds"]["county_m"] == 80000.0
    bad = api.get("/api/v1/coverage/620102", params={"township_km": -3})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "township_km"


def test_unknown_and_unusable_region_codes_get_404_and_422_naming_the_fix(api):
    missing = api.get("/api/v1/coverage/6299")
    assert missing.status_code == 404
    assert "region code '6299' is not in the database" in missing.json()["error"]["message"]
    grid = api.get("/api/v1/coverage/620102100200001")
    assert grid.status_code == 422 and "use its township 620102100" in grid.json()["error"]["message"]


def test_gaps_come_as_geojson_per_township(api):
    fc = api.get("/api/v1/coverage/620102/gaps").json()
    assert fc["type"] == "FeatureCollection"
    assert sorted(f["properties"]["township_code"] for f in fc["features"]) == ["620102100", "620102200"]
    assert sum(f["properties"]["gap_km2"] for f in fc["features"]) == pytest.approx(fc["properties"]["gap_km2"])
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in fc["features"])


def test_a_scenario_built_through_the_api_raises_coverage_only_when_asked_for_and_saving_writes_it(api):
    r = api.post("/api/v1/scenarios/北部补点/centres", json={"lon": 101.5, "lat": 37.5})
    assert r.status_code == 201
    assert r.json()["region_code"] == "620102100" and r.json()["scenario"] == "北部补点"
    assert api.get("/api/v1/scenarios").json()[0]["centres"] == 1
    real = api.get("/api/v1/coverage/620102").json()
    what_if = api.get("/api/v1/coverage/620102", params={"scenario": "北部补点"}).json()
    assert (real["any"]["grids"], what_if["any"]["grids"]) == (5, 6)
    assert real["gap_km2"] - what_if["gap_km2"] == pytest.approx(TOWN_REACH, rel=5e-3)
    assert what_if["recomputed_townships"] == 1
    assert len(api.get("/api/v1/centres").json()) == 4                      # the registry did not change

    saved = api.post("/api/v1/scenarios/北部补点/save", json={"status": "entity"})
    assert saved.status_code == 200 and saved.json()["saved"][0]["status"] == "entity"
    assert api.get("/api/v1/coverage/620102").json()["any"]["grids"] == 6
    assert api.get("/api/v1/scenarios").json() == []


def test_a_scenario_can_be_replaced_whole_and_a_point_outside_gansu_refuses_all_of_it(api):
    ok = api.put("/api/v1/scenarios/a", json={"centres": [{"lon": 101.5, "lat": 37.5}, {"lon": 103.0, "lat": 37.0, "level": "county"}]})
    assert ok.status_code == 200 and [c["level"] for c in ok.json()["centres"]] == ["township", "county"]
    bad = api.put("/api/v1/scenarios/a", json={"centres": [{"lon": 101.5, "lat": 38.5}, {"lon": 37.0, "lat": 103.0}]})
    assert bad.status_code == 422
    assert "centre 2" in bad.json()["error"]["message"] and "did you swap longitude and latitude" in bad.json()["error"]["message"]
    assert len(api.get("/api/v1/scenarios/a").json()["centres"]) == 2      # unchanged
    assert api.delete("/api/v1/scenarios/a").json()["deleted"] == 2
    assert api.get("/api/v1/scenarios/a").status_code == 404


def test_k_best_sites_come_with_the_coverage_before_and_after(api):
    body = api.get("/api/v1/coverage/620102/sites", params={"k": 2}).json()
    assert [s["grid_code"] for s in body["sites"]] == ["620102100200002", "620102100201002"]
    assert body["before"]["any"]["grids"] == 5 and body["after"]["any"]["grids"] == 7
    assert body["after"]["gap_km2"] < body["before"]["gap_km2"]


def test_the_registry_is_listed_added_to_changed_and_refreshes_coverage(api, conn):
    make_department(conn, "620702", "justice", "甘州区司法局")
    pref = api.get("/api/v1/centres", params={"region": "6207"}).json()
    assert [c["level"] for c in pref] == ["prefecture"]
    assert api.patch(f"/api/v1/centres/{pref[0]['id']}", json={"status": "planned"}).status_code == 200
    assert api.get("/api/v1/coverage/620702").json()["county"]["grids"] == 0   # 6207's centre no longer serves
    assert {c["level"] for c in api.get("/api/v1/centres", params={"region": "6201"}).json()} == {"prefecture", "county", "township"}
    created = api.post("/api/v1/centres", json={
        "name": "甘州区综治中心", "level": "county", "region_code": "620702", "lon": 103.0, "lat": 36.0,
        "status": "entity", "staff": 14, "departments": ["甘州区司法局"]})
    assert created.status_code == 201, created.text
    c = created.json()
    assert (c["region_name"], c["staff"], [d["name"] for d in c["departments"]]) == ("甘州区", 14, ["甘州区司法局"])
    # with 80 km county reach the four south grids of 620702 are now within reach
    assert api.get("/api/v1/coverage/620702").json()["county"]["grids"] == 4

    dup = api.post("/api/v1/centres", json={"name": "甘州区综治中心", "level": "county", "region_code": "620702", "lon": 103.0, "lat": 36.0})
    assert dup.status_code == 409 and "already has a centre of that name" in dup.json()["error"]["message"]

    moved = api.patch(f"/api/v1/centres/{c['id']}", json={"lat": 38.0, "status": "established"})
    assert moved.status_code == 200 and moved.json()["lat"] == 38.0 and moved.json()["status"] == "established"
    after = api.get("/api/v1/coverage/620702").json()["county"]
    assert after["grids"] == 4 and after["area_km2"] > 0                    # now the north grids are the ones reached
    grids = {r["grid_code"]: r["covered_county"] for r in conn.execute("SELECT grid_code, covered_county FROM grid_coverage WHERE grid_code LIKE '620702%'").fetchall()}
    assert sorted(g for g, v in grids.items() if v) == ["620702100200001", "620702100200002", "620702100201001", "620702100201002"]

    planned = api.patch(f"/api/v1/centres/{c['id']}", json={"status": "planned"})
    assert planned.status_code == 200
    assert api.get("/api/v1/coverage/620702").json()["county"]["grids"] == 0    # a planned centre serves nobody yet
    assert api.delete(f"/api/v1/centres/{c['id']}").status_code == 200
    assert api.get(f"/api/v1/centres/{c['id']}").status_code == 404


def test_bad_centres_are_refused_naming_the_field_and_nothing_is_written(api):
    before = api.get("/api/v1/centres").json()
    wrong_level = api.post("/api/v1/centres", json={"name": "x", "level": "township", "region_code": "620702", "lon": 103.0, "lat": 36.0})
    assert wrong_level.status_code == 422
    assert "level 'township' does not match region 620702 (甘州区), which is a county" in wrong_level.json()["error"]["message"]
    swapped = api.post("/api/v1/centres", json={"name": "x", "level": "county", "region_code": "620702", "lon": 36.0, "lat": 103.0})
    assert "did you swap lat/long?" in swapped.json()["error"]["message"]
    bad_status = api.post("/api/v1/centres", json={"name": "x", "level": "county", "region_code": "620702", "lon": 103.0, "lat": 36.0, "status": "built"})
    assert bad_status.status_code == 422 and bad_status.json()["error"]["field"] == "status"
    first = before[0]
    far = api.patch(f"/api/v1/centres/{first['id']}", json={"lon": 103.5})
    assert far.status_code == 422 and "km outside its region" in far.json()["error"]["message"]
    assert api.get("/api/v1/centres").json() == before


def test_the_html_export_is_self_contained_with_centres_reach_and_gaps(api):
    r = api.get("/export/coverage/620102.html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert r.headers["content-disposition"] == 'attachment; filename="coverage-620102.html"'
    assert "L.map(" in html and "L.control.layers(" in html
    assert html.count("L.circle(") == 3                       # the reach of T1, C1 and 6201 (6207 is not in 620102)
    assert "城关区 (620102) 综治中心覆盖 coverage" in html         # the legend with the figures
    assert "\\u76f2\\u533a gaps" in html                     # the layer name 盲区 gaps, JSON-escaped in the script
    for host in ("cdn.jsdelivr.net", "code.jquery.com", "maxcdn.bootstrapcdn.com", "unpkg.com"):
        assert host not in html
    assert "城关区综治中心" in html or "620102综治中心" in html


def test_the_html_export_opens_offline_in_a_browser_and_draws_the_layers(api, browser_page, tmp_path):
    path = tmp_path / "coverage.html"
    path.write_bytes(api.get("/export/coverage/620102.html").content)
    browser_page.goto(path.as_uri())
    browser_page.wait_for_selector(".leaflet-interactive")
    assert browser_page.locator("path.leaflet-interactive").count() >= 4     # outline, gaps, reach circles, markers
    assert "盲区 gaps" in browser_page.inner_text(".leaflet-control-layers")
    assert not [u for u in browser_page.requests if u.startswith("http")]


def test_the_geopackage_export_holds_the_gaps_and_the_centres(api, tmp_path):
    r = api.get("/export/coverage/620102.gpkg")
    assert r.status_code == 200
    path = tmp_path / "gaps.gpkg"
    path.write_bytes(r.content)
    import geopandas as gpd
    gaps = gpd.read_file(path, layer="gaps")
    assert sorted(gaps["township_code"]) == ["620102100", "620102200"]
    assert gaps.crs.to_epsg() == 4326
    total = gaps.to_crs(gaps.estimate_utm_crs()).area.sum() / 1e6
    assert total == pytest.approx(NORTH + SOUTH - TOWN_REACH - COUNTY_REACH, rel=1e-2)
    centres = gpd.read_file(path, layer="centres")
    assert sorted(centres["level"]) == ["county", "prefecture", "township"]   # 6201's centre reaches into 620102
    with sqlite3.connect(path) as db:
        assert {r[0] for r in db.execute("SELECT table_name FROM gpkg_contents")} == {"gaps", "centres"}
