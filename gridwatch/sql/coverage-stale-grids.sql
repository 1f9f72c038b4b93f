-- Grids whose stored nearest-centre distances a registry change can alter: those whose nearest
-- centre was one of the changed centres (%(ids)s), and those nearer to a changed position than
-- to their stored nearest centre of that tier (or with none yet).
WITH pts AS (
    SELECT ST_SetSRID(ST_MakePoint(e.lon, e.lat), 4326)::geography AS geog, e.level IN ('township', 'village') AS township_tier
    FROM unnest(%(lons)s::float8[], %(lats)s::float8[], %(levels)s::text[]) AS e(lon, lat, level)
)
SELECT gc.grid_code
FROM grid_coverage gc
JOIN region g ON g.code = gc.grid_code
WHERE gc.township_centre_id = ANY (%(ids)s::bigint[])
   OR gc.county_centre_id = ANY (%(ids)s::bigint[])
   OR EXISTS (
        SELECT 1 FROM pts p
        WHERE (p.township_tier AND (gc.township_m IS NULL OR ST_DWithin(g.label_point::geography, p.geog, gc.township_m)))
           OR (NOT p.township_tier AND (gc.county_m IS NULL OR ST_DWithin(g.label_point::geography, p.geog, gc.county_m))))
ORDER BY gc.grid_code
