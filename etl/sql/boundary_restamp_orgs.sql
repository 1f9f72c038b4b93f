-- Centres and departments of units being removed move to the unit of the same level at their
-- point (a centre's own point; a department's old unit's representative point).
CREATE TEMP TABLE gw_restamp_org ON COMMIT DROP AS
SELECT 'centre'::text AS kind, c.id AS row_id, c.region_code AS old_code,
       (SELECT r.code FROM region r
         WHERE r.level = c.level AND ST_Intersects(r.geom, c.geom)
           AND NOT EXISTS (SELECT 1 FROM unnest(%(gone)s::text[]) g WHERE starts_with(r.code, g))
         ORDER BY r.code LIMIT 1) AS new_code
FROM centre c
WHERE EXISTS (SELECT 1 FROM unnest(%(gone)s::text[]) g WHERE starts_with(c.region_code, g))
UNION ALL
SELECT 'department', d.id, d.region_code,
       (SELECT r.code FROM region r
         WHERE r.level = o.level AND ST_Intersects(r.geom, o.p)
           AND NOT EXISTS (SELECT 1 FROM unnest(%(gone)s::text[]) g WHERE starts_with(r.code, g))
         ORDER BY r.code LIMIT 1)
FROM department d JOIN gw_old_point o ON o.code = d.region_code
WHERE EXISTS (SELECT 1 FROM unnest(%(gone)s::text[]) g WHERE starts_with(d.region_code, g))
