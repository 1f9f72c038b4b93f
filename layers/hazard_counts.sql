-- Open hazards aggregated per region at the region's label point: per county up to z6, per
-- township z7–9 (from z10 the hazards themselves are drawn). Same idiom as case_counts.sql.
WITH places AS (
    SELECT r.code, r.name, r.level, r.label_point
    FROM region r, tile
    WHERE r.label_point && tile.env4326
      AND r.level = CASE WHEN %(z)s::int <= 6 THEN 'county' ELSE 'township' END
)
SELECT p.code::bigint AS id, p.label_point AS geom, p.code, p.name, p.level, a.open, a.red, a.orange, a.yellow
FROM places p
CROSS JOIN LATERAL (
    SELECT count(*)::int AS open, count(*) FILTER (WHERE h.grade = 'red')::int AS red,
           count(*) FILTER (WHERE h.grade = 'orange')::int AS orange,
           count(*) FILTER (WHERE h.grade = 'yellow')::int AS yellow
    FROM hazard h WHERE h.county_code = p.code AND hazard_is_open(h.state)) a
WHERE %(z)s::int <= 6 AND a.open > 0
UNION ALL
SELECT p.code::bigint, p.label_point, p.code, p.name, p.level, a.open, a.red, a.orange, a.yellow
FROM places p
CROSS JOIN LATERAL (
    SELECT count(*)::int AS open, count(*) FILTER (WHERE h.grade = 'red')::int AS red,
           count(*) FILTER (WHERE h.grade = 'orange')::int AS orange,
           count(*) FILTER (WHERE h.grade = 'yellow')::int AS yellow
    FROM hazard h WHERE h.township_code = p.code AND hazard_is_open(h.state)) a
WHERE %(z)s::int BETWEEN 7 AND 9 AND a.open > 0
