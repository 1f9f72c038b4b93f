-- Insert or update every staged region, parents first. A row whose values and geometries are
-- byte-for-byte what the table holds is left alone (no update, no trigger, no new updated_at).
WITH staged AS (
    SELECT code, name, level, kind, parent_code, source,
           ST_SetSRID(ST_GeomFromWKB(geom), 4326) AS geom,
           ST_SetSRID(ST_GeomFromWKB(geom_simple), 4326) AS geom_simple,
           sort_key
    FROM region_stage
    ORDER BY length(code), code
)
INSERT INTO region AS r (code, name, level, kind, parent_code, source, geom, geom_simple, sort_key)
SELECT code, name, level, kind, parent_code, source, geom, geom_simple, sort_key FROM staged
ON CONFLICT (code) DO UPDATE SET
    name = EXCLUDED.name, level = EXCLUDED.level, kind = EXCLUDED.kind,
    parent_code = EXCLUDED.parent_code, source = EXCLUDED.source, geom = EXCLUDED.geom,
    geom_simple = EXCLUDED.geom_simple, sort_key = EXCLUDED.sort_key, label_point = NULL
WHERE (r.name, r.level, r.kind, r.parent_code, r.source, r.sort_key)
          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level, EXCLUDED.kind, EXCLUDED.parent_code, EXCLUDED.source, EXCLUDED.sort_key)
   OR ST_AsBinary(r.geom) IS DISTINCT FROM ST_AsBinary(EXCLUDED.geom)
   OR ST_AsBinary(r.geom_simple) IS DISTINCT FROM ST_AsBinary(EXCLUDED.geom_simple)
