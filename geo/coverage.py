"""Coverage geometry without a database: great-circle distances, reach circles, greedy site choice.

Everything here is vectorised numpy/shapely: no loops over rows except the ``k`` greedy rounds.
Coordinates are (longitude, latitude) in degrees (EPSG:4326 / CGCS2000); distances in metres on a
sphere of the mean Earth radius, which differs from PostGIS's ellipsoidal ``geography`` distances
by at most about 0.5 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

__all__ = [
    "EARTH_RADIUS_M", "Site", "as_lonlat", "haversine_m", "geodesic_circle", "pairs_within",
    "greedy_max_coverage", "RoadGraph", "road_graph", "travel_minutes",
]

EARTH_RADIUS_M = 6_371_008.8


def as_lonlat(points) -> np.ndarray:
    """An (n, 2) float array of lon/lat from an (n, 2) array-like or shapely points (or a GeoSeries).

    >>> as_lonlat([(103.8, 36.06)]).tolist()
    [[103.8, 36.06]]
    >>> from shapely.geometry import Point
    >>> as_lonlat([Point(103.8, 36.06), Point(100.4, 38.9)]).shape
    (2, 2)
    """
    if hasattr(points, "geometry") and hasattr(points, "crs"):          # GeoSeries / GeoDataFrame
        points = points.geometry.values
    arr = np.asarray(points, dtype=object if not _numeric(points) else float)
    if arr.dtype == object:
        coords = shapely.get_coordinates(arr)
        if len(coords) != len(arr):
            raise ValueError(f"expected one point per row, got {len(arr)} geometries holding {len(coords)} coordinates")
        return coords.astype(float)
    arr = arr.astype(float).reshape(-1, 2) if arr.size else np.empty((0, 2))
    return arr


def _numeric(points) -> bool:
    try:
        np.asarray(points, dtype=float)
        return True
    except (TypeError, ValueError):
        return False


def haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in metres (broadcasts like numpy).

    One degree of latitude is about 111.2 km:

    >>> round(float(haversine_m(103.0, 36.0, 103.0, 37.0)))
    111195
    """
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def geodesic_circle(lon: float, lat: float, radius_m: float, n: int = 64) -> Polygon:
    """The polygon of points ``radius_m`` from (lon, lat) on the sphere (``n`` vertices), for drawing.

    >>> ring = geodesic_circle(103.8, 36.06, 5000)
    >>> len(ring.exterior.coords), bool(ring.contains(shapely.Point(103.8, 36.06)))
    (65, True)
    """
    if radius_m <= 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    bearing = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    phi1, lam1, delta = np.radians(lat), np.radians(lon), radius_m / EARTH_RADIUS_M
    phi2 = np.arcsin(np.sin(phi1) * np.cos(delta) + np.cos(phi1) * np.sin(delta) * np.cos(bearing))
    lam2 = lam1 + np.arctan2(np.sin(bearing) * np.sin(delta) * np.cos(phi1), np.cos(delta) - np.sin(phi1) * np.sin(phi2))
    return Polygon(np.column_stack([np.degrees(lam2), np.degrees(phi2)]))


def pairs_within(candidates, demand, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with demand point j within ``radius_m`` of candidate i (vectorised).

    An STRtree over the demand points is queried with each candidate's degree box, then the
    great-circle distance keeps the pairs truly inside the radius.

    >>> i, j = pairs_within([(0.0, 0.0)], [(0.0, 0.0), (0.01, 0.0), (0.05, 0.0)], 2000)
    >>> i.tolist(), j.tolist()
    ([0, 0], [0, 1])
    """
    cand, dem = as_lonlat(candidates), as_lonlat(demand)
    if len(cand) == 0 or len(dem) == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    dlat = np.degrees(radius_m / EARTH_RADIUS_M) * 1.001
    max_lat = np.minimum(np.abs(cand[:, 1]) + dlat, 89.0)
    dlon = dlat / np.cos(np.radians(max_lat))
    boxes = shapely.box(cand[:, 0] - dlon, cand[:, 1] - dlat, cand[:, 0] + dlon, cand[:, 1] + dlat)
    tree = shapely.STRtree(shapely.points(dem))
    i, j = tree.query(boxes, predicate="intersects")
    keep = haversine_m(cand[i, 0], cand[i, 1], dem[j, 0], dem[j, 1]) <= radius_m
    order = np.lexsort((j[keep], i[keep]))
    return i[keep][order], j[keep][order]


@dataclass(frozen=True)
class Site:
    """One chosen site: the candidate's index, its position, the weight it newly covers, and which demand points."""

    index: int
    lon: float
    lat: float
    gain: float
    covers: tuple[int, ...]


def greedy_max_coverage(candidates, demand, weights, radius_m: float, k: int, covered=None) -> list[Site]:
    """Choose up to ``k`` candidate sites, each time the one covering the most not-yet-covered weight.

    ``demand`` points carry ``weights`` (area, population …); ``covered`` marks demand already
    served. Ties go to the lowest candidate index; rounds stop early when nothing more can be
    gained. The classic greedy for maximal coverage: within 1 − 1/e of the optimum.

    Five demand points on the equator, 0.01° (1.11 km) apart, the fourth weighing 5:

    >>> pts = [(0.0, 0.0), (0.01, 0.0), (0.02, 0.0), (0.10, 0.0), (0.11, 0.0)]
    >>> sites = greedy_max_coverage(pts, pts, [1, 1, 1, 5, 1], radius_m=1200, k=3)
    >>> [(s.index, s.gain, s.covers) for s in sites]
    [(3, 6.0, (3, 4)), (1, 3.0, (0, 1, 2))]
    """
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    cand, dem = as_lonlat(candidates), as_lonlat(demand)
    w = np.asarray(weights, dtype=float).reshape(-1)
    if len(w) != len(dem):
        raise ValueError(f"{len(dem)} demand points but {len(w)} weights: give one weight per demand point")
    if np.any(w < 0):
        raise ValueError("weights must not be negative")
    done = np.zeros(len(dem), dtype=bool) if covered is None else np.asarray(covered, dtype=bool).copy()
    if len(done) != len(dem):
        raise ValueError(f"{len(dem)} demand points but {len(done)} covered flags")
    ci, dj = pairs_within(cand, dem, radius_m)
    sites: list[Site] = []
    for _ in range(k):
        open_weight = np.where(done[dj], 0.0, w[dj])
        gains = np.bincount(ci, weights=open_weight, minlength=len(cand))
        if len(gains) == 0:
            break
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        newly = dj[(ci == best) & ~done[dj]]
        done[newly] = True
        sites.append(Site(best, float(cand[best, 0]), float(cand[best, 1]), float(gains[best]), tuple(int(x) for x in np.sort(newly))))
    return sites


# ------------------------------------------------------------------------- road network travel time

@dataclass(frozen=True)
class RoadGraph:
    """Road vertices (lon/lat) and a sparse matrix of minutes between neighbouring vertices."""

    nodes: np.ndarray          # (n, 2) lon/lat
    minutes: object            # scipy.sparse.csr_matrix (n × n), symmetric
    tree: object               # shapely.STRtree over the nodes, for snapping


def road_graph(lines, speeds_kmh) -> RoadGraph:
    """The graph of a road network: every vertex a node, consecutive vertices joined (both ways).

    Lines meet where they share a vertex (coordinates equal to 1e-7°), as in a noded road file.
    ``speeds_kmh`` gives each line's speed. Vectorised: no loop over vertices.

    Two roads meeting at (1, 0), 60 km/h: the ends are 2 × 111.2 km = 222.4 min apart.

    >>> from shapely.geometry import LineString
    >>> g = road_graph([LineString([(0, 0), (1, 0)]), LineString([(1, 0), (2, 0)])], [60, 60])
    >>> len(g.nodes), round(float(g.minutes[0, 1]), 1)
    (3, 111.2)
    """
    from scipy.sparse import coo_matrix   # scipy (heavy): loaded only when a road graph is built

    geoms = np.asarray(lines, dtype=object)
    speeds = np.asarray(speeds_kmh, dtype=float).reshape(-1)
    if len(speeds) != len(geoms):
        raise ValueError(f"{len(geoms)} lines but {len(speeds)} speeds: give one speed per line")
    if len(speeds) and (not np.all(np.isfinite(speeds)) or np.any(speeds <= 0)):
        raise ValueError("every speed must be a positive number of km/h")
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    if len(coords) == 0:
        raise ValueError("the road network has no vertices")
    keys = np.round(coords, 7)
    nodes, node_of = np.unique(keys, axis=0, return_inverse=True)
    node_of = node_of.reshape(-1)
    same_line = owner[1:] == owner[:-1]
    a, b = node_of[:-1][same_line], node_of[1:][same_line]
    speed = speeds[owner[:-1][same_line]]
    metres = haversine_m(nodes[a, 0], nodes[a, 1], nodes[b, 0], nodes[b, 1])
    minutes = metres / 1000.0 / speed * 60.0
    keep = a != b
    a, b, minutes = a[keep], b[keep], minutes[keep]
    n = len(nodes)
    # both directions; where two lines join the same pair of nodes, the faster wins (csr sums
    # duplicates, so take the minimum first)
    rows, cols, vals = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([minutes, minutes])
    order = np.lexsort((vals, cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    matrix = coo_matrix((vals[first], (rows[first], cols[first])), shape=(n, n)).tocsr()
    return RoadGraph(nodes, matrix, shapely.STRtree(shapely.points(nodes)))


def _snap(graph: RoadGraph, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest road vertex of each point and the great-circle metres to it."""
    idx = graph.tree.nearest(shapely.points(xy))
    return idx, haversine_m(xy[:, 0], xy[:, 1], graph.nodes[idx, 0], graph.nodes[idx, 1])


def travel_minutes(graph: RoadGraph, sources, targets, access_kmh: float = 15.0) -> np.ndarray:
    """Minutes from each target to its nearest source, over the roads.

    A trip goes from the target straight to its nearest road vertex at ``access_kmh``, along the
    roads, and straight from the road vertex nearest the source to the source at ``access_kmh``;
    or straight from target to source at ``access_kmh`` when that is quicker. One Dijkstra from a
    virtual node joined to every source's vertex (scipy, in C): no loop over rows.

    A road along the equator from 0° to 2° at 60 km/h; a centre on it at 0°, a grid on it at 1°
    (111.2 min) and one 0.1° north of 2° (222.4 min + 11.1 km at 15 km/h = 44.5 min):

    >>> from shapely.geometry import LineString
    >>> g = road_graph([LineString([(0, 0), (1, 0), (2, 0)])], [60])
    >>> [round(float(m), 1) for m in travel_minutes(g, [(0, 0)], [(1, 0), (2, 0.1)])]
    [111.2, 266.9]
    """
    # scipy (heavy): loaded only when travel times are computed over the roads
    from scipy.sparse import csr_matrix, vstack, hstack
    from scipy.sparse.csgraph import dijkstra   # scipy too, for the same reason

    src, dst = as_lonlat(sources), as_lonlat(targets)
    if len(dst) == 0:
        return np.empty(0)
    if len(src) == 0:
        return np.full(len(dst), np.inf)
    if access_kmh <= 0:
        raise ValueError(f"access_kmh must be positive, got {access_kmh}")
    per_min = access_kmh * 1000.0 / 60.0                       # metres per minute off the roads
    s_node, s_m = _snap(graph, src)
    t_node, t_m = _snap(graph, dst)
    n = graph.minutes.shape[0]
    # virtual node n: an edge to each source's vertex weighing that source's access leg
    best = np.full(n, np.inf)
    np.minimum.at(best, s_node, s_m / per_min)
    cols = np.nonzero(np.isfinite(best))[0]
    extra_row = csr_matrix((np.maximum(best[cols], 1e-9), (np.zeros(len(cols), dtype=int), cols)), shape=(1, n))
    full = vstack([hstack([graph.minutes, csr_matrix((n, 1))]), hstack([extra_row, csr_matrix((1, 1))])]).tocsr()
    dist = dijkstra(full, directed=True, indices=n)[:n]
    via_roads = dist[t_node] + t_m / per_min
    # straight to the nearest source (nearest in degrees, measured on the sphere), when that is quicker
    j = shapely.STRtree(shapely.points(src)).nearest(shapely.points(dst))
    direct = haversine_m(dst[:, 0], dst[:, 1], src[j, 0], src[j, 1]) / per_min
    return np.minimum(via_roads, direct)
