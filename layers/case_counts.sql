-- Open cases aggregated per region, one point at the region's label point: per county up to z6,
-- per township z7–9, per grid z10–11. Counts come from the stamped region codes (indexed code
-- columns, no spatial join); only regions whose label point falls in the tile are counted, and
-- only the branch of the tile's zoom runs (the others are one-time-filtered away).
WITH places AS (
    SELECT r.code, r.name, r.level, r.label_point
    FROM region r, tile
    WHERE r.label_point && tile.env4326
      AND r.level = CASE WHEN %(z)s::int <= 6 THEN 'county' WHEN %(z)s::int <= 9 THEN 'township' ELSE 'grid' END
)
SELECT p.code::bigint AS id, p.label_point AS geom, p.code, p.name, p.level, a.open, a.overdue, a.red
FROM places p
CROSS JOIN LATERAL (
    SELECT count(*)::int AS open, count(*) FILTER (WHERE c.deadline < now())::int AS overdue,
           count(*) FILTER (WHERE c.grade = 'red')::int AS red
    FROM cases c WHERE c.county_code = p.code AND case_is_open(c.state)) a
WHERE %(z)s::int <= 6 AND a.open > 0
UNION ALL
SELECT p.code::bigint, p.label_point, p.code, p.name, p.level, a.open, a.overdue, a.red
FROM places p
CROSS JOIN LATERAL (
    SELECT count(*)::int AS open, count(*) FILTER (WHERE c.deadline < now())::int AS overdue,
           count(*) FILTER (WHERE c.grade = 'red')::int AS red
    FROM cases c WHERE c.township_code = p.code AND case_is_open(c.state)) a
WHERE %(z)s::int BETWEEN 7 AND 9 AND a.open > 0
UNION ALL
SELECT p.code::bigint, p.label_point, p.code, p.name, p.level, a.open, a.overdue, a.red
FROM places p
CROSS JOIN LATERAL (
    SELECT count(*)::int AS open, count(*) FILTER (WHERE c.deadline < now())::int AS overdue,
           count(*) FILTER (WHERE c.grade = 'red')::int AS red
    FROM cases c WHERE c.grid_code = p.code AND case_is_open(c.state)) a
WHERE %(z)s::int >= 10 AND a.open > 0
