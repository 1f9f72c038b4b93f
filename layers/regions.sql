-- Administrative outlines, the map's own basemap. Deeper levels appear as the zoom grows and the
-- shallow ones drop out (their edges are the deeper ones' edges): never grids, never all levels.
--   z 0–5 prefectures · 6–7 prefectures + counties · 8–9 counties + townships · ≥10 townships + villages
-- Filters on the stored EPSG:3857 geometry with its GiST index. Up to z9 it draws the stored
-- simplified outline (geom_simple: a tenth of the province's vertices, half the tile time at z5);
-- from z10 the full one, already in 3857 (no per-tile transform).
SELECT r.code::bigint AS id,
       CASE WHEN %(z)s::int <= 9 THEN ST_Transform(coalesce(r.geom_simple, r.geom), 3857) ELSE r.geom_3857 END AS geom,
       r.code, r.name, r.level, r.source
FROM region r, tile
WHERE r.geom_3857 && tile.env3857
  AND r.level = ANY (CASE
        WHEN %(z)s::int <= 5 THEN ARRAY['prefecture']
        WHEN %(z)s::int <= 7 THEN ARRAY['prefecture', 'county']
        WHEN %(z)s::int <= 9 THEN ARRAY['county', 'township']
        ELSE ARRAY['township', 'village'] END)
