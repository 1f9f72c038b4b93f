-- Individual open cases from zoom 12 (below that, case_counts aggregates them).
SELECT c.id, c.geom, c.ref, c.title, c.grade, c.state, c.category_code AS category,
       coalesce(c.deadline < now(), false) AS overdue,
       to_char(c.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS reported
FROM cases c, tile
WHERE %(z)s::int >= 12
  AND case_is_open(c.state)
  AND c.geom && tile.env4326
