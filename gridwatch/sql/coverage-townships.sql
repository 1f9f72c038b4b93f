-- Per township: its area, the area within reach of township-tier and county-tier centres, and the
-- gap (the part beyond every centre's reach). Centres: the real registry's established and entity
-- centres, plus a what-if scenario's centres, plus hypothetical points passed as arrays.
-- Reach: ST_Buffer on geography (metres), so circles are true on the ellipsoid.
WITH extra AS (
    SELECT ST_SetSRID(ST_MakePoint(e.lon, e.lat), 4326) AS geom, e.level
    FROM unnest(%(lons)s::float8[], %(lats)s::float8[], %(levels)s::text[]) AS e(lon, lat, level)
),
towns AS MATERIALIZED (
    SELECT t.code, t.geom
    FROM region t
    WHERE t.level = 'township' AND t.code LIKE %(pattern)s
      AND (%(townships)s::text[] IS NULL OR t.code = ANY (%(townships)s::text[]))
),
frame AS (
    SELECT ST_Expand(ST_Extent(geom)::geometry, %(margin_deg)s) AS box FROM towns
),
active AS (
    SELECT c.geom, c.level
    FROM centre c, frame f
    WHERE c.geom && f.box
      AND ((c.scenario IS NULL AND c.status IN ('established', 'entity')) OR c.scenario = %(scenario)s)
    UNION ALL
    SELECT geom, level FROM extra
),
reach AS MATERIALIZED (
    SELECT a.level IN ('township', 'village') AS township_tier,
           ST_Buffer(a.geom::geography,
                     CASE WHEN a.level IN ('township', 'village') THEN %(township_m)s ELSE %(county_m)s END)::geometry AS geom
    FROM active a
),
parts AS (
    SELECT t.code, t.geom, u.tw, u.co, u.anyr
    FROM towns t
    LEFT JOIN LATERAL (
        SELECT ST_Union(r.geom) FILTER (WHERE r.township_tier) AS tw,
               ST_Union(r.geom) FILTER (WHERE NOT r.township_tier) AS co,
               ST_Union(r.geom) AS anyr
        FROM reach r
        WHERE r.geom && t.geom AND ST_Intersects(r.geom, t.geom)
    ) u ON true
),
gaps AS (
    SELECT p.code, p.geom, p.tw, p.co,
           CASE WHEN p.anyr IS NULL THEN p.geom
                ELSE ST_CollectionExtract(ST_Difference(p.geom, p.anyr), 3) END AS gap
    FROM parts p
)
SELECT g.code AS township_code,
       ST_Area(g.geom::geography) / 1e6 AS area_km2,
       COALESCE(ST_Area(ST_Intersection(g.geom, g.tw)::geography) / 1e6, 0) AS covered_township_km2,
       COALESCE(ST_Area(ST_Intersection(g.geom, g.co)::geography) / 1e6, 0) AS covered_county_km2,
       GREATEST(ST_Area(g.geom::geography) / 1e6 - COALESCE(ST_Area(g.gap::geography) / 1e6, 0), 0) AS covered_any_km2,
       COALESCE(ST_Area(g.gap::geography) / 1e6, 0) AS gap_km2,
       CASE WHEN ST_IsEmpty(g.gap) THEN NULL ELSE ST_Multi(g.gap) END AS gap,
       CASE WHEN ST_IsEmpty(g.gap) THEN NULL
            ELSE NULLIF(ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_SimplifyPreserveTopology(g.gap, %(simplify_deg)s)), 3)),
                        'MULTIPOLYGON EMPTY'::geometry) END AS gap_simple
FROM gaps g
