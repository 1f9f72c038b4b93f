"""Partitions (geo/partition.py): exact cover, no overlap, valid pieces, seeded, sizes that follow weights."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo.partition import GRID, partition, partition_equal, reading_order, simplify_coverage, split_by_nearest, to_multipolygon

# a concave "U" (a county with a bay) and a two-piece parent (a county with an exclave)
U_SHAPE = Polygon([(0, 0), (6, 0), (6, 4), (4, 4), (4, 1.5), (2, 1.5), (2, 4), (0, 4)])
TWO_PIECES = MultiPolygon([box(0, 0, 3, 2), box(5, 0, 6, 1)])


def _assert_exact_cover(parent, parts, tolerance=1e-9):
    parent = to_multipolygon(parent)
    areas = np.array([p.area for p in parts])
    assert all(p.is_valid and not p.is_empty for p in parts)
    assert abs(areas.sum() - parent.area) <= tolerance * parent.area, "children's areas do not add up to the parent's"
    union = shapely.union_all(parts)
    assert abs(union.area - parent.area) <= tolerance * parent.area, "children overlap or leave a gap"
    assert shapely.difference(union, parent).area <= tolerance * parent.area, "children stick out of the parent"
    assert shapely.coverage_is_valid(np.array(parts, dtype=object)), "neighbours do not share their edges exactly"


@pytest.mark.parametrize("parent", [box(0, 0, 4, 2), U_SHAPE, TWO_PIECES], ids=["rectangle", "u-shape", "two-pieces"])
def test_children_cover_the_parent_exactly_without_overlap(parent):
    p = partition(parent, [1, 2, 1, 3, 1, 1], seed=3)
    assert len(p.parts) == 6
    _assert_exact_cover(parent, p.parts)


def test_the_same_seed_gives_the_same_polygons_and_another_seed_other_ones():
    a = partition(U_SHAPE, [1, 1, 2, 2], seed=[5, 620702])
    b = partition(U_SHAPE, [1, 1, 2, 2], seed=[5, 620702])
    c = partition(U_SHAPE, [1, 1, 2, 2], seed=[6, 620702])
    assert [shapely.to_wkb(g) for g in a.parts] == [shapely.to_wkb(g) for g in b.parts]
    assert [shapely.to_wkb(g) for g in a.parts] != [shapely.to_wkb(g) for g in c.parts]


def test_every_vertex_sits_on_the_one_centimetre_grid():
    p = partition(box(100.123456789, 36.0, 100.5, 36.4), [1, 1, 1], seed=1)
    coords = shapely.get_coordinates(np.array(p.parts, dtype=object))
    snapped = np.round(coords / GRID) * GRID
    np.testing.assert_allclose(coords, snapped, atol=1e-12)


def test_children_of_a_concave_parent_are_each_one_piece():
    p = partition(U_SHAPE, [1] * 8, seed=11)
    assert [len(g.geoms) for g in p.parts] == [1] * 8


def test_areas_follow_the_weights():
    weights = [1, 1, 2, 4]
    p = partition(box(0, 0, 8, 8), weights, seed=2, cells_per_part=30)
    shares = np.array([g.area for g in p.parts]) / 64
    expected = np.array(weights) / sum(weights)
    # whole Voronoi cells: close to the targets, not exact
    np.testing.assert_allclose(shares, expected, rtol=0.35)
    assert shares[3] > shares[2] > max(shares[0], shares[1])


def test_urban_children_are_small_and_sit_around_the_centre():
    weights = [0.1, 0.1, 0.1, 1, 1, 1, 1]
    urban = [True, True, True, False, False, False, False]
    centre = Point(2, 2)
    p = partition(box(0, 0, 10, 10), weights, seed=4, urban=urban, centre=centre)
    areas = np.array([g.area for g in p.parts])
    distance = np.array([g.centroid.distance(centre) for g in p.parts])
    assert areas[:3].max() < areas[3:].min()
    assert distance[:3].max() < distance[3:].min()
    # the anchors handed to the next level lie inside their own child
    assert all(g.contains(a) for g, a in zip(p.parts, p.anchors))


def test_one_weight_returns_the_parent_itself():
    p = partition(box(0, 0, 1, 1), [3], seed=1)
    assert len(p.parts) == 1 and p.parts[0].equals(box(0, 0, 1, 1))


@pytest.mark.parametrize("weights, message", [([], "at least one"), ([1, 0], "positive"), ([1, -2], "positive")])
def test_bad_weights_are_refused_with_the_reason(weights, message):
    with pytest.raises(ValueError, match=message):
        partition(box(0, 0, 1, 1), weights, seed=1)


def test_an_empty_parent_is_refused():
    with pytest.raises(ValueError, match="empty"):
        partition(Polygon(), [1, 1], seed=1)


@pytest.mark.parametrize("n", [2, 3, 6])
def test_equal_partition_covers_the_parent_with_n_similar_pieces(n):
    p = partition_equal(U_SHAPE, n, seed=[1, n])
    assert len(p.parts) == n
    _assert_exact_cover(U_SHAPE, p.parts)
    areas = np.array([g.area for g in p.parts])
    assert areas.max() / areas.min() < 4


def test_reading_order_runs_west_to_east_then_north_to_south():
    # a 3 × 2 block numbered like text: top row left to right, then the bottom row
    cells = {(col, row): box(col, row, col + 1, row + 1) for col in range(3) for row in range(2)}
    names = list(cells)
    order = reading_order([cells[k] for k in names])
    assert [names[i] for i in order] == [(0, 1), (1, 1), (2, 1), (0, 0), (1, 0), (2, 0)]


ROUND = Point(0, 0).buffer(5, quad_segs=256)  # an outline with 1,025 vertices


def test_coverage_simplification_keeps_shared_edges_and_drops_vertices():
    parts = partition(ROUND, [1] * 6, seed=8).parts
    simple = simplify_coverage(parts, 0.05)
    before = shapely.get_num_coordinates(np.array(parts, dtype=object)).sum()
    after = shapely.get_num_coordinates(np.array(simple, dtype=object)).sum()
    assert after < before / 3
    assert shapely.coverage_is_valid(np.array(simple, dtype=object))
    assert all(g.is_valid and not g.is_empty for g in simple)


def test_coverage_simplification_can_keep_the_outer_boundary_untouched():
    parts = partition(ROUND, [1] * 6, seed=9).parts
    simple = simplify_coverage(parts, 0.05, keep_boundary=True)
    outline_before = shapely.coverage_union_all(np.array(parts, dtype=object))
    outline_after = shapely.coverage_union_all(np.array(simple, dtype=object))
    assert outline_after.symmetric_difference(outline_before).area < 1e-12
    assert shapely.coverage_is_valid(np.array(simple, dtype=object))


def test_a_gap_is_split_among_its_neighbours_by_nearness():
    ring = box(0, 0, 10, 10).difference(box(2, 2, 8, 8))           # a gap around a surveyed unit
    west, east = box(-5, 0, 0, 10), box(10, 0, 15, 10)
    left, right = split_by_nearest(ring, [west, east], seed=3)
    assert abs(left.area + right.area - ring.area) < 1e-9 * ring.area
    assert left.intersection(right).area < 1e-12
    assert left.centroid.x < 5 < right.centroid.x
    assert left.area == pytest.approx(right.area, rel=0.25)


@pytest.mark.parametrize("module", ["geo.coords", "geo.codes", "geo.partition", "etl.sources"])
def test_the_examples_in_the_docstrings_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
