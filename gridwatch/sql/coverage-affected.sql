-- Townships under a region whose coverage a set of centres can change: those their reach touches.
-- The centres are a scenario's (%(scenario)s) plus points passed as arrays (hypothetical centres,
-- or the old and new positions of a centre whose registry entry changed).
WITH pts AS (
    SELECT c.geom, c.level FROM centre c WHERE c.scenario = %(scenario)s
    UNION ALL
    SELECT ST_SetSRID(ST_MakePoint(e.lon, e.lat), 4326), e.level
    FROM unnest(%(lons)s::float8[], %(lats)s::float8[], %(levels)s::text[]) AS e(lon, lat, level)
),
reach AS (
    SELECT ST_Buffer(p.geom::geography,
                     CASE WHEN p.level IN ('township', 'village') THEN %(township_m)s ELSE %(county_m)s END)::geometry AS geom
    FROM pts p
)
SELECT DISTINCT t.code
FROM region t
JOIN reach r ON t.geom && r.geom AND ST_Intersects(t.geom, r.geom)
WHERE t.level = 'township' AND t.code LIKE %(pattern)s
ORDER BY t.code
