"""Partitions: split a polygon into children of chosen relative sizes that cover it exactly.

The method (seeded, deterministic — same input and seed, same polygons):

1. sample points inside the parent (uniform, plus a dense cluster around ``centre`` when some
   children are *urban*: street offices, residents' committees);
2. Voronoi cells of those points (a valid coverage: neighbouring cells share their edges exactly);
3. one seed cell per child (urban seeds near the centre, the others spread by k-means), then the
   children grow over the cell adjacency graph, the least filled child (area / target) first, each
   taking the frontier cell nearest its seed (with a little noise, so edges look drawn, not ruled);
4. each child = union of its cells ∩ parent, on a fixed precision grid (``GRID`` degrees), so that
   neighbours share identical edges and children cover the parent with no gap and no overlap;
5. detached fragments (where a child's cells cross a bay of the parent) move to the neighbour
   they share the longest edge with, so each child is one piece unless the parent itself is not.

Sizes follow the weights closely but not exactly (cells are whole): within a few percent for
children of ten cells or more.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

__all__ = [
    "GRID", "Partition", "to_multipolygon", "sample_points", "partition", "partition_equal", "split_by_nearest", "reading_order",
    "simplify_coverage", "inner_point",
]

GRID = 1e-7  # degrees (about 1 cm): the precision grid every generated vertex sits on


@dataclass(frozen=True)
class Partition:
    """Children of a partition, in the order of the weights, and an inner anchor point for each."""

    parts: list[MultiPolygon]
    anchors: list[Point]


def to_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    """The polygonal parts of ``geom`` as one MultiPolygon (lines and points dropped).

    >>> to_multipolygon(box(0, 0, 1, 1)).geom_type
    'MultiPolygon'
    """
    if geom is None or geom.is_empty:
        return MultiPolygon()
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    polys = [p for p in shapely.get_parts(geom) if isinstance(p, (Polygon, MultiPolygon))]
    out: list[Polygon] = []
    for p in polys:
        out.extend(p.geoms if isinstance(p, MultiPolygon) else [p])
    return MultiPolygon([p for p in out if not p.is_empty])


def inner_point(geom: BaseGeometry, near: Point | None = None, candidates: np.ndarray | None = None) -> Point:
    """A point inside ``geom``: ``near`` (default its centroid) if inside, else the candidate point
    (an (n, 2) array) nearest to it that is inside, else a point on its surface.

    >>> inner_point(box(0, 0, 2, 2)).coords[0]
    (1.0, 1.0)
    >>> inner_point(box(0, 0, 2, 2), Point(5, 5)).within(box(0, 0, 2, 2))
    True
    """
    c = geom.centroid if near is None else near
    if geom.contains(c):
        return c
    if candidates is not None and len(candidates):
        inside = candidates[shapely.contains_xy(geom, candidates[:, 0], candidates[:, 1])]
        if len(inside):
            d = (inside[:, 0] - c.x) ** 2 + (inside[:, 1] - c.y) ** 2
            return Point(inside[int(d.argmin())])
    return shapely.point_on_surface(geom)


def sample_points(region: BaseGeometry, n: int, rng: np.random.Generator, *, centre: Point | None = None,
                  spread: float = 0.0, clustered: int = 0) -> np.ndarray:
    """``n`` random points (an (n, 2) array) inside ``region``; ``clustered`` of them drawn around ``centre``.

    The clustered points follow a normal distribution of standard deviation ``spread``; points that
    fall outside the region are drawn again.

    >>> pts = sample_points(box(0, 0, 1, 1), 50, np.random.default_rng(1))
    >>> pts.shape, bool(((pts > 0) & (pts < 1)).all())
    ((50, 2), True)
    """
    shapely.prepare(region)
    x0, y0, x1, y1 = region.bounds
    out: list[np.ndarray] = []

    def draw(k: int, gaussian: bool) -> np.ndarray:
        got: list[np.ndarray] = []
        have = 0
        for _ in range(200):
            if have >= k:
                break
            m = max(32, 3 * (k - have))
            if gaussian:
                xy = rng.normal(size=(m, 2)) * spread + np.array([centre.x, centre.y])
            else:
                xy = np.column_stack([rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)])
            keep = xy[shapely.contains_xy(region, xy[:, 0], xy[:, 1])]
            got.append(keep)
            have += len(keep)
        if have < k:
            raise ValueError(f"could not place {k} points inside a region of area {region.area:.3g}")
        return np.concatenate(got)[:k]

    if clustered and centre is not None and spread > 0:
        out.append(draw(clustered, True))
    if n - clustered > 0:
        out.append(draw(n - clustered, False))
    return np.concatenate(out) if out else np.empty((0, 2))


def _adjacency(points: np.ndarray) -> list[list[int]]:
    """Neighbours of each point in the Delaunay triangulation (= Voronoi cells sharing an edge)."""
    edges = shapely.delaunay_triangles(MultiPoint(points), only_edges=True)
    ends = shapely.get_coordinates(edges).reshape(-1, 2, 2)
    order = np.lexsort((points[:, 1], points[:, 0]))
    sx, sy = points[order, 0], points[order, 1]

    def lookup(xy: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(sx, xy[:, 0]), 0, len(sx) - 1)
        ok = (sx[pos] == xy[:, 0]) & (sy[pos] == xy[:, 1])
        idx = np.where(ok, order[pos], -1)
        if not ok.all():  # equal x coordinates: fall back to an exact dictionary
            index = {(x, y): i for i, (x, y) in enumerate(map(tuple, points))}
            idx = np.array([index.get((x, y), -1) for x, y in map(tuple, xy)])
        return idx

    a, b = lookup(ends[:, 0, :]), lookup(ends[:, 1, :])
    nbrs: list[list[int]] = [[] for _ in range(len(points))]
    for i, j in zip(a.tolist(), b.tolist()):
        if i < 0 or j < 0 or i == j:
            continue
        nbrs[i].append(j)
        nbrs[j].append(i)
    return nbrs


def _kmeans_seeds(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 6) -> np.ndarray:
    """Indices of ``k`` distinct points near the k-means centres of ``points``."""
    if k >= len(points):
        return np.arange(len(points))[:k]
    centres = points[rng.choice(len(points), size=k, replace=False)].copy()
    for _ in range(iterations):
        d = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = d.argmin(axis=1)
        count = np.bincount(label, minlength=k)
        has = count > 0
        centres[has, 0] = np.bincount(label, weights=points[:, 0], minlength=k)[has] / count[has]
        centres[has, 1] = np.bincount(label, weights=points[:, 1], minlength=k)[has] / count[has]
    d = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    chosen: list[int] = []
    taken = np.zeros(len(points), dtype=bool)
    for j in range(k):
        col = np.where(taken, np.inf, d[:, j])
        i = int(col.argmin())
        taken[i] = True
        chosen.append(i)
    return np.array(chosen)


def _grow(points: np.ndarray, areas: np.ndarray, nbrs: list[list[int]], seeds: np.ndarray,
          targets: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Owner (child index) of every cell: region growing from the seeds towards the target areas."""
    m, n = len(points), len(seeds)
    owner = np.full(m, -1, dtype=np.int64)
    filled = np.zeros(n)
    frontier: list[list[tuple[float, int]]] = [[] for _ in range(n)]

    def push_neighbours(child: int, cell: int) -> None:
        sx, sy = points[seeds[child]]
        for nb in nbrs[cell]:
            if owner[nb] < 0:
                dx, dy = points[nb, 0] - sx, points[nb, 1] - sy
                heapq.heappush(frontier[child], ((dx * dx + dy * dy) ** 0.5 * noise[nb], nb))

    for child, cell in enumerate(seeds):
        owner[cell] = child
        filled[child] += areas[cell]
    for child, cell in enumerate(seeds):
        push_neighbours(child, cell)
    queue = [(filled[c] / targets[c], c) for c in range(n)]
    heapq.heapify(queue)
    left = m - n
    while left > 0 and queue:
        ratio, child = heapq.heappop(queue)
        heap = frontier[child]
        while heap and owner[heap[0][1]] >= 0:
            heapq.heappop(heap)
        if not heap:
            continue  # boxed in: this child stops growing
        _, cell = heapq.heappop(heap)
        owner[cell] = child
        filled[child] += areas[cell]
        left -= 1
        push_neighbours(child, cell)
        heapq.heappush(queue, (filled[child] / targets[child], child))
    if left > 0:  # cells not reachable over the adjacency graph: give each to its nearest owned cell
        owned = np.flatnonzero(owner >= 0)
        for cell in np.flatnonzero(owner < 0):
            d = ((points[owned] - points[cell]) ** 2).sum(axis=1)
            owner[cell] = owner[owned[int(d.argmin())]]
    return owner


def _merge_fragments(parts: list[BaseGeometry], grid_size: float) -> list[BaseGeometry]:
    """Move each child's detached pieces (all but its largest) to the neighbour sharing most edge."""
    parts = [to_multipolygon(p) for p in parts]
    for _ in range(3):
        moved = False
        tree = shapely.STRtree(parts)
        for i in range(len(parts)):
            pieces = list(parts[i].geoms)
            if len(pieces) < 2:
                continue
            pieces.sort(key=lambda g: g.area, reverse=True)
            keep = [pieces[0]]
            for piece in pieces[1:]:
                best, best_len = -1, 0.0
                boundary = piece.boundary
                for j in tree.query(piece):
                    j = int(j)
                    if j == i:
                        continue
                    shared = shapely.intersection(boundary, parts[j].boundary, grid_size=grid_size).length
                    if shared > best_len:
                        best, best_len = j, shared
                if best < 0:
                    keep.append(piece)  # an exclave of the parent itself: stays
                    continue
                parts[best] = to_multipolygon(shapely.union(parts[best], piece, grid_size=grid_size))
                moved = True
            parts[i] = MultiPolygon(keep)
        if not moved:
            break
    return parts


def partition(parent: BaseGeometry, weights, *, seed: int | list[int], urban=None, centre: Point | None = None,
              cells_per_part: int = 14, grid_size: float = GRID, noise: float = 0.35) -> Partition:
    """Split ``parent`` into ``len(weights)`` children with areas roughly proportional to ``weights``.

    ``urban[i]`` True puts child i in the dense cluster around ``centre`` (default: an inner point
    near the parent's middle). Children cover the parent exactly (on the ``grid_size`` grid), do
    not overlap, are valid and non-empty. Same arguments, same result.

    >>> p = partition(box(0, 0, 4, 2), [1, 1, 2], seed=7)
    >>> len(p.parts), round(sum(g.area for g in p.parts), 6), p.parts[2].area > p.parts[0].area
    (3, 8.0, True)
    """
    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    if n == 0:
        raise ValueError("partition needs at least one weight")
    if (weights <= 0).any():
        raise ValueError("partition weights must be positive")
    parent = to_multipolygon(shapely.set_precision(parent, grid_size) if grid_size else parent)
    if parent.is_empty:
        raise ValueError("cannot partition an empty geometry")
    if n == 1:
        return Partition([parent], [inner_point(parent)])
    rng = np.random.default_rng(seed)
    urban = np.zeros(n, dtype=bool) if urban is None else np.asarray(urban, dtype=bool)
    total = parent.area
    targets = weights / weights.sum() * total
    n_urban = int(urban.sum())
    if centre is None or not parent.contains(centre):
        centre = inner_point(parent, centre)
    urban_area = float(targets[urban].sum())
    spread = (urban_area / np.pi) ** 0.5 * 0.9 if n_urban else 0.0
    m = max(cells_per_part * n, 24)
    clustered = cells_per_part * n_urban if n_urban else 0
    points = sample_points(parent, m, rng, centre=centre, spread=spread, clustered=clustered)
    points = np.unique(points, axis=0)
    points = points[rng.permutation(len(points))]
    x0, y0, x1, y1 = parent.bounds
    pad = max(x1 - x0, y1 - y0)
    cells = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(points), extend_to=box(x0 - pad, y0 - pad, x1 + pad, y1 + pad), ordered=True))
    if len(cells) != len(points):
        raise RuntimeError("Voronoi diagram lost cells (duplicate points?)")
    shapely.prepare(parent)
    inside = shapely.contains_properly(parent, cells)
    areas = shapely.area(cells)
    edge = ~inside
    if edge.any():
        areas[edge] = shapely.area(shapely.intersection(cells[edge], parent))
    nbrs = _adjacency(points)

    # seeds: urban children near the centre, the others spread by k-means over the rest
    dist_c = np.hypot(points[:, 0] - centre.x, points[:, 1] - centre.y)
    seeds = np.full(n, -1, dtype=np.int64)
    used = np.zeros(len(points), dtype=bool)
    if n_urban:
        core = np.flatnonzero(dist_c <= max(spread, 1e-12))
        if len(core) < 3 * n_urban:
            core = np.argsort(dist_c)[: 3 * n_urban]
        pick = core[_kmeans_seeds(points[core], n_urban, rng)]
        seeds[np.flatnonzero(urban)] = pick
        used[pick] = True
    if n - n_urban:
        rest = np.flatnonzero(~used & (dist_c > spread)) if n_urban else np.arange(len(points))
        if len(rest) < n - n_urban:
            rest = np.flatnonzero(~used)
        pick = rest[_kmeans_seeds(points[rest], n - n_urban, rng)]
        seeds[np.flatnonzero(~urban)] = pick
    jitter = 1.0 + noise * rng.random(len(points))
    owner = _grow(points, areas, nbrs, seeds, targets, jitter)

    merged = np.empty(n, dtype=object)
    for child in range(n):
        mine = cells[owner == child]
        merged[child] = shapely.coverage_union_all(mine) if len(mine) > 1 else mine[0]
    # a child well inside the parent needs no clipping, only the same rounding to the grid
    within = shapely.contains_properly(parent, merged)
    clipped = np.empty(n, dtype=object)
    if within.any():
        clipped[within] = shapely.set_precision(merged[within], grid_size) if grid_size else merged[within]
    if (~within).any():
        clipped[~within] = shapely.intersection(merged[~within], parent, grid_size=grid_size)
    parts = _merge_fragments(list(clipped), grid_size)
    out: list[MultiPolygon] = []
    anchors: list[Point] = []
    for child, geom in enumerate(parts):
        geom = to_multipolygon(geom)
        if not geom.is_valid:
            geom = to_multipolygon(shapely.make_valid(geom))
        if geom.is_empty:
            raise RuntimeError(f"partition produced an empty child #{child}")
        out.append(geom)
        mine = points[owner == child]
        mean = Point(mine.mean(axis=0)) if len(mine) else geom.centroid
        anchors.append(inner_point(geom, mean, mine))
    return Partition(out, anchors)


def partition_equal(parent: BaseGeometry, n: int, *, seed: int | list[int], grid_size: float = GRID,
                    samples_per_part: int = 24) -> Partition:
    """Split ``parent`` into ``n`` children of roughly equal area, quickly (for a handful of grids).

    Centroidal Voronoi: k-means over random points inside the parent, Voronoi cells of the points
    nearest the k-means centres, clipped to the parent; detached pieces join a neighbour. Same
    guarantees as :func:`partition` (exact cover, no overlap, valid, non-empty), sizes less even.

    >>> p = partition_equal(box(0, 0, 3, 1), 3, seed=1)
    >>> len(p.parts), round(sum(g.area for g in p.parts), 6), all(g.area > 0.5 for g in p.parts)
    (3, 3.0, True)
    """
    if n < 1:
        raise ValueError("partition_equal needs n >= 1")
    parent = to_multipolygon(shapely.set_precision(parent, grid_size) if grid_size else parent)
    if parent.is_empty:
        raise ValueError("cannot partition an empty geometry")
    if n == 1:
        return Partition([parent], [inner_point(parent)])
    rng = np.random.default_rng(seed)
    points = np.unique(sample_points(parent, samples_per_part * n, rng), axis=0)
    sites = points[_kmeans_seeds(points, n, rng)]
    x0, y0, x1, y1 = parent.bounds
    pad = max(x1 - x0, y1 - y0)
    cells = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(sites), extend_to=box(x0 - pad, y0 - pad, x1 + pad, y1 + pad), ordered=True))
    parts = _merge_fragments(list(shapely.intersection(cells, parent, grid_size=grid_size)), grid_size)
    out = [to_multipolygon(g) if g.is_valid else to_multipolygon(shapely.make_valid(g)) for g in parts]
    if any(g.is_empty for g in out) or len(out) != n:
        return partition(parent, np.ones(n), seed=seed, grid_size=grid_size)
    return Partition(out, [inner_point(g, Point(site)) for g, site in zip(out, sites)])


def split_by_nearest(region: BaseGeometry, sites, *, seed: int | list[int], grid_size: float = GRID,
                     samples: int = 64) -> list[MultiPolygon]:
    """Split ``region`` among ``sites`` (geometries): each piece goes to the site nearest to it.

    Used to hand a gap back to the neighbours around it, each the side next to it. Pieces are
    unions of small Voronoi cells of the region, so together they cover it exactly; a site may get
    an empty piece.

    >>> a, b = box(0, 0, 1, 1), box(3, 0, 4, 1)
    >>> left, right = split_by_nearest(box(1, 0, 3, 1), [a, b], seed=1)
    >>> round(left.area + right.area, 6), left.centroid.x < right.centroid.x
    (2.0, True)
    """
    sites = list(sites)
    region = to_multipolygon(shapely.set_precision(region, grid_size) if grid_size else region)
    if not sites:
        raise ValueError("split_by_nearest needs at least one site")
    if len(sites) == 1 or region.is_empty:
        return [region] + [MultiPolygon()] * (len(sites) - 1)
    rng = np.random.default_rng(seed)
    points = np.unique(sample_points(region, samples * len(sites), rng), axis=0)
    x0, y0, x1, y1 = region.bounds
    pad = max(x1 - x0, y1 - y0)
    cells = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(points), extend_to=box(x0 - pad, y0 - pad, x1 + pad, y1 + pad), ordered=True))
    pts = shapely.points(points)
    distance = np.column_stack([shapely.distance(pts, site) for site in sites])
    owner = distance.argmin(axis=1)
    out = []
    for k in range(len(sites)):
        mine = cells[owner == k]
        if not len(mine):
            out.append(MultiPolygon())
            continue
        merged = shapely.coverage_union_all(mine) if len(mine) > 1 else mine[0]
        out.append(to_multipolygon(shapely.intersection(merged, region, grid_size=grid_size)))
    return out


def reading_order(geoms) -> list[int]:
    """Indices of ``geoms`` in reading order: rows north→south, west→east within a row.

    A new row starts when a label point lies more than half a typical child's height below the
    first point of the current row.

    >>> reading_order([box(2, 0, 3, 1), box(0, 0, 1, 1), box(0, 2, 1, 3), box(2, 2, 3, 3)])
    [2, 3, 1, 0]
    """
    geoms = list(geoms)
    if not geoms:
        return []
    pts = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    xs, ys = shapely.get_x(pts), shapely.get_y(pts)
    b = shapely.bounds(np.asarray(geoms, dtype=object))
    band = float(np.median(b[:, 3] - b[:, 1])) * 0.5
    order = sorted(range(len(geoms)), key=lambda i: (-ys[i], xs[i]))
    rows: list[list[int]] = []
    top = None
    for i in order:
        if top is None or top - ys[i] > band:
            rows.append([])
            top = ys[i]
        rows[-1].append(i)
    return [i for row in rows for i in sorted(row, key=lambda j: xs[j])]


def simplify_coverage(geoms, tolerance: float, *, keep_boundary: bool = False) -> list[MultiPolygon]:
    """Simplify polygons that form a coverage so that shared edges stay shared.

    ``keep_boundary`` leaves the outer boundary of the whole coverage as it is (use it for the
    children of one parent, so they still meet the neighbours across the parent's edge). A result
    that came out invalid or empty is replaced by its input.

    >>> a, b = box(0, 0, 1, 1), box(1, 0, 2, 1)
    >>> [g.geom_type for g in simplify_coverage([a, b], 0.01)]
    ['MultiPolygon', 'MultiPolygon']
    """
    arr = np.asarray([to_multipolygon(g) for g in geoms], dtype=object)
    if len(arr) == 0:
        return []
    simple = shapely.coverage_simplify(arr, tolerance, simplify_boundary=not keep_boundary)
    out = []
    for original, s in zip(arr, simple):
        s = to_multipolygon(s)
        out.append(s if (not s.is_empty and s.is_valid) else original)
    return out
