-- Intake stamping: the region codes of a point, by point-in-polygon on the subdivided grid pieces
-- (region_subdivided, filled by trigger for levels province and grid), then up the parent chain.
-- Ancestors follow parent_code, never a code prefix: 嘉峪关市's townships hang directly under the
-- prefecture, so their cases have county_code NULL.

-- Codes of a region and its ancestors, by level (up to five hops: grid → … → prefecture).
CREATE FUNCTION region_lineage(leaf text)
RETURNS TABLE (grid_code text, village_code text, township_code text, county_code text, prefecture_code text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT
        CASE WHEN r0.level = 'grid' THEN r0.code END,
        CASE 'village'    WHEN r0.level THEN r0.code WHEN r1.level THEN r1.code END,
        CASE 'township'   WHEN r0.level THEN r0.code WHEN r1.level THEN r1.code WHEN r2.level THEN r2.code END,
        CASE 'county'     WHEN r0.level THEN r0.code WHEN r1.level THEN r1.code WHEN r2.level THEN r2.code
                          WHEN r3.level THEN r3.code END,
        CASE 'prefecture' WHEN r0.level THEN r0.code WHEN r1.level THEN r1.code WHEN r2.level THEN r2.code
                          WHEN r3.level THEN r3.code WHEN r4.level THEN r4.code END
    FROM region r0
    LEFT JOIN region r1 ON r1.code = r0.parent_code
    LEFT JOIN region r2 ON r2.code = r1.parent_code
    LEFT JOIN region r3 ON r3.code = r2.parent_code
    LEFT JOIN region r4 ON r4.code = r3.parent_code
    WHERE r0.code = leaf
$$;

-- The deepest region holding point p: a grid through the subdivided pieces (fast path), else the
-- deepest non-province region whose outline holds it (a hierarchy loaded without grids).
CREATE FUNCTION region_leaf(p geometry) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT s.code FROM region_subdivided s
          WHERE s.level = 'grid' AND ST_Intersects(s.geom, p) ORDER BY s.code LIMIT 1),
        (SELECT r.code FROM region r
          WHERE r.level <> 'province' AND ST_Intersects(r.geom, p) ORDER BY length(r.code) DESC, r.code LIMIT 1))
$$;

-- Is point p inside the province outline (any subdivided province piece)?
CREATE FUNCTION in_province(p geometry) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM region_subdivided s WHERE s.level = 'province' AND ST_Intersects(s.geom, p))
$$;

-- The handling level a case really starts at: the first level at or above `lvl` for which the
-- case has a region code (no village → township; 嘉峪关's missing county → prefecture).
CREATE FUNCTION case_level_fit(lvl text, village text, township text, county text, prefecture text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN lvl = 'village' AND village IS NOT NULL THEN 'village'
        WHEN lvl IN ('village', 'township') AND township IS NOT NULL THEN 'township'
        WHEN lvl IN ('village', 'township', 'county') AND county IS NOT NULL THEN 'county'
        WHEN lvl IN ('village', 'township', 'county', 'prefecture') AND prefecture IS NOT NULL THEN 'prefecture'
        ELSE 'province' END
$$;

-- When a case of this grade, reported at `at`, must have been responded to (accepted).
CREATE FUNCTION grade_respond_by(g text, at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN gp.respond_hours IS NULL
                THEN (date_trunc('day', at AT TIME ZONE 'Asia/Shanghai') + interval '1 day') AT TIME ZONE 'Asia/Shanghai'
                ELSE at + make_interval(hours => gp.respond_hours) END
    FROM grade_policy gp WHERE gp.grade = g
$$;
