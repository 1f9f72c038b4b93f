-- For each input point (WGS84): the deepest region holding it (a grid, normally: grids partition
-- the province, so finding one also proves the point is inside); only when there is none, whether
-- the province outline holds it, and — when not — whether it would with lat/long swapped.
-- All points at once: one join of the points with the grid pieces through their own GiST index
-- (0110), the lowest code where a point lies on a border between two grids (as region_leaf());
-- region_leaf() itself only for a point in no grid (a hierarchy loaded without grids, or outside).
WITH i AS MATERIALIZED (
    SELECT i.ord, i.lon, i.lat, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS p
    FROM unnest(%(lon)b::float8[], %(lat)b::float8[]) WITH ORDINALITY AS i(lon, lat, ord)
), grid AS (
    -- The index is probed with the point's box as a polygon (ST_Expand(p, 0)), not the point: a
    -- polygon carries its box, a point's box is recomputed on every index entry the probe compares
    -- (twice the time here); _ST_Intersects is ST_Intersects without its own (point) index probe.
    SELECT i.ord, min(s.code) AS leaf
    FROM i
    JOIN region_subdivided s ON s.level = 'grid' AND s.geom && ST_Expand(i.p, 0) AND _ST_Intersects(s.geom, i.p)
    GROUP BY i.ord
), lf AS MATERIALIZED (
    SELECT i.ord, i.lon, i.lat, i.p, coalesce(g.leaf, CASE WHEN g.leaf IS NULL THEN region_leaf(i.p) END) AS leaf
    FROM i
    LEFT JOIN grid g ON g.ord = i.ord
)
SELECT lf.ord, lf.leaf IS NOT NULL OR in_province(lf.p) AS inside,
       CASE WHEN lf.leaf IS NOT NULL OR in_province(lf.p) THEN false
            ELSE in_province(ST_SetSRID(ST_MakePoint(lf.lat, lf.lon), 4326)) END AS swapped_inside,
       EXISTS (SELECT 1 FROM region_subdivided WHERE level = 'province') AS province_loaded,
       lf.leaf
FROM lf
ORDER BY lf.ord
