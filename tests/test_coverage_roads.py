"""Travel time over a road network: the pure graph functions and the stored per-grid minutes on the
tiny hierarchy, against answers worked out by hand; the road loader's refusals leave nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import LineString

from etl.roads import RoadLoadError, clear_roads, load_roads
from geo.coverage import haversine_m, road_graph, travel_minutes
from gridwatch import coverage
from tests.factories import make_centre
from tests.test_coverage import C1, T1

ACCESS = coverage.ACCESS_KMH * 1000 / 60          # metres per minute off the roads (15 km/h)


def test_the_graph_joins_lines_at_shared_vertices_and_keeps_the_faster_of_two_parallel_edges():
    g = road_graph([LineString([(0, 0), (1, 0)]), LineString([(1, 0), (1, 1)]), LineString([(0, 0), (1, 0)])], [30, 60, 120])
    assert len(g.nodes) == 3
    i, j = 0, 1                                            # nodes sorted: (0,0), (1,0), (1,1)
    assert g.minutes[i, j] == pytest.approx(haversine_m(0, 0, 1, 0) / 1000 / 120 * 60)   # the 120 km/h line wins
    assert g.minutes[j, i] == g.minutes[i, j]


def test_travel_goes_along_the_roads_when_quicker_and_straight_when_not():
    road = road_graph([LineString([(0, 0), (0.5, 0), (1, 0)])], [60])
    targets = [(1, 0), (0.5, 0.05), (0.02, 0.0)]
    got = travel_minutes(road, [(0, 0)], targets)
    km = haversine_m(0, 0, 1, 0) / 1000
    assert got[0] == pytest.approx(km)                                      # 60 km/h: one minute a km
    off = haversine_m(0.5, 0.05, 0.5, 0) / ACCESS                          # 5.6 km at 15 km/h to the road
    assert got[1] == pytest.approx(km / 2 + off)
    # between vertices a point goes straight to the nearest vertex: 2.2 km at 15 km/h, not along the road
    assert got[2] == pytest.approx(haversine_m(0, 0, 0.02, 0) / ACCESS)


def test_without_sources_every_target_is_unreachable_and_bad_speeds_are_refused():
    road = road_graph([LineString([(0, 0), (1, 0)])], [60])
    assert np.isinf(travel_minutes(road, [], [(0, 0)])).all()
    with pytest.raises(ValueError, match="positive number of km/h"):
        road_graph([LineString([(0, 0), (1, 0)])], [0])


def roads_file(tmp_path, features, name="roads.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def line(coords, **props):
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords}, "properties": props}


@pytest.fixture
def placed(conn, tiny):
    make_centre(conn, "620102100", "township", *T1)
    make_centre(conn, "620102", "county", *C1)
    coverage.recompute(conn, township_m=30_000, county_m=80_000)


def test_loaded_roads_give_every_grid_its_minutes_to_the_nearest_centre(conn, placed, tmp_path):
    # a 60 km/h road along 38.5°N through T1 and the label points of the two north-row grids
    path = roads_file(tmp_path, [line([[100.0, 38.5], [100.5, 38.5], [101.0, 38.5], [101.5, 38.5], [102.0, 38.5]], speed=60)])
    result = load_roads(conn, path, speed_field="speed")
    assert result["roads"] == 1 and result["travel"]["grids"] == 16
    m = {r["grid_code"]: r for r in conn.execute("SELECT * FROM grid_travel").fetchall()}
    assert m["620102100200001"]["township_minutes"] == pytest.approx(0.0, abs=1e-6)          # T1's own grid
    along = (haversine_m(100.5, 38.5, 101.0, 38.5) + haversine_m(101.0, 38.5, 101.5, 38.5)) / 1000
    assert m["620102100201001"]["township_minutes"] == pytest.approx(along)                   # 87 km at 60 km/h
    # 1° south of the road: 111.2 km at 15 km/h, by road or straight to T1 alike
    assert m["620102100200002"]["township_minutes"] == pytest.approx(haversine_m(100.5, 37.5, 100.5, 38.5) / ACCESS)
    # C1 is 278 km from the road: the south grids go straight, 71.5 km at 15 km/h
    assert m["620102200200001"]["county_minutes"] == pytest.approx(haversine_m(100.5, 36.5, *C1) / ACCESS)

    body = coverage.region_coverage(conn, "620102")
    travel = body["travel"]
    assert travel["grids"] == 8 and travel["access_kmh"] == 15.0
    assert travel["township"]["grid_share_within"]["15"] == 1 / 8
    assert travel["township"]["grid_share_within"]["60"] == 1 / 8
    assert travel["township"]["max_minutes"] == pytest.approx(max(r["township_minutes"] for c, r in m.items() if c.startswith("620102")))


def test_registry_changes_and_recomputes_keep_the_travel_times_current(conn, placed, tmp_path):
    load_roads(conn, roads_file(tmp_path, [line([[100.0, 38.5], [101.0, 38.5], [102.0, 38.5]], speed=60)]), speed_field="speed")
    new = make_centre(conn, "620102100", "township", 101.5, 38.5, name="新中心")
    coverage.refresh(conn, [(101.5, 38.5, "township")], [new])
    row = conn.execute("SELECT township_minutes FROM grid_travel WHERE grid_code = '620102100201001'").fetchone()
    # the grid's label point is the new centre itself
    assert row["township_minutes"] == pytest.approx(0.0, abs=1e-6)
    assert coverage.recompute(conn)["travel"]["grids"] == 16
    assert clear_roads(conn) == 1
    assert conn.execute("SELECT count(*) AS n FROM grid_travel").fetchone()["n"] == 0
    assert coverage.region_coverage(conn, "620102")["travel"] is None


@pytest.mark.parametrize("features, message", [
    ([{"type": "Feature", "geometry": {"type": "Point", "coordinates": [101, 38]}, "properties": {"speed": 60}}],
     "feature 1: geometry is 'Point', not a line"),
    ([line([[100.0, 38.5], [101.0, 38.5]], kmh=60)], "bad.geojson: no column 'speed' for --speed-field; columns are kmh, geometry"),
    ([line([[38.5, 100.0], [38.5, 101.0]], speed=60)], "feature 1: the line at lon 38.5000..38.5000, lat 100.0000..101.0000 is outside Gansu; did you swap lat/long?"),
    ([line([[100.0, 38.5], [101.0, 38.5]], speed=60), line([[101.0, 38.5], [102.0, 38.5]], speed="fast")],
     "feature 2: speed 'fast' is not a speed in km/h"),
    ([line([[100.0, 38.5], [101.0, 38.5]], speed=400)], "feature 1: speed 400 is not a speed in km/h between 1 and 150"),
])
def test_a_bad_road_file_is_refused_naming_the_feature_and_leaves_the_roads_as_they_were(conn, placed, tmp_path, features, message):
    load_roads(conn, roads_file(tmp_path, [line([[100.0, 38.5], [102.0, 38.5]], speed=60)], "good.geojson"), speed_field="speed")
    before = (conn.execute("SELECT id, ST_AsText(geom) AS g FROM road ORDER BY id").fetchall(),
              conn.execute("SELECT * FROM grid_travel ORDER BY grid_code").fetchall())
    with pytest.raises(RoadLoadError) as err:
        load_roads(conn, roads_file(tmp_path, features, "bad.geojson"), speed_field="speed")
    assert message in str(err.value)
    assert (conn.execute("SELECT id, ST_AsText(geom) AS g FROM road ORDER BY id").fetchall(),
            conn.execute("SELECT * FROM grid_travel ORDER BY grid_code").fetchall()) == before


def test_a_projected_road_file_is_transformed_to_degrees(conn, placed, tmp_path):
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"speed": [60]}, geometry=[LineString([(100.0, 38.5), (102.0, 38.5)])], crs=4326).to_crs(32647)
    path = tmp_path / "utm.gpkg"
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    assert load_roads(conn, path, speed_field="speed")["roads"] == 1
    x0, x1 = conn.execute("SELECT ST_XMin(geom) AS a, ST_XMax(geom) AS b FROM road").fetchone().values()
    assert (x0, x1) == pytest.approx((100.0, 102.0), abs=1e-6)
