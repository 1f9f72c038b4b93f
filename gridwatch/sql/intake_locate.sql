-- For each input point (WGS84): is it inside the province outline, would it be with lat/long
-- swapped, and which is the deepest region (a grid, normally) that holds it.
SELECT i.ord,
       in_province(pt.p) AS inside,
       NOT in_province(pt.p) AND in_province(ST_SetSRID(ST_MakePoint(i.lat, i.lon), 4326)) AS swapped_inside,
       EXISTS (SELECT 1 FROM region_subdivided WHERE level = 'province') AS province_loaded,
       CASE WHEN in_province(pt.p) THEN region_leaf(pt.p) END AS leaf
FROM unnest(%(lon)s::float8[], %(lat)s::float8[]) WITH ORDINALITY AS i(lon, lat, ord)
CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS p) pt
ORDER BY i.ord
