"""Coverage on the constructed tiny hierarchy (exact rectangles), against answers worked out by hand.

The tiny county 620102 (城关区) is box(100, 35, 102, 39): its north township 620102100 is
box(100, 37, 102, 39), its south township 620102200 is box(100, 35, 102, 37); each township has
four grids of 1° × 1° whose label points are their centres (x.5, y.5).

Hand answers used below (sphere of radius R = 6371.0088 km; PostGIS measures on the WGS84
ellipsoid, within 0.1 % here):
- area of a lon/lat box: R² · Δλ · (sin φ2 − sin φ1);
- a reach circle is ST_Buffer on geography with 8 segments a quarter: a 32-gon of area
  16 · r² · sin(π/16) (0.64 % under π r²);
- grid distances: great-circle distance between label points.
"""

from __future__ import annotations

import math

import pytest
from shapely.geometry import shape

from geo.coverage import haversine_m
from gridwatch import coverage
from gridwatch.coverage import CoverageError, Hypothetical, Thresholds
from tests.factories import make_centre

R_KM = 6371.0088
TH = Thresholds(township_m=30_000, county_m=80_000)
T1 = (100.5, 38.5)    # township centre of 620102100 at the label point of grid 620102100200001
C1 = (101.0, 36.0)    # county centre of 620102, in the middle of the south township


def box_km2(x0, y0, x1, y1):
    return R_KM ** 2 * math.radians(x1 - x0) * (math.sin(math.radians(y1)) - math.sin(math.radians(y0)))


def polygon32_km2(r_km):
    return 16 * r_km ** 2 * math.sin(math.pi / 16)


NORTH = box_km2(100, 37, 102, 39)
SOUTH = box_km2(100, 35, 102, 37)
TOWN_REACH = polygon32_km2(30)
COUNTY_REACH = polygon32_km2(80)
POP = {"620102100200001": 1000, "620102100200002": 500, "620102100201001": 300, "620102100201002": 100,
       "620102200200001": 200, "620102200200002": 200, "620102200201001": 200, "620102200201002": 200}


@pytest.fixture
def placed(conn, tiny):
    """Tiny hierarchy with one township centre (T1) and one county centre (C1), coverage computed."""
    ids = {
        "t1": make_centre(conn, "620102100", "township", *T1),
        "c1": make_centre(conn, "620102", "county", *C1),
    }
    for code, pop in POP.items():
        conn.execute("UPDATE region SET population = %s WHERE code = %s", (pop, code))
    coverage.recompute(conn, township_m=TH.township_m, county_m=TH.county_m)
    return ids


def test_institutional_coverage_counts_children_with_a_centre_and_an_entity_centre_and_names_the_rest(conn, tiny):
    make_centre(conn, "62", "province", 101.0, 38.0)
    make_centre(conn, "6201", "prefecture", 101.0, 38.0)
    make_centre(conn, "6207", "prefecture", 103.0, 38.0, status="established")
    make_centre(conn, "620102", "county", 101.0, 38.0)
    make_centre(conn, "620102100", "township", 101.0, 38.0)
    make_centre(conn, "620102200", "township", 101.0, 36.0, status="established")
    make_centre(conn, "620702100", "township", 103.0, 38.0, status="planned")
    make_centre(conn, "620702200", "township", 103.0, 36.0, scenario="plan A")   # a what-if: not the registry

    rows = {r["level"]: r for r in coverage.institutional(conn, "62")}
    assert list(rows) == ["prefecture", "county", "township"]
    assert (rows["prefecture"]["children"], rows["prefecture"]["with_centre"], rows["prefecture"]["with_entity"]) == (2, 2, 1)
    assert rows["prefecture"]["share_entity"] == 0.5
    assert rows["prefecture"]["missing"] == [{"code": "6207", "name": "张掖市", "status": "established"}]
    assert (rows["county"]["children"], rows["county"]["with_centre"], rows["county"]["with_entity"]) == (2, 1, 1)
    assert rows["county"]["missing"] == [{"code": "620702", "name": "甘州区", "status": None}]
    assert (rows["township"]["children"], rows["township"]["with_centre"], rows["township"]["with_entity"]) == (4, 2, 1)
    assert [(m["code"], m["status"]) for m in rows["township"]["missing"]] == [
        ("620102200", "established"), ("620702100", "planned"), ("620702200", None)]

    below_county = coverage.institutional(conn, "620702")
    assert [(r["level"], r["children"], r["with_entity"]) for r in below_county] == [("township", 2, 0)]


def test_each_grid_stores_the_great_circle_distance_to_its_nearest_township_and_county_centre(conn, placed):
    rows = {r["grid_code"]: r for r in conn.execute("SELECT * FROM grid_coverage WHERE grid_code LIKE '620102%'").fetchall()}
    assert len(rows) == 8
    for code, row in rows.items():
        vx = 100.5 if code[9:12] == "200" else 101.5
        north = code[6:9] == "100"
        y = (38.5 if code[12:] == "001" else 37.5) if north else (36.5 if code[12:] == "001" else 35.5)
        assert row["township_m"] == pytest.approx(float(haversine_m(*T1, vx, y)), rel=5e-3), code
        assert row["county_m"] == pytest.approx(float(haversine_m(*C1, vx, y)), rel=5e-3), code
        assert row["township_centre_id"] == placed["t1"] and row["county_centre_id"] == placed["c1"]
    assert rows["620102100200001"]["township_m"] == pytest.approx(0.0, abs=1e-6)
    covered_t = sorted(c for c, r in rows.items() if r["covered_township"])
    covered_c = sorted(c for c, r in rows.items() if r["covered_county"])
    assert covered_t == ["620102100200001"]                       # the others are ≥ 87 km from T1
    assert covered_c == sorted(c for c in rows if c[6:9] == "200")  # south label points are 71.5 km from C1


def test_area_grid_and_people_shares_of_a_county_match_the_hand_computed_answers(conn, placed):
    f = coverage.evaluate(conn, "620102").figures
    assert f["area_km2"] == pytest.approx(NORTH + SOUTH, rel=3e-3)
    assert f["township"]["area_km2"] == pytest.approx(TOWN_REACH, rel=5e-3)
    assert f["county"]["area_km2"] == pytest.approx(COUNTY_REACH, rel=5e-3)
    assert f["any"]["area_km2"] == pytest.approx(TOWN_REACH + COUNTY_REACH, rel=5e-3)   # the circles are 280 km apart
    assert f["any"]["area_share"] == pytest.approx((TOWN_REACH + COUNTY_REACH) / (NORTH + SOUTH), rel=6e-3)
    assert f["gap_km2"] == pytest.approx(NORTH + SOUTH - TOWN_REACH - COUNTY_REACH, rel=3e-3)
    assert (f["grids"], f["township"]["grids"], f["county"]["grids"], f["any"]["grids"]) == (8, 1, 4, 5)
    assert f["any"]["grid_share"] == 5 / 8
    assert f["population"] == 2700
    assert (f["township"]["people"], f["county"]["people"], f["any"]["people"]) == (1000, 800, 1800)
    assert f["any"]["people_share"] == pytest.approx(1800 / 2700)


def test_the_province_sums_its_counties_and_a_township_reports_only_its_own_grids(conn, placed):
    province = coverage.evaluate(conn, "62").figures
    assert province["grids"] == 16 and province["any"]["grids"] == 5
    assert province["area_km2"] == pytest.approx(box_km2(100, 35, 104, 39), rel=3e-3)
    assert province["gap_km2"] == pytest.approx(box_km2(100, 35, 104, 39) - TOWN_REACH - COUNTY_REACH, rel=3e-3)
    north = coverage.evaluate(conn, "620102100").figures
    assert (north["grids"], north["any"]["grids"], north["county"]["grids"]) == (4, 1, 0)
    assert north["township"]["area_share"] == pytest.approx(TOWN_REACH / NORTH, rel=6e-3)


def test_without_a_population_layer_the_people_figures_are_absent_not_zero(conn, tiny):
    make_centre(conn, "620102100", "township", *T1)
    coverage.recompute(conn, township_m=30_000, county_m=80_000)
    f = coverage.evaluate(conn, "620102").figures
    assert f["population"] is None and f["any"]["people"] is None and f["any"]["people_share"] is None
    assert f["any"]["grids"] == 1


def test_planned_centres_serve_nobody_yet(conn, tiny):
    make_centre(conn, "620102100", "township", *T1, status="planned")
    coverage.recompute(conn, township_m=30_000, county_m=80_000)
    f = coverage.evaluate(conn, "620102").figures
    assert f["any"]["grids"] == 0 and f["any"]["area_km2"] == pytest.approx(0.0, abs=1e-6)
    assert f["gap_km2"] == pytest.approx(NORTH + SOUTH, rel=3e-3)


def test_the_gap_polygons_are_the_region_minus_the_reach_circles(conn, placed):
    ev = coverage.evaluate(conn, "620102", with_gaps=True)
    gaps = {g["township_code"]: shape(g["geometry"]) for g in ev.gaps}
    assert set(gaps) == {"620102100", "620102200"}
    # the centres themselves and points well inside the reach are not in the gap; far corners are
    from shapely.geometry import Point
    assert not gaps["620102100"].contains(Point(*T1)) and not gaps["620102100"].contains(Point(100.5, 38.7))
    assert not gaps["620102200"].contains(Point(*C1)) and not gaps["620102200"].contains(Point(101.5, 36.0))
    assert gaps["620102100"].contains(Point(101.9, 37.1)) and gaps["620102200"].contains(Point(100.05, 35.05))
    # the hole of the north gap is the 30 km circle: on the planar lon/lat plane its area is that of
    # an ellipse of semi-axes 30 km / (111.2 km · cos 38.5°) and 30 km / 111.2 km (the 32-gon)
    hole = gaps["620102100"].geoms[0].interiors[0]
    from shapely.geometry import Polygon
    deg2 = Polygon(hole).area
    km_per_deg = 2 * math.pi * R_KM / 360
    expected = 16 * math.sin(math.pi / 16) * (30 / km_per_deg) * (30 / (km_per_deg * math.cos(math.radians(38.5))))
    assert deg2 == pytest.approx(expected, rel=1e-2)


def test_a_hypothetical_centre_in_a_gap_raises_the_coverage_and_shrinks_the_gap_leaving_the_registry_alone(conn, placed):
    before = coverage.evaluate(conn, "620102")
    registry = conn.execute("SELECT count(*) AS n FROM centre").fetchone()["n"]
    stored = conn.execute("SELECT sum(gap_km2) AS g FROM township_coverage").fetchone()["g"]
    what_if = coverage.evaluate(conn, "620102", extra=[Hypothetical(101.5, 37.5, "township")], with_gaps=True)
    assert what_if.recomputed_townships == 1                          # only the north township is touched
    assert what_if.figures["any"]["grids"] == 6
    assert what_if.figures["township"]["grids"] == 2
    assert what_if.figures["township"]["area_km2"] == pytest.approx(2 * TOWN_REACH, rel=5e-3)
    assert before.figures["gap_km2"] - what_if.figures["gap_km2"] == pytest.approx(TOWN_REACH, rel=5e-3)
    assert what_if.figures["any"]["people"] == 1900
    assert conn.execute("SELECT count(*) AS n FROM centre").fetchone()["n"] == registry
    assert conn.execute("SELECT sum(gap_km2) AS g FROM township_coverage").fetchone()["g"] == stored


def test_a_what_if_gives_the_same_figures_as_adding_the_centre_for_real_and_recomputing(conn, placed):
    what_if = coverage.evaluate(conn, "62", extra=[Hypothetical(101.5, 37.5, "township"), Hypothetical(103.0, 37.0, "county")])
    make_centre(conn, "620102100", "township", 101.5, 37.5, name="新增一")
    make_centre(conn, "620702", "county", 103.0, 37.0, name="新增二")
    coverage.recompute(conn)
    real = coverage.evaluate(conn, "62")
    assert real.recomputed_townships == 0
    for tier in ("township", "county", "any"):
        assert what_if.figures[tier]["grids"] == real.figures[tier]["grids"]
        assert what_if.figures[tier]["area_km2"] == pytest.approx(real.figures[tier]["area_km2"], rel=1e-9)
    assert what_if.figures["gap_km2"] == pytest.approx(real.figures["gap_km2"], rel=1e-9)


def test_a_named_scenario_is_counted_only_when_asked_for_and_saving_it_moves_it_into_the_registry(conn, placed):
    coverage.add_scenario_centre(conn, "北部补点", 101.5, 37.5)
    assert coverage.list_scenarios(conn)[0]["name"] == "北部补点"
    assert coverage.evaluate(conn, "620102").figures["any"]["grids"] == 5
    assert coverage.evaluate(conn, "620102", scenario="北部补点").figures["any"]["grids"] == 6
    assert coverage.evaluate(conn, "620102", scenario="another").figures["any"]["grids"] == 5

    saved = coverage.save_scenario(conn, "北部补点", status="established")
    assert [(c["region_code"], c["status"]) for c in saved] == [("620102100", "established")]
    assert coverage.list_scenarios(conn) == []
    after = coverage.evaluate(conn, "620102")
    assert after.recomputed_townships == 0 and after.figures["any"]["grids"] == 6   # the stored rows were refreshed


def test_refreshing_after_registry_changes_gives_the_same_rows_as_a_full_recompute(conn, placed):
    moved = conn.execute("SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, level FROM centre WHERE id = %s", (placed["t1"],)).fetchone()
    conn.execute("UPDATE centre SET geom = ST_SetSRID(ST_MakePoint(101.5, 38.5), 4326) WHERE id = %s", (placed["t1"],))
    new = make_centre(conn, "620702200", "township", 103.5, 35.5)
    coverage.refresh(conn, [(moved["lon"], moved["lat"], "township"), (101.5, 38.5, "township"), (103.5, 35.5, "township")],
                     [placed["t1"], new])
    q_grid = "SELECT grid_code, township_centre_id, round(township_m) AS tm, county_centre_id, round(county_m) AS cm, covered_township, covered_county FROM grid_coverage ORDER BY 1"
    q_town = "SELECT township_code, round(area_km2::numeric, 3) AS a, round(covered_any_km2::numeric, 3) AS c, round(gap_km2::numeric, 3) AS g FROM township_coverage ORDER BY 1"
    incremental = (conn.execute(q_grid).fetchall(), conn.execute(q_town).fetchall())
    coverage.recompute(conn)
    assert (conn.execute(q_grid).fetchall(), conn.execute(q_town).fetchall()) == incremental
    assert {r["grid_code"] for r in incremental[0] if r["covered_township"]} == {"620102100201001", "620702200201002"}


def test_k_best_sites_go_where_the_uncovered_area_is(conn, placed):
    # uncovered grids of 620102: the three north ones other than T1's. With a 30 km reach each site
    # covers only its own grid (neighbouring label points are ≥ 87 km apart), so the greedy takes
    # the largest first: the 1°x1° grids further south are larger (cos φ), so 620102100…002 grids.
    sites = coverage.suggest_sites(conn, "620102", 3)
    assert [s["grid_code"] for s in sites] == ["620102100200002", "620102100201002", "620102100201001"]
    assert sites[0]["lon"] == pytest.approx(100.5) and sites[0]["lat"] == pytest.approx(37.5)
    by_area = {r["code"]: r["area_km2"] for r in conn.execute("SELECT code, area_km2 FROM region WHERE level = 'grid'").fetchall()}
    assert sites[0]["gain"] == pytest.approx(by_area["620102100200002"])
    assert coverage.suggest_sites(conn, "620102", 5)[3:] == []       # nothing else left to cover
    people = coverage.suggest_sites(conn, "620102", 1, weight="population")
    assert people[0]["grid_code"] == "620102100200002" and people[0]["gain"] == 500


def test_k_best_sites_with_a_wider_reach_cover_several_grids_at_once(conn, placed):
    wide = Thresholds(120_000, 80_000)
    # T1 at (100.5, 38.5) reaches three north label points within 120 km (0, 87.6 and 111.2 km);
    # (101.5, 37.5) is 141 km away: one site is left to place, covering that one grid. Three label
    # points reach it (its own, 88 km west and 111 km north): the tie goes to the first grid code.
    sites = coverage.suggest_sites(conn, "620102100", 2, thresholds=wide)
    assert [(s["grid_code"], s["grids_covered"]) for s in sites] == [("620102100200002", 1)]
    # 620702 has no centre. From a label point, 120 km reaches the grids north, south, east or west
    # (111.2 km / ~88 km) but not diagonal ones (≥ 141 km), so the best site covers 4 grids; grids
    # further south are larger, so the winner is the first label point with three southern
    # neighbours of its four: (102.5, 36.5) of grid 620702200200001.
    sites = coverage.suggest_sites(conn, "620702", 1, thresholds=wide)
    assert (sites[0]["grid_code"], sites[0]["grids_covered"]) == ("620702200200001", 4)
    assert (sites[0]["lon"], sites[0]["lat"]) == pytest.approx((102.5, 36.5))


def test_bad_requests_are_refused_with_the_field_the_value_and_the_fix(conn, placed):
    with pytest.raises(LookupError, match="region code '6299' is not in the database"):
        coverage.evaluate(conn, "6299")
    with pytest.raises(CoverageError, match="is a grid: coverage is reported for province, prefecture, county, township; use its township 620102100"):
        coverage.evaluate(conn, "620102100200001")
    with pytest.raises(CoverageError, match=r"township_m = -5 is not a usable reach"):
        coverage.evaluate(conn, "62", thresholds=Thresholds(-5, 100))
    with pytest.raises(CoverageError, match="level 'city' is not a centre level"):
        coverage.evaluate(conn, "62", extra=[Hypothetical(101, 38, "city")])
    with pytest.raises(CoverageError, match="longitude 38.0 latitude 101.0 is outside Gansu; did you swap longitude and latitude"):
        coverage.add_scenario_centre(conn, "x", 38.0, 101.0)
    with pytest.raises(CoverageError, match="k = 0: ask for between 1 and 50 sites"):
        coverage.suggest_sites(conn, "62", 0)
    assert conn.execute("SELECT count(*) AS n FROM centre WHERE scenario IS NOT NULL").fetchone()["n"] == 0


def test_thresholds_other_than_the_stored_ones_are_computed_live_for_the_whole_region(conn, placed):
    ev = coverage.evaluate(conn, "620102", thresholds=Thresholds(40_000, 80_000))
    assert ev.recomputed_townships is None
    # 40 km from T1 still stays inside the north township (its west edge is 43.6 km away)
    assert ev.figures["township"]["area_km2"] == pytest.approx(polygon32_km2(40), rel=5e-3)
    assert coverage.evaluate(conn, "620102").figures["township"]["area_km2"] == pytest.approx(TOWN_REACH, rel=5e-3)
