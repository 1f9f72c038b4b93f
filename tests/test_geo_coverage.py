"""geo/coverage.py: pure distance, circle and greedy-site functions, checked against hand answers."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import shapely
from shapely.geometry import Point

import geo.coverage as cov
from geo.coverage import as_lonlat, geodesic_circle, greedy_max_coverage, haversine_m, pairs_within

KM_PER_DEG = 2 * math.pi * cov.EARTH_RADIUS_M / 360 / 1000  # 111.195 km per degree on the sphere


def test_the_module_docstring_examples_run():
    result = doctest.testmod(cov)
    assert result.attempted >= 8 and result.failed == 0


def test_a_degree_along_the_equator_and_along_a_meridian_are_the_same_great_circle_length():
    assert haversine_m(0, 0, 1, 0) == pytest.approx(KM_PER_DEG * 1000, rel=1e-9)
    assert haversine_m(103, 36, 103, 37) == pytest.approx(KM_PER_DEG * 1000, rel=1e-9)


def test_a_degree_of_longitude_at_lanzhou_shrinks_with_the_cosine_of_latitude():
    # on a parallel the chord is slightly shorter than cos(lat) * 1 degree; at 1° the difference is < 0.01 %
    assert haversine_m(103, 36, 104, 36) == pytest.approx(KM_PER_DEG * 1000 * math.cos(math.radians(36)), rel=1e-4)


def test_distances_broadcast_over_arrays():
    d = haversine_m(np.array([0.0, 0.0]), 0.0, np.array([1.0, 2.0]), 0.0)
    assert d.shape == (2,) and d[1] == pytest.approx(2 * d[0])


def test_a_geodesic_circle_has_every_vertex_at_the_radius():
    ring = geodesic_circle(100.5, 38.5, 30_000, n=48)
    xy = np.asarray(ring.exterior.coords)[:-1]
    assert len(xy) == 48
    assert haversine_m(100.5, 38.5, xy[:, 0], xy[:, 1]) == pytest.approx(np.full(48, 30_000.0), rel=1e-9)


def test_a_geodesic_circle_refuses_a_radius_that_is_not_positive():
    with pytest.raises(ValueError, match="radius_m must be positive"):
        geodesic_circle(100, 38, 0)


def test_pairs_within_keeps_only_points_inside_the_radius_even_where_the_degree_box_is_wider():
    # at 60°N a degree of longitude is ~55.6 km; the box for 60 km reaches 1.08° of longitude,
    # but the point 1.05° east (58.4 km) is in and the point 1.1° east (61.2 km) is not.
    cand = [(10.0, 60.0)]
    dem = [(11.05, 60.0), (11.1, 60.0), (10.0, 60.5), (10.0, 60.6)]
    i, j = pairs_within(cand, dem, 60_000)
    assert j.tolist() == [0, 2]  # 60.5°N is 55.6 km north (in), 60.6°N is 66.7 km (out)
    assert i.tolist() == [0, 0]


def test_points_may_be_given_as_shapely_points_or_a_geoseries():
    import geopandas as gpd

    pts = [Point(1, 2), Point(3, 4)]
    assert as_lonlat(pts).tolist() == [[1, 2], [3, 4]]
    assert as_lonlat(gpd.GeoSeries(pts, crs=4326)).tolist() == [[1, 2], [3, 4]]
    assert as_lonlat(shapely.points([[1, 2]])).tolist() == [[1, 2]]


def test_greedy_picks_the_heaviest_cluster_first_then_the_next_and_stops_when_nothing_is_left():
    # demand on the equator at 0, 0.01, 0.02 (a cluster of three, weight 1 each) and 0.10, 0.11
    # (weights 5 and 1); a site reaches 1.2 km, i.e. its neighbours 1.11 km away but not 2.22 km.
    pts = [(0.0, 0.0), (0.01, 0.0), (0.02, 0.0), (0.10, 0.0), (0.11, 0.0)]
    sites = greedy_max_coverage(pts, pts, [1, 1, 1, 5, 1], radius_m=1200, k=5)
    assert [s.index for s in sites] == [3, 1]          # 3 covers {3, 4} = 6; then 1 covers {0, 1, 2} = 3
    assert [s.gain for s in sites] == [6.0, 3.0]
    assert sites[1].covers == (0, 1, 2)
    assert (sites[0].lon, sites[0].lat) == (0.10, 0.0)


def test_greedy_does_not_count_demand_that_is_already_covered():
    pts = [(0.0, 0.0), (0.01, 0.0), (0.02, 0.0), (0.10, 0.0), (0.11, 0.0)]
    sites = greedy_max_coverage(pts, pts, [1, 1, 1, 5, 1], radius_m=1200, k=1,
                                covered=[False, False, False, True, True])
    assert [(s.index, s.gain) for s in sites] == [(1, 3.0)]


def test_greedy_candidates_need_not_be_demand_points_and_ties_go_to_the_first_candidate():
    # two candidates each covering one of two equal demand points: the first wins the first round
    demand = [(0.0, 0.0), (1.0, 0.0)]
    cand = [(1.001, 0.0), (0.001, 0.0), (5.0, 5.0)]
    sites = greedy_max_coverage(cand, demand, [2.0, 2.0], radius_m=500, k=3)
    assert [s.index for s in sites] == [0, 1]


def test_greedy_refuses_weights_that_do_not_match_the_demand():
    with pytest.raises(ValueError, match="2 demand points but 3 weights"):
        greedy_max_coverage([(0, 0)], [(0, 0), (1, 1)], [1, 2, 3], radius_m=10, k=1)
    with pytest.raises(ValueError, match="must not be negative"):
        greedy_max_coverage([(0, 0)], [(0, 0)], [-1], radius_m=10, k=1)
