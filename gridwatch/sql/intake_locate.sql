-- For each input point (WGS84): the deepest region holding it (a grid, normally: grids partition
-- the province, so finding one also proves the point is inside); only when there is none, whether
-- the province outline holds it, and — when not — whether it would with lat/long swapped.
SELECT i.ord, lf.leaf IS NOT NULL OR in_province(pt.p) AS inside,
       CASE WHEN lf.leaf IS NOT NULL OR in_province(pt.p) THEN false
            ELSE in_province(ST_SetSRID(ST_MakePoint(i.lat, i.lon), 4326)) END AS swapped_inside,
       EXISTS (SELECT 1 FROM region_subdivided WHERE level = 'province') AS province_loaded,
       lf.leaf
FROM unnest(%(lon)s::float8[], %(lat)s::float8[]) WITH ORDINALITY AS i(lon, lat, ord)
CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS p) pt
-- OFFSET 0 keeps this subquery whole: pulled up, region_leaf(pt.p) would run once per use of lf.leaf (3×).
CROSS JOIN LATERAL (SELECT region_leaf(pt.p) AS leaf OFFSET 0) lf
ORDER BY i.ord
