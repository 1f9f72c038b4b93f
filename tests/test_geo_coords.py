"""GCJ-02 ⇄ WGS84 (geo/coords.py) against published reference pairs, and on geometries."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, box

from geo.coords import gcj02_to_wgs84, gcj02_to_wgs84_geometry, in_china, offset_metres, wgs84_to_gcj02, wgs84_to_gcj02_geometry

# Published pairs (WGS84 lon, lat) → (GCJ-02 lon, lat):
#  - the eviltransform test suite (googollee/eviltransform, tests for Shanghai, Shenzhen, Beijing);
#  - coordtransform / hutool's CoordinateUtilTest vector, the one quoted in STACK-NOTES.
REFERENCE_PAIRS = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),      # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),      # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),      # Beijing
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),            # Beijing, coordtransform
]


@pytest.mark.parametrize("wgs, gcj", REFERENCE_PAIRS)
def test_wgs84_to_gcj02_reproduces_the_published_reference_pairs(wgs, gcj):
    lon, lat = wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=1e-9)
    assert lat == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize("wgs, gcj", REFERENCE_PAIRS)
def test_gcj02_to_wgs84_recovers_the_published_wgs84_point_to_a_millimetre(wgs, gcj):
    lon, lat = gcj02_to_wgs84(*gcj)
    # 1e-8 degrees is about 1 mm
    assert lon == pytest.approx(wgs[0], abs=1e-8)
    assert lat == pytest.approx(wgs[1], abs=1e-8)


def test_the_brief_test_vector_rounds_to_the_quoted_six_decimals():
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert (round(lon, 6), round(lat, 6)) == (116.410244, 39.916404)


def test_arrays_are_converted_element_by_element_like_scalars():
    lons = np.array([p[0][0] for p in REFERENCE_PAIRS])
    lats = np.array([p[0][1] for p in REFERENCE_PAIRS])
    glon, glat = wgs84_to_gcj02(lons, lats)
    for k, (_, gcj) in enumerate(REFERENCE_PAIRS):
        assert glon[k] == pytest.approx(gcj[0], abs=1e-9)
        assert glat[k] == pytest.approx(gcj[1], abs=1e-9)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    np.testing.assert_allclose(back_lon, lons, atol=1e-9)
    np.testing.assert_allclose(back_lat, lats, atol=1e-9)


def test_points_outside_china_are_not_moved_either_way():
    assert not in_china(2.35, 48.86)
    assert wgs84_to_gcj02(2.35, 48.86) == (2.35, 48.86)
    assert gcj02_to_wgs84(2.35, 48.86) == (2.35, 48.86)


def test_the_offset_in_gansu_is_a_few_hundred_metres():
    # a coarse lattice over Gansu's bounding box (92.3–108.8 E, 32.6–42.8 N); the real outlines are
    # checked in test_etl_gansu.py
    lon, lat = np.meshgrid(np.linspace(93, 108, 16), np.linspace(33, 42, 10))
    metres = offset_metres(lon.ravel(), lat.ravel())
    assert metres.min() > 30
    assert metres.max() < 700
    assert 100 < float(np.median(metres)) < 500


def test_geometry_conversion_moves_every_vertex_and_keeps_shared_edges_shared():
    left = box(103.0, 36.0, 103.5, 36.5)
    right = box(103.5, 36.0, 104.0, 36.5)
    moved = gcj02_to_wgs84_geometry(np.array([left, right], dtype=object))
    # the shared edge x = 103.5 is made of the same two vertices on both sides
    shared_left = {tuple(c) for c in shapely.get_coordinates(moved[0])}
    shared_right = {tuple(c) for c in shapely.get_coordinates(moved[1])}
    assert len(shared_left & shared_right) == 2
    assert shapely.coverage_is_valid(moved)
    # and the whole thing moved by the GCJ-02 offset (hundreds of metres), not by nothing
    shift_m = shapely.distance(Point(shapely.get_coordinates(left)[0]), Point(shapely.get_coordinates(moved[0])[0])) * 111_000
    assert 100 < shift_m < 700


def test_geometry_round_trip_returns_the_original_vertices():
    shape = MultiPolygon([box(100.1, 38.2, 100.4, 38.9), box(101.0, 38.0, 101.2, 38.1)])
    back = wgs84_to_gcj02_geometry(gcj02_to_wgs84_geometry(shape))
    np.testing.assert_allclose(shapely.get_coordinates(back), shapely.get_coordinates(shape), atol=1e-9)
    assert back.geom_type == "MultiPolygon"
