-- Per grid: straight-line distance (metres, ellipsoid) from its label point to the nearest
-- township-tier centre (township, village) and county-tier centre (county, prefecture, province).
-- The partial GiST indexes on centre.geom::geography (0041) give the two nearest of each tier on the
-- sphere (KNN, <->); the nearer of them on the ellipsoid wins. Hypothetical points (the arrays) get
-- negative ids: -1, -2, …
WITH extra AS (
    SELECT -e.n AS id, ST_SetSRID(ST_MakePoint(e.lon, e.lat), 4326) AS geom, e.level
    FROM unnest(%(lons)s::float8[], %(lats)s::float8[], %(levels)s::text[]) WITH ORDINALITY AS e(lon, lat, level, n)
),
grids AS (
    SELECT g.code, g.label_point, g.area_km2, g.population
    FROM region g
    WHERE g.level = 'grid' AND g.code LIKE %(pattern)s
      AND (%(townships)s::text[] IS NULL OR left(g.code, 9) = ANY (%(townships)s::text[]))
      AND (%(grids)s::text[] IS NULL OR g.code = ANY (%(grids)s::text[]))
)
SELECT g.code AS grid_code,
       left(g.code, 9) AS township_code,
       tw.id AS township_centre_id,
       tw.m AS township_m,
       co.id AS county_centre_id,
       co.m AS county_m,
       COALESCE(tw.m <= %(township_m)s, false) AS covered_township,
       COALESCE(co.m <= %(county_m)s, false) AS covered_county,
       g.area_km2,
       g.population
FROM grids g
LEFT JOIN LATERAL (
    SELECT x.id, x.m FROM (
        (SELECT c.id, ST_Distance(c.geom::geography, g.label_point::geography) AS m
         FROM centre c
         WHERE c.level IN ('township', 'village')
           AND ((c.scenario IS NULL AND c.status IN ('established', 'entity')) OR c.scenario = %(scenario)s)
         ORDER BY c.geom::geography <-> g.label_point::geography
         LIMIT 2)
        UNION ALL
        SELECT e.id, ST_Distance(e.geom::geography, g.label_point::geography)
        FROM extra e WHERE e.level IN ('township', 'village')
    ) x ORDER BY x.m, x.id LIMIT 1
) tw ON true
LEFT JOIN LATERAL (
    SELECT x.id, x.m FROM (
        (SELECT c.id, ST_Distance(c.geom::geography, g.label_point::geography) AS m
         FROM centre c
         WHERE c.level IN ('county', 'prefecture', 'province')
           AND ((c.scenario IS NULL AND c.status IN ('established', 'entity')) OR c.scenario = %(scenario)s)
         ORDER BY c.geom::geography <-> g.label_point::geography
         LIMIT 2)
        UNION ALL
        SELECT e.id, ST_Distance(e.geom::geography, g.label_point::geography)
        FROM extra e WHERE e.level IN ('county', 'prefecture', 'province')
    ) x ORDER BY x.m, x.id LIMIT 1
) co ON true
