-- Check centre rows against the database in one pass: the region they name (and its level), whether
-- the point is in Gansu (and whether it would be with lat/long swapped), and how far outside its
-- region it lies (metres; 0 inside). Without a province outline, a lon/lat box around Gansu stands in.
WITH r AS (
    SELECT no, code, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS pt, ST_SetSRID(ST_MakePoint(lat, lon), 4326) AS swapped
    FROM unnest(%(nos)s::int[], %(codes)s::text[], %(lons)s::float8[], %(lats)s::float8[]) AS u(no, code, lon, lat)
),
has_province AS (
    SELECT EXISTS (SELECT 1 FROM region_subdivided WHERE level = 'province') AS yes
)
SELECT r.no,
       reg.level AS region_level,
       reg.name AS region_name,
       CASE WHEN hp.yes THEN EXISTS (SELECT 1 FROM region_subdivided s WHERE s.level = 'province' AND ST_Intersects(s.geom, r.pt))
            ELSE ST_Intersects(ST_MakeEnvelope(92, 32, 109, 43, 4326), r.pt) END AS in_gansu,
       CASE WHEN hp.yes THEN EXISTS (SELECT 1 FROM region_subdivided s WHERE s.level = 'province' AND ST_Intersects(s.geom, r.swapped))
            ELSE ST_Intersects(ST_MakeEnvelope(92, 32, 109, 43, 4326), r.swapped) END AS swapped_in_gansu,
       CASE WHEN reg.code IS NULL THEN NULL
            WHEN ST_Intersects(reg.geom, r.pt) THEN 0.0
            WHEN NOT ST_DWithin(reg.geom, r.pt, 1.0) THEN 1e9                 -- more than a degree away: far
            ELSE ST_Distance(reg.geom::geography, r.pt::geography) END AS outside_m
FROM r
CROSS JOIN has_province hp
LEFT JOIN region reg ON reg.code = r.code
ORDER BY r.no
