-- Institutional coverage below a region: per level, how many child regions have a centre of their
-- own level in the real registry (established or entity), how many an entity (实体化) centre, and
-- which do not (the drill from 96.5 percent to the counties without one).
WITH kids AS (
    SELECT r.level, r.code, r.name,
           COALESCE(max(CASE c.status WHEN 'entity' THEN 3 WHEN 'established' THEN 2 WHEN 'planned' THEN 1 END), 0) AS best
    FROM region r
    LEFT JOIN centre c ON c.region_code = r.code AND c.level = r.level AND c.scenario IS NULL
    WHERE r.code LIKE %(pattern)s AND length(r.code) > length(%(code)s)
      AND r.level IN ('prefecture', 'county', 'township')
    GROUP BY r.level, r.code, r.name
)
SELECT level,
       count(*) AS children,
       count(*) FILTER (WHERE best >= 2) AS with_centre,
       count(*) FILTER (WHERE best = 3) AS with_entity,
       COALESCE(json_agg(json_build_object(
                    'code', code, 'name', name,
                    'status', CASE best WHEN 2 THEN 'established' WHEN 1 THEN 'planned' END)
                ORDER BY code) FILTER (WHERE best < 3), '[]'::json) AS missing
FROM kids
GROUP BY level
ORDER BY array_position(ARRAY['prefecture', 'county', 'township'], level)
